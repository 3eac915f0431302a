"""add(): one request, three paths (verbatim, procedural, inferred), one transaction each."""

from __future__ import annotations

from typing import Any

from engram.core.ids import new_id, text_hash
from engram.core.messages import Message
from engram.errors import ConflictError
from engram.pipeline.context import Context
from engram.pipeline.infer import infer_add
from engram.pipeline.multimodal import expand_parts
from engram.pipeline.requests import PROCEDURAL, AddRequest
from engram.providers.llm.base import Usage, one_operation
from engram.store.base import Insert, MemoryRecord, Operation, SaveMessages
from engram.types import AddEvent, AddResult

_CONTEXT_CHARS = 300  # of the previous turn, in a verbatim message's embedding input


async def run_add(ctx: Context, request: AddRequest) -> AddResult:
    """Add; with an idempotency key, a key applied before returns what it wrote then, and racing
    calls with one key write once (the key is claimed in the write transaction)."""
    key = request.idempotency_key
    if key is not None and (done := await ctx.store.claimed(key)) is not None:
        return _replayed(done)
    try:
        return await _run(ctx, request)
    except ConflictError:
        if key is None or (done := await ctx.store.claimed(key)) is None:
            raise
        return _replayed(done)


def _replayed(results: list[dict[str, Any]]) -> AddResult:
    """What the claim recorded: each memory's id, text and event."""
    events: list[AddEvent] = [
        {"id": r["id"], "memory": r["memory"], "event": r["event"]} for r in results
    ]
    return {"results": events, "replayed": True}


async def _run(ctx: Context, request: AddRequest) -> AddResult:
    with one_operation():  # the add's LLM calls share one deadline; nothing is written before
        return await _run_once(ctx, request)


async def _run_once(ctx: Context, request: AddRequest) -> AddResult:
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


async def _verbatim(ctx: Context, request: AddRequest, usage: Usage) -> AddResult:
    """mem0's infer=False: every non-system message stored as it is (images as their
    description; a message left empty by a skipped image is reported in the warnings).

    Each message is embedded as `speaker: text`; a reply (the turn before it, from this call or
    the scope's last saved message, came from someone else) also carries that turn as context,
    since "Yes, twice last year!" means little alone. The stored text is the message itself."""
    conversation = [m for m in request.messages if m.role != "system" and m.content.strip()]
    if not conversation:
        return {"results": [], "warnings": list(request.warnings)}
    key = request.conversation_key
    before = await ctx.store.recent_messages(key, 1)
    previous = Message(before[0][0], before[0][2], before[0][1]) if before else None
    contexts = []
    for message in conversation:
        contexts.append(_in_context(message, previous))
        previous = message
    saved = SaveMessages(key, [(m.role, m.name, m.content) for m in conversation], ctx.now())
    drafts: list[tuple[str, Message | None]] = [(m.content, m) for m in conversation]
    result = await _store(ctx, request, drafts, usage, embed_texts=contexts, extra=[saved])
    result["warnings"] = list(request.warnings)
    return result


def _in_context(message: Message, previous: Message | None) -> str:
    speaker = message.name or message.role
    line = f"{speaker}: {message.content.strip()}"
    if previous is None or (previous.name or previous.role) == speaker:
        return line
    return f"{previous.name or previous.role}: {previous.content.strip()[:_CONTEXT_CHARS]}\n{line}"


async def _procedural(ctx: Context, request: AddRequest, usage: Usage) -> AddResult:
    conversation = [m for m in request.messages if m.role != "system" and m.content.strip()]
    if not conversation:
        return {"results": []}
    summary = await ctx.extractor.summarize_procedure(conversation, usage)
    return await _store(ctx, request, [(summary, None)], usage)


async def _store(
    ctx: Context,
    request: AddRequest,
    drafts: list[tuple[str, Message | None]],
    usage: Usage,
    *,
    embed_texts: list[str] | None = None,
    extra: list[Operation] | None = None,
) -> AddResult:
    if not drafts:
        return {"results": []}
    vectors = await ctx.embed(embed_texts or [text for text, _ in drafts], "add", usage)
    now = ctx.now()
    ops: list[Operation] = [
        Insert(_record(request, text, message, request.timestamp or now), vectors[i])
        for i, (text, message) in enumerate(drafts)
    ]
    written = await ctx.store.apply([*ops, *(extra or []), *request.claim()], cause="add")
    records = [r for r in written[: len(ops)] if r is not None]
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


def _result(record: MemoryRecord, request: AddRequest) -> AddEvent:
    result: AddEvent = {"id": record.id, "memory": record.memory, "event": "ADD"}
    if not request.infer and request.memory_type != PROCEDURAL:
        result["actor_id"] = record.actor_id
        result["role"] = record.role
    return result
