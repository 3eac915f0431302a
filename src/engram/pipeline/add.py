"""add(): normalize the input, turn it into operations, apply them in one transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engram.core.ids import new_id, text_hash
from engram.core.messages import Message, normalize_messages
from engram.core.scope import scope_filter
from engram.core.timeutil import normalize_date
from engram.errors import ValidationError
from engram.pipeline.context import Context
from engram.pipeline.interim_extractor import extract_facts
from engram.store.base import Insert, MemoryRecord

PROCEDURAL = "procedural_memory"
DUPLICATE_SIMILARITY = 0.95  # a new fact this close to a stored one is not stored again


@dataclass(slots=True)
class AddRequest:
    messages: list[Message]
    scope: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)
    infer: bool = True
    memory_type: str | None = None
    expiration_date: str | None = None
    immutable: bool = False
    categories: list[str] = field(default_factory=list)


def build_request(
    messages: Any,
    scope: dict[str, str],
    *,
    metadata: Mapping[str, Any] | None,
    infer: bool,
    memory_type: str | None,
    expiration_date: Any,
    immutable: bool,
    categories: Sequence[str] | None = None,
) -> AddRequest:
    """Validate everything before anything is computed or written."""
    if not any(scope.get(k) for k in ("user_id", "agent_id", "run_id")):
        raise ValidationError("at least one of 'user_id', 'agent_id' or 'run_id' is required")
    if memory_type not in (None, PROCEDURAL):
        raise ValidationError(f"memory_type must be {PROCEDURAL!r} or None, got {memory_type!r}")
    if memory_type == PROCEDURAL and "agent_id" not in scope:
        raise ValidationError("procedural memories need an agent_id")
    return AddRequest(
        messages=normalize_messages(messages),
        scope=scope,
        metadata=clean_metadata(metadata),
        infer=bool(infer),
        memory_type=memory_type,
        expiration_date=(
            None
            if expiration_date is None
            else normalize_date(expiration_date, what="expiration_date")
        ),
        immutable=bool(immutable),
        categories=clean_categories(categories),
    )


def clean_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        result: dict[str, Any] = json.loads(json.dumps(dict(metadata), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata must be JSON-serializable: {exc}") from exc
    if any(not isinstance(k, str) for k in metadata):
        raise ValidationError("metadata keys must be strings")
    return result


def clean_categories(categories: Sequence[str] | None) -> list[str]:
    if categories is None:
        return []
    if isinstance(categories, str) or not all(isinstance(c, str) and c for c in categories):
        raise ValidationError("categories must be a list of non-empty strings")
    return list(dict.fromkeys(categories))


async def run_add(ctx: Context, request: AddRequest) -> dict[str, Any]:
    drafts = await _drafts(ctx, request)
    if not drafts:
        return {"results": []}
    vectors = await ctx.embedder.embed([text for text, _ in drafts], purpose="add")
    if request.infer:
        keep = await _novel(ctx, request, [t for t, _ in drafts], vectors)
        drafts = [drafts[i] for i in keep]
        vectors = vectors[keep]
    now = ctx.now()
    inserts = [
        Insert(_record(request, text, message, now), vectors[i])
        for i, (text, message) in enumerate(drafts)
    ]
    records = await ctx.store.apply(inserts)
    return {"results": [_result(r, request.infer) for r in records]}


async def _drafts(ctx: Context, request: AddRequest) -> list[tuple[str, Message | None]]:
    """The texts to store, each with the message it came from (for role and actor)."""
    conversation = [m for m in request.messages if m.role != "system"]
    if request.memory_type == PROCEDURAL:
        steps = "\n".join(f"{m.role}: {m.content.strip()}" for m in conversation)
        return [(f"Procedure summary:\n{steps}", None)] if steps else []
    if not request.infer:
        for index, message in enumerate(request.messages):
            if message.role != "system" and not message.content.strip():
                raise ValidationError(f"messages[{index}] has empty content")
        return [(m.content, m) for m in conversation]
    return [(fact, None) for fact in extract_facts(request.messages)]


async def _novel(
    ctx: Context, request: AddRequest, texts: list[str], vectors: np.ndarray
) -> list[int]:
    """Indexes of facts that are neither stored already nor repeated within this add."""
    scope = scope_filter({k: v for k, v in request.scope.items() if k != "app_id"})
    keep: list[int] = []
    for i, text in enumerate(texts):
        if any(float(vectors[i] @ vectors[j]) >= DUPLICATE_SIMILARITY for j in keep):
            continue
        hits = await ctx.store.search(
            vectors[i], scope, today=ctx.today(), top_k=1, show_expired=True
        )
        if hits and (
            hits[0].score >= DUPLICATE_SIMILARITY or hits[0].record.hash == text_hash(text)
        ):
            continue
        keep.append(i)
    return keep


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


def _result(record: MemoryRecord, infer: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"id": record.id, "memory": record.memory, "event": "ADD"}
    if not infer:
        result["actor_id"] = record.actor_id
        result["role"] = record.role
    return result
