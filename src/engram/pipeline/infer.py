"""add(infer=True): context -> one extractor call -> reconcile -> one transaction.

Embedding calls: one for the new messages (to find related memories), one batch for the texts
that are added or updated. LLM calls: exactly one (plus one per image, when vision is on).
"""

from __future__ import annotations

from typing import Any

from engram.core.filters import Cond, Field, Node, Or, combine
from engram.core.ids import new_id, text_hash
from engram.core.messages import Message
from engram.core.reconcile import Change, Existing, reconcile
from engram.errors import NotFoundError
from engram.pipeline.context import Context
from engram.pipeline.requests import AddRequest
from engram.prompts.extract import ExtractInput
from engram.providers.llm.base import Usage
from engram.store.base import Delete, Insert, MemoryRecord, Operation, SaveMessages, Update

CONTEXT_MESSAGES = 10  # earlier turns of the scope shown as context
RELATED_MEMORIES = 15  # existing memories shown for reconciliation
DUPLICATE_SIMILARITY = 0.95  # an ADD this close to a stored memory of its scope is skipped
MAX_QUERY_CHARS = 4000


async def infer_add(ctx: Context, request: AddRequest, usage: Usage) -> dict[str, Any]:
    conversation = [m for m in request.messages if m.role != "system" and m.content.strip()]
    if not conversation:
        return {"results": [], "warnings": list(request.warnings)}
    try:
        return await _attempt(ctx, request, conversation, usage)
    except NotFoundError:
        # A memory shown to the extractor was deleted meanwhile: nothing was written; start over
        # from fresh context once.
        return await _attempt(ctx, request, conversation, usage)


async def _attempt(
    ctx: Context, request: AddRequest, conversation: list[Message], usage: Usage
) -> dict[str, Any]:
    recent = await ctx.store.recent_messages(_key(request.scope), CONTEXT_MESSAGES)
    query = "\n".join(m.content for m in conversation)[-MAX_QUERY_CHARS:]
    vector = (await ctx.embed([query], "search", usage))[0]
    hits = await ctx.store.search(
        vector, _candidates(request.scope), today=ctx.today(), top_k=RELATED_MEMORIES
    )
    existing = [hit.record for hit in hits]
    data = ExtractInput(
        messages=conversation,
        today=request.event_time[:10],
        existing=[r.memory for r in existing],
        recent=[Message(role, content, name) for role, name, content in recent],
        categories=request.categories_allowed,
        instructions=request.instructions,
        with_agent="agent_id" in request.scope and "user_id" in request.scope,
        custom_fact_prompt=request.custom_fact_prompt,
        custom_update_prompt=request.custom_update_prompt,
    )
    output = await ctx.extractor.extract(data, usage)
    changes, warnings = reconcile(
        output.facts, [Existing(r.memory, r.immutable) for r in existing], list(data.categories)
    )
    ops = await _operations(ctx, request, changes, existing, conversation, usage)
    written = await ctx.store.apply(ops)
    results = [
        _result(change, record, existing)
        for change, record in zip(changes, written, strict=False)
        if record is not None
    ]
    return {"results": results, "warnings": [*request.warnings, *warnings]}


async def _operations(
    ctx: Context,
    request: AddRequest,
    changes: list[Change],
    existing: list[MemoryRecord],
    conversation: list[Message],
    usage: Usage,
) -> list[Operation]:
    texts = [c.text for c in changes if c.kind != "DELETE"]
    vectors = iter(await ctx.embed(texts, "add", usage)) if texts else iter(())
    now = ctx.now()
    ops: list[Operation] = []
    for change in changes:
        if change.kind == "ADD":
            record = _record(request, change, now)
            ops.append(Insert(record, next(vectors), dedupe=DUPLICATE_SIMILARITY))
        elif change.kind == "UPDATE":
            assert change.target is not None
            update = Update(existing[change.target].id, at=now, memory=change.text)
            update.embedding = next(vectors)
            if change.categories:
                update.categories = change.categories
            ops.append(update)
        else:
            assert change.target is not None
            ops.append(Delete(existing[change.target].id, at=now))
    messages = [(m.role, m.name, m.content) for m in conversation]
    ops.append(SaveMessages(_key(request.scope), messages, now, keep=CONTEXT_MESSAGES * 2))
    return ops


def _key(scope: dict[str, str]) -> dict[str, str | None]:
    return {name: scope.get(name) for name in ("user_id", "agent_id", "run_id")}


def _candidates(scope: dict[str, str]) -> Node | None:
    """Existing memories that new facts may update: the scope's, and with both a user and an
    agent, each one's own memories (of this run, when one is given)."""
    run = [Cond(Field("text", "run_id"), "eq", scope["run_id"])] if "run_id" in scope else []
    if "user_id" in scope and "agent_id" in scope:
        either = Or(
            (
                Cond(Field("text", "user_id"), "eq", scope["user_id"]),
                Cond(Field("text", "agent_id"), "eq", scope["agent_id"]),
            )
        )
        return combine(either, *run)
    ids = [Cond(Field("text", k), "eq", scope[k]) for k in ("user_id", "agent_id") if k in scope]
    return combine(*ids, *run)


def _record(request: AddRequest, change: Change, now: str) -> MemoryRecord:
    scope = dict(request.scope)
    if "user_id" in scope and "agent_id" in scope:  # each fact belongs to whom it is about
        scope.pop("agent_id" if change.about == "user" else "user_id")
    created = request.timestamp or now
    return MemoryRecord(
        id=new_id(),
        memory=change.text,
        hash=text_hash(change.text),
        created_at=created,
        updated_at=created,
        user_id=scope.get("user_id"),
        agent_id=scope.get("agent_id"),
        run_id=scope.get("run_id"),
        app_id=scope.get("app_id"),
        metadata=dict(request.metadata),
        categories=change.categories,
        expiration_date=request.expiration_date,
        immutable=request.immutable,
    )


def _result(change: Change, record: MemoryRecord, existing: list[MemoryRecord]) -> dict[str, Any]:
    result: dict[str, Any] = {"id": record.id, "memory": record.memory, "event": change.kind}
    if change.kind == "UPDATE" and change.target is not None:
        result["previous_memory"] = existing[change.target].memory
    return result
