"""add(infer=True): context -> one extractor call -> reconcile -> one transaction.

Embedding calls: one for the new messages (to find related memories), one batch for the texts
that are added or updated. LLM calls: exactly one (plus one per image, when vision is on).
"""

from __future__ import annotations

from typing import Any

from engram.core.filters import Cond, Field, Node, Or, combine
from engram.core.ids import new_id, text_hash
from engram.core.messages import Message, one_speaker
from engram.core.reconcile import Change, Existing, reconcile
from engram.errors import LLMOutputError, NotFoundError
from engram.pipeline.context import Context
from engram.pipeline.requests import AddRequest
from engram.prompts.extract import ExtractInput, ExtractOutput, Fact
from engram.providers.llm.base import Usage
from engram.store.base import (
    Delete,
    Insert,
    LinkGraph,
    MemoryRecord,
    Operation,
    SaveMessages,
    Triple,
    Update,
)
from engram.types import AddEvent, AddResult

CONTEXT_MESSAGES = 10  # earlier turns of the scope shown as context
RELATED_MEMORIES = 15  # existing memories shown for reconciliation
DUPLICATE_SIMILARITY = 0.95  # an ADD this close to a stored memory of its scope is skipped
MAX_QUERY_CHARS = 4000


async def infer_add(ctx: Context, request: AddRequest, usage: Usage) -> AddResult:
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
) -> AddResult:
    recent = await ctx.store.recent_messages(request.conversation_key, CONTEXT_MESSAGES)
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
        agent_scope="agent_id" in request.scope and "user_id" not in request.scope,
        existing_about=["agent" if r.agent_id and not r.user_id else "user" for r in existing],
        existing_speakers=[r.actor_id for r in existing],
        user_id=request.scope.get("user_id"),
        custom_fact_prompt=request.custom_fact_prompt,
        custom_update_prompt=request.custom_update_prompt,
        graph=request.graph,
    )
    output = await ctx.extractor.extract(data, usage)
    changes, warnings = _reconcile(output.facts, existing, list(data.categories))
    ops = await _operations(ctx, request, changes, existing, conversation, usage)
    written = await ctx.store.apply([*ops, *request.claim()], cause="add:extraction")
    results = [
        _result(change, record, existing)
        for change, record in zip(changes, written, strict=False)
        if record is not None
    ]
    if not results:
        warnings += _nothing_stored(ctx.extractor.name, output, changes, written, warnings)
    out: AddResult = {"results": results, "warnings": [*request.warnings, *warnings]}
    if request.graph:
        links = [op for op in ops if isinstance(op, LinkGraph)]
        out["relations"] = {
            "added_entities": [r for link in links for r in link.added],
            "deleted_entities": [
                r for op in ops if isinstance(op, LinkGraph | Delete) for r in op.ended
            ],
        }
    return out


def _reconcile(
    facts: list[Fact], existing: list[MemoryRecord], categories: list[str]
) -> tuple[list[Change], list[str]]:
    """Each owner's facts are reconciled apart (the user and the agent may both be vegetarian);
    an existing memory is still changed at most once."""
    shown = [Existing(r.memory, r.immutable) for r in existing]
    changes: list[Change] = []
    warnings: list[str] = []
    touched: set[int] = set()
    for about in dict.fromkeys(f.about for f in facts):
        own = [f for f in facts if f.about == about]
        found, said = reconcile(own, shown, categories, touched)
        changes += found
        warnings += said
    return changes, warnings


def _nothing_stored(
    extractor: str,
    output: ExtractOutput,
    changes: list[Change],
    written: list[MemoryRecord | None],
    warnings: list[str],
) -> list[str]:
    """Why an add stored nothing, for the result's warnings."""
    reasons = list(output.notes)
    known = [f.text for f in output.facts if f.event == "NONE" and f.text.strip()]
    if known:
        reasons.append(f"nothing new to remember: already stored: {_quoted(known)}")
    close = [
        c.text for c, w in zip(changes, written, strict=False) if c.kind == "ADD" and w is None
    ]
    if close:
        reasons.append(f"nothing new to remember: close to a stored memory: {_quoted(close)}")
    if not reasons and not output.facts:
        who = "the LLM" if extractor.startswith("llm:") else f"the {extractor} extractor"
        reasons.append(f"{who} found nothing worth remembering")
    if not reasons and not warnings:
        reasons.append("nothing was stored: every fact found was left as it is")
    return reasons


def _quoted(texts: list[str]) -> str:
    return ", ".join(repr(t) for t in texts)


async def _operations(
    ctx: Context,
    request: AddRequest,
    changes: list[Change],
    existing: list[MemoryRecord],
    conversation: list[Message],
    usage: Usage,
) -> list[Operation]:
    texts = [c.text for c in changes if c.kind != "DELETE"]
    names = _entity_names(request, changes) if request.graph else []
    vectors = await ctx.embed([*texts, *names], "add", usage) if texts or names else None
    fact_vectors = iter(vectors[: len(texts)] if vectors is not None else ())
    name_vectors = (
        dict(zip(names, vectors[len(texts) :], strict=True)) if vectors is not None else {}
    )
    now = ctx.now()
    ops: list[Operation] = []
    links: list[LinkGraph] = []
    speaker = one_speaker(conversation)  # who said the facts the extractor does not name
    for change in changes:
        if change.kind == "ADD":
            record = _record(request, change, now, speaker)
            ops.append(Insert(record, next(fact_vectors), dedupe=DUPLICATE_SIMILARITY))
            scope = (record.user_id, record.agent_id, record.run_id)
        elif change.kind == "UPDATE":
            old = _changed(change, existing)
            update = Update(old.id, at=now, memory=change.text)
            update.embedding = next(fact_vectors)
            if request.metadata:  # the add's keys win, as in mem0; keys it does not give stay
                update.metadata = {**old.metadata, **request.metadata}
            if change.categories:
                update.categories = change.categories
            ops.append(update)
            scope = (old.user_id, old.agent_id, old.run_id)
        else:
            ops.append(Delete(_changed(change, existing).id, at=now, keep_graph=True))
            continue
        if request.graph:
            links.append(_link(request, change, scope, len(ops) - 1, name_vectors))
    ops.extend(links)
    messages = [(m.role, m.name, m.content) for m in conversation]
    ops.append(SaveMessages(request.conversation_key, messages, now, keep=CONTEXT_MESSAGES * 2))
    return ops


def _changed(change: Change, existing: list[MemoryRecord]) -> MemoryRecord:
    """The stored memory an UPDATE or DELETE changes (`reconcile` turns one without a valid
    target into an ADD or a warning, so this holds; an error, never a wrong write, otherwise)."""
    if change.target is None or not 0 <= change.target < len(existing):
        raise LLMOutputError(f"{change.kind} of {change.text!r} names no stored memory")
    return existing[change.target]


def _owner(scope: dict[str, str], about: str) -> str | None:
    if about == "agent" and "agent_id" in scope:
        return scope["agent_id"]
    return scope.get("user_id") or scope.get("agent_id") or scope.get("run_id")


def _entity(name: str, request: AddRequest, about: str) -> str:
    """The extractor's "user" / "agent" stand for the scope's own ids."""
    lowered = name.strip().lower()
    if lowered == "user" and "user_id" in request.scope:
        return request.scope["user_id"]
    if lowered == "agent" and "agent_id" in request.scope:
        return request.scope["agent_id"]
    if lowered in ("user", "agent"):
        return _owner(request.scope, about) or name
    return name.strip()


def _entity_names(request: AddRequest, changes: list[Change]) -> list[str]:
    names: dict[str, None] = {}
    for change in changes:
        for source, _, target in change.relations:
            names[_entity(source, request, change.about)] = None
            names[_entity(target, request, change.about)] = None
    return [n for n in names if n]


def _link(
    request: AddRequest,
    change: Change,
    scope: tuple[str | None, str | None, str | None],
    index: int,
    vectors: dict[str, Any],
) -> LinkGraph:
    triples = []
    for source, relationship, target in change.relations:
        s, t = _entity(source, request, change.about), _entity(target, request, change.about)
        triples.append(Triple(s, relationship, t, vectors.get(s), vectors.get(t)))
    owner = scope[0] or scope[1] or scope[2]
    return LinkGraph(
        scope=scope, at=request.event_time, memory=index, triples=triples,
        retire_previous=change.kind == "UPDATE", owner=owner,
    )  # fmt: skip


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


def _record(
    request: AddRequest, change: Change, now: str, speaker: str | None = None
) -> MemoryRecord:
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
        actor_id=change.speaker or (speaker if change.about == "user" else None),
        metadata=dict(request.metadata),
        categories=change.categories,
        expiration_date=request.expiration_date,
        immutable=request.immutable,
    )


def _result(change: Change, record: MemoryRecord, existing: list[MemoryRecord]) -> AddEvent:
    result: AddEvent = {"id": record.id, "memory": record.memory, "event": change.kind}
    if change.kind == "UPDATE" and change.target is not None:
        result["previous_memory"] = existing[change.target].memory
    return result
