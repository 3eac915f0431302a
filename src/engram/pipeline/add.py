"""add(): one request, three paths (verbatim, procedural, inferred), one transaction each."""

from __future__ import annotations

from typing import Any

from engram.core.ids import new_id, text_hash
from engram.core.messages import Message
from engram.pipeline.context import Context
from engram.pipeline.infer import infer_add
from engram.pipeline.multimodal import expand_parts
from engram.pipeline.requests import PROCEDURAL, AddRequest
from engram.providers.llm.base import Usage
from engram.store.base import Insert, MemoryRecord


async def run_add(ctx: Context, request: AddRequest) -> dict[str, Any]:
    usage = Usage()
    if any(m.parts for m in request.messages):
        request.messages, warnings = await expand_parts(
            request.messages, ctx.extractor, ctx.documents, usage
        )
        request.warnings.extend(warnings)
    if request.memory_type == PROCEDURAL:
        result = await _procedural(ctx, request, usage)
    elif not request.infer:
        result = await _verbatim(ctx, request, usage)
    else:
        result = await infer_add(ctx, request, usage)
    result["usage"] = {**usage.as_dict(), "extractor": ctx.extractor.name}
    if not result.get("warnings"):
        result.pop("warnings", None)
    return result


async def _verbatim(ctx: Context, request: AddRequest, usage: Usage) -> dict[str, Any]:
    """mem0's infer=False: every non-system message stored as it is (images as their
    description; a message left empty by a skipped image is reported in the warnings)."""
    conversation = [m for m in request.messages if m.role != "system" and m.content.strip()]
    result = await _store(ctx, request, [(m.content, m) for m in conversation], usage)
    result["warnings"] = list(request.warnings)
    return result


async def _procedural(ctx: Context, request: AddRequest, usage: Usage) -> dict[str, Any]:
    conversation = [m for m in request.messages if m.role != "system" and m.content.strip()]
    if not conversation:
        return {"results": []}
    summary = await ctx.extractor.summarize_procedure(conversation, usage)
    return await _store(ctx, request, [(summary, None)], usage)


async def _store(
    ctx: Context, request: AddRequest, drafts: list[tuple[str, Message | None]], usage: Usage
) -> dict[str, Any]:
    if not drafts:
        return {"results": []}
    vectors = await ctx.embed([text for text, _ in drafts], "add", usage)
    now = ctx.now()
    inserts = [
        Insert(_record(request, text, message, request.timestamp or now), vectors[i])
        for i, (text, message) in enumerate(drafts)
    ]
    records = [r for r in await ctx.store.apply(inserts) if r is not None]
    return {"results": [_result(r, request) for r in records]}


def _record(request: AddRequest, text: str, message: Message | None, now: str) -> MemoryRecord:
    return MemoryRecord(
        id=new_id(),
        memory=text,
        hash=text_hash(text),
        created_at=now,
        updated_at=now,
        user_id=request.scope.get("user_id"),
        agent_id=request.scope.get("agent_id"),
        run_id=request.scope.get("run_id"),
        app_id=request.scope.get("app_id"),
        actor_id=message.name if message else None,
        role=message.role if message else None,
        metadata=dict(request.metadata),
        categories=list(request.categories),
        memory_type=request.memory_type,
        immutable=request.immutable,
        expiration_date=request.expiration_date,
    )


def _result(record: MemoryRecord, request: AddRequest) -> dict[str, Any]:
    result: dict[str, Any] = {"id": record.id, "memory": record.memory, "event": "ADD"}
    if not request.infer and request.memory_type != PROCEDURAL:
        result["actor_id"] = record.actor_id
        result["role"] = record.role
    return result
