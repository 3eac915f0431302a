"""The request bodies of the API as pydantic models: checked at the edge (types strictly: `"false"`
is no boolean, `"5"` no number) before a route reads them, and published in the OpenAPI document
(what clients and the API fuzzer generate requests from). A route reads its body with
`await read(request, Model)` and is declared with `openapi_extra=documented(Model)`.

Each route's own checks follow (values, sizes, which parameters go together); a key the model
does not know is left to the route, which names it in its 400 (`platform.pick`). Every optional
field accepts null: the official clients send nulls for what they leave out."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from engram.errors import ValidationError

MAX_DEPTH = 32  # of a JSON body's nesting (objects and lists)
INT64 = 2**63
INLINE_BODY_BYTES = 64 * 1024  # a larger body is parsed and checked on a worker thread


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    if len(raw) <= INLINE_BODY_BYTES:
        return parse_body(raw)
    return await asyncio.to_thread(parse_body, raw)  # megabytes: not on the event loop


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body: a JSON object within `check_json`'s rules."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise ValidationError(f"the request body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise ValidationError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object")
    check_json(body)
    return body


def check_json(body: Any) -> None:
    """What every JSON body must be, whatever its route: nested at most MAX_DEPTH deep, with
    integers that fit 64 bits, finite numbers, and text that is Unicode (no lone surrogates,
    which JSON's `\\ud800` escapes can carry). Walked without recursion."""
    stack: list[tuple[Any, int, str]] = [(body, 1, "body")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise ValidationError(f"the request body nests deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, where)
                stack.append((item, depth + 1, f"{where}.{key}"))
        elif isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int) and not -INT64 <= value < INT64:
            raise ValidationError(f"{where}: the integer {value} does not fit in 64 bits")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"{where}: {value} is not a finite number")


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{where}: the text holds a lone surrogate (not Unicode)") from None


Text = str | None
Flag = bool | None
Object = dict[str, Any] | None
Number = int | float | None


class Body(BaseModel):
    """What every body may carry: the ids mem0's clients add to each request."""

    model_config = ConfigDict(strict=True, extra="forbid")

    org_id: Text = None
    project_id: Text = None
    org_name: Text = None
    project_name: Text = None
    output_format: Text = Field(None, description="v1.1 (the only format answered)")
    version: Text = None


class Scoped(Body):
    user_id: Text = None
    agent_id: Text = None
    app_id: Text = None
    run_id: Text = None


class AddBody(Scoped):
    messages: str | dict[str, Any] | list[Any] = Field(
        description="a text, a message {role, content, name?}, or a list of them"
    )
    metadata: Object = None
    infer: Flag = Field(None, description="extract facts (true, the default) or store verbatim")
    async_mode: Flag = Field(None, description="queue the add (the default on v1 and v3)")
    memory_type: Text = Field(None, description="procedural_memory, or none")
    prompt: Text = None
    expiration_date: Text = Field(None, description="YYYY-MM-DD")
    immutable: Flag = None
    categories: list[str] | None = None
    timestamp: int | float | str | None = Field(None, description="Unix seconds or ISO 8601")
    includes: Text = None
    excludes: Text = None
    custom_instructions: Text = None
    agent_custom_instructions: Text = Field(
        None,
        description="an agent-only add's instructions (agent_id, no user_id), in place of "
        "custom_instructions; other adds do not use them (as the project's own)",
    )
    custom_categories: list[dict[str, str]] | dict[str, str] | None = None
    enable_graph: Flag = None


class Narrowing(Scoped):
    """The Platform's narrowing parameters of search and list, beside `filters`."""

    filters: Object = Field(None, description="the filter language (docs/usage.md)")
    categories: str | list[str] | None = None
    metadata: Object = None
    keywords: str | list[str] | None = None
    start_date: Text = None
    end_date: Text = None
    fields: list[str] | None = None
    show_expired: Flag = None
    enable_graph: Flag = None
    latest_only: Flag = None


class SearchBody(Narrowing):
    query: str
    top_k: int | None = Field(None, ge=1)
    limit: int | None = Field(None, ge=1)
    threshold: Number = Field(None, ge=0, le=1)
    rerank: Flag = None
    explain: Flag = None
    keyword_search: Flag = None
    recipe: Text = Field(None, description="vector, keyword, hybrid or hybrid_graph")
    source: Text = Field(None, description="the calling surface, for mem0's analytics; unused")


class ListBody(Narrowing):
    page: int | None = Field(None, ge=1)
    page_size: int | None = Field(None, ge=1)
    after: str | None = Field(
        None, description="Engram: page by position: \"\" for the first page_size memories, "
        "then the answer's next_cursor (null after the last)",
    )  # fmt: skip


class UpdateBody(Body):
    text: Text = None
    metadata: Object = None
    expiration_date: Text = Field(None, description="YYYY-MM-DD; null clears it")
    categories: list[str] | None = None
    timestamp: int | float | str | None = Field(None, description="refused: add anew")


class OssUpdateBody(Body):
    """mem0's self-hosted update: the new text as `text`, `data` or `memory`."""

    text: Text = None
    data: Text = None
    memory: Text = None
    metadata: Object = None


class BatchItem(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    memory_id: str
    text: Text = None
    memory: Text = None
    metadata: Object = None


class BatchBody(Body):
    memories: list[BatchItem] = Field(description="at most 1,000")


class FeedbackBody(Body):
    memory_id: str
    feedback: Text = Field(None, description="POSITIVE, NEGATIVE, VERY_NEGATIVE or null")
    feedback_reason: Text = None


class ExportBody(Scoped):
    schema_: dict[str, Any] | str = Field(alias="schema", description="a JSON Schema")
    filters: Object = None
    export_instructions: Text = None


class ExportGetBody(Scoped):
    filters: Object = None
    memory_export_id: Text = None


class SummaryBody(Scoped):
    filters: Object = None


class ProjectCreate(Body):
    name: str
    description: Text = None


class ProjectUpdate(Body):
    name: Text = None
    description: Text = None
    custom_instructions: Text = None
    custom_categories: list[dict[str, str]] | None = None
    agent_custom_instructions: Text = None
    allow_private_urls: Flag = Field(
        None, description="webhooks and documents may be at private addresses (org OWNER only)"
    )


class MemberBody(Body):
    email: Text = None
    role: Text = Field(None, description="OWNER or READER")


class KeyCreate(Body):
    email: Text = None
    name: Text = None
    organization: Flag = Field(
        None, description="the key also carries its user's organization role (org OWNER only)"
    )


class WebhookCreate(Body):
    url: str
    name: Text = None
    event_types: list[str] | None = None


class WebhookUpdate(Body):
    url: Text = None
    name: Text = None
    event_types: list[str] | None = None
    is_active: Flag = None


class ProfileSettings(Body):
    enabled: Flag = None
    entities: Object = Field(None, description='{"user": {"schema", "custom_instructions"}}')


class ProfileJob(Body):
    operation: Text = None
    entity_type: Text = None
    entity_id: str | list[str] | None = None
    limit: int | None = Field(None, ge=1)


class ScopeQuery(BaseModel):
    """A query string naming a scope (mem0's self-hosted reads and deletes, the 1.x delete)."""

    org_id: Text = None
    project_id: Text = None
    user_id: Text = None
    agent_id: Text = None
    app_id: Text = None
    run_id: Text = None
    filters: Text = Field(None, description="a filter object, as JSON")


class ListQuery(ScopeQuery):
    """The query string of the 1.x list (`GET /v1/memories/`)."""

    categories: Text = Field(None, description="comma-separated")
    metadata: Text = Field(None, description="an object, as JSON")
    keywords: Text = None
    start_date: Text = None
    end_date: Text = None
    fields: Text = Field(None, description="comma-separated")
    show_expired: Flag = None
    enable_graph: Flag = None
    latest_only: Flag = None
    page: int | None = Field(None, ge=1)
    page_size: int | None = Field(None, ge=1)


class OssListQuery(ScopeQuery):
    limit: int | None = Field(None, ge=1)


def documented_query(model: type[BaseModel]) -> dict[str, Any]:
    """The route's `openapi_extra`: its query string has `model`'s fields (the route parses
    them itself; an unknown one is a 400)."""
    properties = model.model_json_schema()["properties"]
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in properties.items()
        ]
    }


def documented(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """The route's `openapi_extra`: its JSON body is `model`, its schema whole (the models
    nested in it written out in place)."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})
    content = {"application/json": {"schema": _inlined(schema, definitions)}}
    return {"requestBody": {"required": required, "content": content}}


def _inlined(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: _inlined(v, definitions) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(v, definitions) for v in node]
    return node


async def read(request: Request, model: type[BaseModel]) -> dict[str, Any]:
    """The request's JSON body (an object, `body_of`'s rules), its known fields checked
    against `model`; as sent, for the route's own checks."""
    body = await body_of(request)
    fields = {f.alias or name for name, f in model.model_fields.items()}
    try:
        model.model_validate({k: v for k, v in body.items() if k in fields})
    except PydanticError as exc:
        raise ValidationError("; ".join(_describe(e) for e in exc.errors()[:5])) from None
    return body


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"] if not _is_type_tag(part))
    if error["type"] == "missing":
        return f"{where} is required"
    given = error.get("input")
    shown = repr(given) if isinstance(given, bool | int | float) or given is None else ""
    if isinstance(given, str):
        shown = repr(given if len(given) <= 40 else given[:40] + "...")
    return f"{where or 'body'}: {error['msg']}" + (f", got {shown}" if shown else "")


def _is_type_tag(part: Any) -> bool:
    """The union member pydantic names in an error's location (`str`, `list[...]`)."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or "[" in part)
