"""The flat routes of mem0's self-hosted server (`X-API-Key`), on the key's project."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from engram.core.scope import resolve_filters
from engram.errors import ValidationError
from engram.server.bodies import (
    AddBody,
    OssListQuery,
    OssUpdateBody,
    ScopeQuery,
    SearchBody,
    documented,
    documented_query,
    read,
)
from engram.server.platform import (
    SCOPE,
    add_kwargs,
    filters_param,
    not_found,
    pick,
    run_add,
    search_memories,
    with_scope,
)
from engram.server.state import Reader, Writer, memory_for, state_of

router = APIRouter(prefix="", tags=["mem0 self-hosted"])


@router.post("/memories", openapi_extra=documented(AddBody))
async def add(request: Request, who: Writer) -> Any:
    state = state_of(request)
    kwargs = await add_kwargs(state, who, await read(request, AddBody))
    return await run_add(state, who.project_id, kwargs)


def _scope(
    request: Request, allowed: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The query's scope ids and `filters` as one filter, and its other (allowed) parameters."""
    kwargs = pick(dict(request.query_params), {*SCOPE, "filters", *allowed}, "query")
    filters = filters_param(kwargs.pop("filters", None))
    scope = {k: kwargs.pop(k) for k in SCOPE if k in kwargs}
    return scoped(with_scope(filters, scope)), kwargs


def scoped(filters: dict[str, Any]) -> dict[str, Any]:
    """mem0's self-hosted server has the library's rule: a user, agent or run id is required
    (the Platform routes read the whole project instead)."""
    resolve_filters(filters)
    return filters


@router.get("/memories", openapi_extra=documented_query(OssListQuery))
async def get_all(request: Request, who: Reader) -> Any:
    filters, extra = _scope(request, frozenset({"limit"}))
    limit = extra.get("limit")
    if limit is not None and not (str(limit).isdecimal() and int(limit) > 0):
        raise ValidationError("limit must be a positive integer")
    memory = await memory_for(request, who)
    return await memory.get_all(filters=filters, limit=None if limit is None else int(limit))


@router.get("/memories/{memory_id}")
async def get(memory_id: str, request: Request, who: Reader) -> Any:
    found = await (await memory_for(request, who)).get(memory_id)
    if found is None:
        raise not_found(memory_id)
    return found


@router.post("/search", openapi_extra=documented(SearchBody))
async def search(request: Request, who: Reader) -> Any:
    memory = await memory_for(request, who)
    return await search_memories(memory, await read(request, SearchBody), require_scope=True)


@router.put("/memories/{memory_id}", openapi_extra=documented(OssUpdateBody))
async def update(memory_id: str, request: Request, who: Writer) -> Any:
    body = await read(request, OssUpdateBody)
    text = body.get("text", body.get("data", body.get("memory")))
    extra = set(body) - {"text", "data", "memory", "metadata"}
    if extra:
        raise ValidationError(f"unknown update parameters: {', '.join(sorted(extra))}")
    memory = await memory_for(request, who)
    result = await memory.update(memory_id, text=text, metadata=body.get("metadata"))
    await state_of(request).notify(
        who.project_id, [{"id": memory_id, "memory": text, "event": "UPDATE"}]
    )
    return result


@router.get("/memories/{memory_id}/history")
async def history(memory_id: str, request: Request, who: Reader) -> Any:
    return await (await memory_for(request, who)).history(memory_id)


@router.delete("/memories/{memory_id}")
async def delete(memory_id: str, request: Request, who: Writer) -> Any:
    result = await (await memory_for(request, who)).delete(memory_id)
    await state_of(request).notify(who.project_id, [{"id": memory_id, "event": "DELETE"}])
    return result


@router.delete("/memories", openapi_extra=documented_query(ScopeQuery))
async def delete_all(request: Request, who: Writer) -> Any:
    memory = await memory_for(request, who)
    return await memory.delete_all(filters=_scope(request)[0])


@router.post("/reset")
async def reset(request: Request, who: Writer) -> Any:
    await (await memory_for(request, who)).reset()
    return {"message": "All memories reset"}
