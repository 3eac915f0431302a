"""The Mem0 Platform memory routes (v1, v2, v3), exactly as the official clients call them.

Every route resolves the caller's project from the API key and works on that project's store
only (see `projects.py`). Bodies are checked here: an unknown key is a 400, never ignored.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engram.core.ids import clean_scope_id
from engram.core.scope import resolve_filters
from engram.core.timeutil import next_day, normalize_date, normalize_timestamp
from engram.errors import NotFoundError, ValidationError
from engram.memory import AsyncMemory
from engram.pipeline.requests import flag
from engram.providers import documents
from engram.server import control, jobs
from engram.server.bodies import (
    AddBody,
    ListBody,
    ListQuery,
    ScopeQuery,
    SearchBody,
    UpdateBody,
    documented,
    documented_query,
    read,
)
from engram.server.control import Caller, transaction
from engram.server.state import (
    Reader,
    State,
    Writer,
    memory_for,
    private_urls_allowed,
    state_of,
)
from engram.types import AddResult

router = APIRouter()

SCOPE = ("user_id", "agent_id", "app_id", "run_id")
CLIENT_KEYS = {"org_id", "project_id", "org_name", "project_name", "output_format", "version"}
ADD_KEYS = {
    *SCOPE, "metadata", "infer", "memory_type", "prompt", "expiration_date", "immutable",
    "categories", "timestamp", "includes", "excludes", "custom_instructions",
    "agent_custom_instructions", "custom_categories", "enable_graph",
}  # fmt: skip
# The Platform's narrowing parameters beside `filters` (mem0ai 1.x and 2.x send them at the top
# level); each becomes a condition ANDed with the filters (see `narrowing`).
NARROWING = {"categories", "metadata", "keywords", "start_date", "end_date"}
SEARCH_KEYS = {
    *SCOPE, *NARROWING, "filters", "top_k", "limit", "threshold", "rerank", "explain",
    "show_expired", "keyword_search", "recipe", "enable_graph", "fields", "latest_only", "source",
}  # fmt: skip
LIST_KEYS = {
    *SCOPE, *NARROWING, "filters", "show_expired", "enable_graph", "page", "page_size", "fields",
    "latest_only", "after",
}  # fmt: skip
ITEM_FIELDS = frozenset(
    {"id", "memory", "hash", "metadata", "categories", "created_at", "updated_at", "user_id",
     "agent_id", "run_id", "app_id", "actor_id", "role", "memory_type", "expiration_date",
     "immutable", "score", "explain"}
)  # fmt: skip


def pick(body: dict[str, Any], allowed: set[str], what: str) -> dict[str, Any]:
    unknown = set(body) - allowed - CLIENT_KEYS
    if unknown:
        raise ValidationError(f"unknown {what} parameters: {', '.join(sorted(unknown))}")
    return {k: v for k, v in body.items() if k in allowed and v is not None}


def narrowing(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """The Platform's top-level narrowing parameters (taken out of `kwargs`) as filters:
    `categories=[...]` any of them; `metadata={...}` each key equal; `keywords` the memory's text
    contains it (any case; a list: each of them); `start_date` / `end_date` bound `created_at`
    (an end date without a time includes that whole day)."""
    found: list[dict[str, Any]] = []
    categories = kwargs.pop("categories", None)
    if categories is not None:
        listed = [categories] if isinstance(categories, str) else categories
        if not isinstance(listed, list) or not listed:
            raise ValidationError("categories must be a non-empty list of category names")
        found.append({"categories": {"in": listed}})
    metadata = kwargs.pop("metadata", None)
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise ValidationError("metadata must be an object of metadata keys and values")
        if metadata:
            found.append({"metadata": metadata})
    keywords = kwargs.pop("keywords", None)
    if keywords is not None:
        words = [keywords] if isinstance(keywords, str) else keywords
        if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
            raise ValidationError("keywords must be a string or a list of strings")
        found.extend({"keywords": word} for word in words)
    if "start_date" in kwargs:
        start = normalize_timestamp(
            _text(kwargs.pop("start_date"), "start_date"), what="start_date"
        )
        found.append({"created_at": {"gte": start}})
    if "end_date" in kwargs:
        found.append({"created_at": _until(_text(kwargs.pop("end_date"), "end_date"))})
    return found


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be an ISO 8601 date or datetime")
    return value.strip()


def _until(end: str) -> dict[str, Any]:
    if len(end) == 10:  # a date: through the end of that day
        return {"lt": next_day(normalize_date(end, what="end_date"), what="end_date")}
    return {"lte": normalize_timestamp(end, what="end_date")}


_QUERY_FLAGS = {"show_expired", "enable_graph", "latest_only"}
_QUERY_LISTS = {"fields", "categories"}


def _from_query(name: str, raw: str) -> Any:
    """A list parameter given in a query string (GET /v1/memories/?...): flags are true/false,
    lists are comma-separated, `metadata` is JSON; the rest are strings."""
    if name in _QUERY_FLAGS:
        if raw.lower() not in ("true", "false"):
            raise ValidationError(f"{name} must be true or false, got {raw!r}")
        return raw.lower() == "true"
    if name in _QUERY_LISTS:
        return [part.strip() for part in raw.split(",") if part.strip()]
    if name == "metadata":
        try:
            return json.loads(raw)
        except ValueError:
            raise ValidationError("metadata in the query string must be a JSON object") from None
    return raw


def _positive(value: Any, name: str) -> int:
    if isinstance(value, str) and value.strip().isdecimal():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    return value


def project_fields(items: Sequence[Mapping[str, Any]], fields: Any) -> list[dict[str, Any]]:
    """Only the asked fields of each item (the Platform's `fields`), `id` always."""
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ValidationError("fields must be a list of field names")
    unknown = set(fields) - ITEM_FIELDS
    if unknown:
        raise ValidationError(
            f"unknown fields: {', '.join(sorted(unknown))}; known: {', '.join(sorted(ITEM_FIELDS))}"
        )
    wanted = {"id", *fields}
    return [{k: v for k, v in item.items() if k in wanted} for item in items]


def _latest_only(kwargs: dict[str, Any]) -> None:
    """mem0's `latest_only`: Engram keeps one current version per memory (older ones live in its
    history), so every result is the latest already; the flag is checked, not ignored."""
    value = kwargs.pop("latest_only", None)
    if value is not None and not flag(value, "latest_only"):
        raise ValidationError(
            "latest_only=false is not supported: older versions of a memory are in its history "
            "(GET /v1/memories/{id}/history/)"
        )


def filters_param(raw: Any) -> Any:
    """`filters` as sent: a JSON object, or (2.x clients, in a query string) its Python repr."""
    if raw is None or isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise ValidationError("filters in the query string must be an object") from None
        if isinstance(value, dict):
            return value
    raise ValidationError("filters must be an object")


# -- add ----------------------------------------------------------------------------------------


async def add_kwargs(state: State, who: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """The `AsyncMemory.add` arguments of an add request, with the project's settings."""
    if "messages" not in body:
        raise ValidationError("messages is required")
    kwargs = pick({k: v for k, v in body.items() if k not in ("messages", "async_mode")},
                  ADD_KEYS, "add")  # fmt: skip
    project = await state.db.run(control.get_project, who.org_id, who.project_id)
    agent_only = "agent_id" in kwargs and "user_id" not in kwargs
    agent_instructions = kwargs.pop("agent_custom_instructions", None)
    if agent_only and agent_instructions:  # the call's own, for an agent: before all others
        kwargs["custom_instructions"] = agent_instructions
    defaults = {  # the project's, where the call gives none; agent-only adds have their own
        "custom_instructions": (agent_only and project.get("agent_custom_instructions"))
        or project.get("custom_instructions"),
        "custom_categories": project.get("custom_categories"),
    }
    for name, value in defaults.items():
        if name not in kwargs and value:
            kwargs[name] = value
    if "custom_categories" in kwargs and isinstance(kwargs["custom_categories"], dict):
        kwargs["custom_categories"] = [{k: v} for k, v in kwargs["custom_categories"].items()]
    return {"messages": body["messages"], **kwargs}


async def run_add(state: State, project_id: str, kwargs: dict[str, Any]) -> AddResult:
    memory = await state.projects.get(project_id)
    allowed = await private_urls_allowed(state, project_id)
    # Its reconciliation reads what the primary has; its documents come from public addresses
    # unless the server or the project opted in.
    with state.projects.writing(), documents.private_urls_allowed(allowed):
        result = await memory.add(**kwargs)
    state.metrics.tokens(result.get("usage", {}))
    await state.notify(project_id, result["results"])
    return result


async def _validate_add(state: State, project_id: str, kwargs: dict[str, Any]) -> None:
    """Reject a bad add before it is queued (the caller hears of it now, not from the event)."""
    memory = await state.projects.get(project_id)
    await memory.check_add(**kwargs)


async def queue_add(state: State, who: Caller, kwargs: dict[str, Any]) -> str:
    await _validate_add(state, who.project_id, kwargs)
    event_id = await state.db.run(
        lambda c: transaction(c, lambda: jobs.enqueue(c, who.project_id, "ADD", kwargs))
    )
    if state.workers is not None:
        state.workers.notify()
    return event_id


@router.post("/v3/memories/add/", openapi_extra=documented(AddBody))
async def add_v3(request: Request, who: Writer) -> JSONResponse:
    state = state_of(request)
    body = await read(request, AddBody)
    kwargs = await add_kwargs(state, who, body)
    if body.get("async_mode") is False:
        return JSONResponse(await run_add(state, who.project_id, kwargs))
    event_id = await queue_add(state, who, kwargs)
    return JSONResponse(
        {"status": "PENDING", "event_id": event_id, "message": "Memory processing queued"},
        status_code=202,
    )


@router.post("/v1/memories/", openapi_extra=documented(AddBody))
async def add_v1(request: Request, who: Writer) -> Any:
    """1.x add: synchronous unless `async_mode` is true (the 1.x client's default)."""
    state = state_of(request)
    body = await read(request, AddBody)
    kwargs = await add_kwargs(state, who, body)
    if body.get("async_mode", False):
        event_id = await queue_add(state, who, kwargs)
        return {"results": [{"message": "Memory processing has been queued for background "
                             "execution", "status": "PENDING", "event_id": event_id}]}  # fmt: skip
    return await run_add(state, who.project_id, kwargs)


# -- list, search -----------------------------------------------------------------------------


def _page_url(request: Request, page: int) -> str:
    return str(request.url.include_query_params(page=page))


async def list_memories(request: Request, who: Caller, body: dict[str, Any]) -> dict[str, Any]:
    query = {  # every parameter of the query string is checked: an unknown one is a 400
        k: _from_query(k, v) for k, v in request.query_params.items() if k not in CLIENT_KEYS
    }
    kwargs = pick({**query, **body}, LIST_KEYS, "list")
    after = kwargs.pop("after", None)
    if after is not None and "page" in kwargs:
        raise ValidationError("use either after (a cursor) or page")
    page = _positive(kwargs.pop("page", 1), "page")
    page_size = _positive(kwargs.pop("page_size", 100), "page_size")
    filters, fields = _request_filters(kwargs)
    memory = await memory_for(request, who)
    if after is not None:  # by position: the page after the cursor
        if not isinstance(after, str):
            raise ValidationError("after must be a cursor string")
        result = await memory.get_all(filters=filters, limit=page_size, after=after, **kwargs)
    else:
        result = await memory.get_all(filters=filters, page=page, page_size=page_size, **kwargs)
    total = result["total"]
    results = result["results"] if fields is None else project_fields(result["results"], fields)
    out: dict[str, Any] = {
        "count": total,
        "next": _page_url(request, page + 1) if page * page_size < total else None,
        "previous": _page_url(request, page - 1) if page > 1 else None,
        "results": results,
    }
    if after is not None:
        out["next"], out["previous"] = None, None
        out["next_cursor"] = result.get("next_cursor")
    if "relations" in result:
        out["relations"] = result["relations"]
    return out


def _request_filters(kwargs: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """One filter from a read request's `filters`, top-level ids and narrowing parameters (all
    taken out of `kwargs`), and its `fields`. No id is needed: the key's project is the scope."""
    filters = filters_param(kwargs.pop("filters", None))
    scope = {k: kwargs.pop(k) for k in SCOPE if k in kwargs}
    _latest_only(kwargs)
    fields = kwargs.pop("fields", None)
    return with_scope(filters, scope, narrowing(kwargs)), fields


def with_scope(
    filters: dict[str, Any] | None, scope: dict[str, Any], extra: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """`filters` ANDed with the top-level ids (and any `extra` conditions). A top-level id is a
    value, never filter syntax: `user_id=*` names the user "*", it does not match everyone."""
    ids = [{name: {"in": [clean_scope_id(name, value)]}} for name, value in scope.items()]
    parts = [*ids, *([filters] if filters else []), *extra]
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"AND": parts}


@router.post("/v3/memories/", openapi_extra=documented(ListBody))
@router.post("/v2/memories/", openapi_extra=documented(ListBody))
async def list_v3(request: Request, who: Reader) -> dict[str, Any]:
    return await list_memories(request, who, await read(request, ListBody))


@router.get("/v1/memories/", openapi_extra=documented_query(ListQuery))
async def list_v1(request: Request, who: Reader) -> dict[str, Any]:
    return await list_memories(request, who, {})


async def search_memories(
    memory: AsyncMemory, body: dict[str, Any], *, require_scope: bool = False
) -> dict[str, Any]:
    """A search request; `require_scope`: an id must be named (mem0's self-hosted routes)."""
    query = body.get("query")
    kwargs = pick({k: v for k, v in body.items() if k != "query"}, SEARCH_KEYS, "search")
    kwargs.pop("source", None)  # the calling surface (mem0ai 3.x JS), for mem0's analytics
    filters, fields = _request_filters(kwargs)
    if require_scope:
        resolve_filters(filters)
    if "limit" in kwargs and "top_k" not in kwargs:
        kwargs["top_k"] = kwargs.pop("limit")
    found: dict[str, Any] = dict(await memory.search(query, filters=filters, **kwargs))  # type: ignore[arg-type]
    if fields is not None:
        found["results"] = project_fields(found["results"], fields)
    return found


@router.post("/v3/memories/search/", openapi_extra=documented(SearchBody))
@router.post("/v2/memories/search/", openapi_extra=documented(SearchBody))
@router.post("/v1/memories/search/", openapi_extra=documented(SearchBody))
async def search(request: Request, who: Reader) -> dict[str, Any]:
    return await search_memories(await memory_for(request, who), await read(request, SearchBody))


# -- one memory -------------------------------------------------------------------------------


@router.get("/v1/memories/{memory_id}/")
async def get_memory(memory_id: str, request: Request, who: Reader) -> Any:
    memory = await memory_for(request, who)
    found = await memory.get(memory_id)
    if found is None:
        raise not_found(memory_id)
    return found


def not_found(memory_id: str) -> NotFoundError:
    return NotFoundError(f"memory {memory_id} not found", details={"id": memory_id})


@router.put("/v1/memories/{memory_id}/", openapi_extra=documented(UpdateBody))
async def update_memory(memory_id: str, request: Request, who: Writer) -> Any:
    body = await read(request, UpdateBody)
    kwargs = pick(body, {"text", "metadata", "expiration_date", "categories", "timestamp"},
                  "update")  # fmt: skip
    if "timestamp" in kwargs:
        raise ValidationError("changing a memory's timestamp is not supported; add it anew")
    if "expiration_date" in body and body["expiration_date"] is None:  # what clients send to clear
        kwargs["clear_expiration_date"] = True
    memory = await memory_for(request, who)
    await memory.update(memory_id, **kwargs)
    updated = await memory.get(memory_id)
    if updated is None:  # deleted by another request in between
        raise not_found(memory_id)
    await state_of(request).notify(
        who.project_id, [{"id": memory_id, "memory": updated["memory"], "event": "UPDATE"}]
    )
    return updated


@router.delete("/v1/memories/{memory_id}/")
async def delete_memory(memory_id: str, request: Request, who: Writer) -> Any:
    memory = await memory_for(request, who)
    found = await memory.get(memory_id)
    result = await memory.delete(memory_id)
    text = found["memory"] if found else None
    await state_of(request).notify(
        who.project_id, [{"id": memory_id, "memory": text, "event": "DELETE"}]
    )
    return result


@router.get("/v1/memories/{memory_id}/history/")
async def history(memory_id: str, request: Request, who: Reader) -> Any:
    found = await (await memory_for(request, who)).history(memory_id)
    if not found:  # every memory that ever existed has its ADD row
        raise not_found(memory_id)
    return found


@router.delete("/v1/memories/", openapi_extra=documented_query(ScopeQuery))
async def delete_scope(request: Request, who: Writer) -> Any:
    query = {k: v for k, v in request.query_params.items() if k not in CLIENT_KEYS}
    kwargs = pick(query, {*SCOPE, "filters"}, "delete")
    filters = filters_param(kwargs.pop("filters", None))
    memory = await memory_for(request, who)
    result = await memory.delete_all(filters=with_scope(filters, kwargs))
    await state_of(request).notify(
        who.project_id,
        [{"id": None, "event": "DELETE", "filters": with_scope(filters, kwargs),
          "deleted_count": result["deleted_count"]}],
    )  # fmt: skip
    return result
