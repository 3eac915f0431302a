"""Validate a call before anything is computed or written: an add() into an `AddRequest`, and the
paging and batch arguments of the other calls."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engram.core.messages import Message, normalize_messages
from engram.core.timeutil import normalize_date, normalize_timestamp
from engram.errors import ValidationError
from engram.limits import DEFAULT_LIMITS, Limits
from engram.prompts.extract import DEFAULT_CATEGORIES
from engram.store.base import Claim

PROCEDURAL = "procedural_memory"
MAX_BATCH = 1000  # memories in one batch_update / batch_delete


@dataclass(slots=True)
class AddRequest:
    messages: list[Message]
    scope: dict[str, str]
    event_time: str  # canonical timestamp: `timestamp` if given, else now
    metadata: dict[str, Any] = field(default_factory=dict)
    infer: bool = True
    memory_type: str | None = None
    expiration_date: str | None = None
    immutable: bool = False
    categories: list[str] = field(default_factory=list)  # explicit, for infer=False
    categories_allowed: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    timestamp: str | None = None
    instructions: str | None = None
    custom_fact_prompt: str | None = None
    custom_update_prompt: str | None = None
    graph: bool = False
    idempotency_key: str | None = None
    warnings: list[str] = field(default_factory=list)

    def claim(self) -> list[Claim]:
        """The operation that makes this add apply once per idempotency key (none without one)."""
        return [Claim(self.idempotency_key, self.event_time)] if self.idempotency_key else []

    @property
    def conversation_key(self) -> dict[str, str | None]:
        """The exact scope whose recent messages are this conversation's context."""
        return {name: self.scope.get(name) for name in ("user_id", "agent_id", "run_id")}


@dataclass(frozen=True, slots=True)
class Guidance:
    """What shapes extraction, from config and from the call (the call wins)."""

    custom_instructions: str | None = None
    custom_categories: Any = None
    includes: str | None = None
    excludes: str | None = None
    custom_fact_prompt: str | None = None
    custom_update_prompt: str | None = None


def build_request(
    messages: Any,
    scope: dict[str, str],
    *,
    now: str,
    metadata: Mapping[str, Any] | None,
    infer: bool,
    memory_type: str | None,
    expiration_date: Any,
    immutable: bool,
    categories: Sequence[str] | None = None,
    timestamp: Any = None,
    guidance: Guidance = Guidance(),
    graph: bool = False,
    idempotency_key: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> AddRequest:
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200
    ):
        raise ValidationError("idempotency_key must be a string of 1 to 200 characters")
    if not any(scope.get(k) for k in ("user_id", "agent_id", "run_id")):
        raise ValidationError("at least one of 'user_id', 'agent_id' or 'run_id' is required")
    if memory_type not in (None, PROCEDURAL):
        raise ValidationError(f"memory_type must be {PROCEDURAL!r} or None, got {memory_type!r}")
    if memory_type == PROCEDURAL and "agent_id" not in scope:
        raise ValidationError("procedural memories need an agent_id")
    stamp = None if timestamp is None else normalize_timestamp(timestamp, what="timestamp")
    normalized = normalize_messages(messages, limits)
    for name in ("custom_instructions", "includes", "excludes", "custom_fact_prompt"):
        value = getattr(guidance, name)
        if isinstance(value, str):
            limits.text(value, name)
    for given in (categories, guidance.custom_categories):
        if isinstance(given, list | tuple):
            limits.count("categories", len(given))
    if not infer:
        for index, message in enumerate(normalized):
            if message.role != "system" and not message.content.strip() and not message.parts:
                raise ValidationError(f"messages[{index}] has empty content")
    return AddRequest(
        messages=normalized,
        scope=scope,
        event_time=stamp or now,
        metadata=clean_metadata(metadata, limits),
        infer=flag(infer, "infer"),
        memory_type=memory_type,
        expiration_date=(
            None
            if expiration_date is None
            else normalize_date(expiration_date, what="expiration_date")
        ),
        immutable=flag(immutable, "immutable"),
        categories=clean_categories(categories),
        categories_allowed=custom_categories(guidance.custom_categories),
        timestamp=stamp,
        instructions=_instructions(guidance),
        custom_fact_prompt=_text(guidance.custom_fact_prompt, "prompt"),
        custom_update_prompt=_text(guidance.custom_update_prompt, "custom_update_memory_prompt"),
        graph=graph,
        idempotency_key=idempotency_key,
    )


def clean_metadata(
    metadata: Mapping[str, Any] | None, limits: Limits = DEFAULT_LIMITS
) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"metadata must be a dict, got {type(metadata).__name__}")
    if any(not isinstance(k, str) for k in metadata):
        raise ValidationError("metadata keys must be strings")
    try:
        encoded = json.dumps(dict(metadata), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"metadata must be JSON-serializable: {exc}") from exc
    limits.metadata(encoded)
    result: dict[str, Any] = json.loads(encoded)
    return result


def clean_categories(categories: Sequence[str] | None) -> list[str]:
    if categories is None:
        return []
    if isinstance(categories, str) or not all(isinstance(c, str) and c for c in categories):
        raise ValidationError("categories must be a list of non-empty strings")
    return list(dict.fromkeys(categories))


def custom_categories(value: Any) -> dict[str, str]:
    """mem0's `custom_categories`: `[{"name": "description"}, ...]` (or one dict) replaces the
    default 15; `None` keeps them."""
    if value is None:
        return dict(DEFAULT_CATEGORIES)
    items = [value] if isinstance(value, Mapping) else value
    if isinstance(items, str) or not isinstance(items, Sequence) or not items:
        raise ValidationError(
            'custom_categories must be a non-empty list like [{"name": "description"}]'
        )
    result: dict[str, str] = {}
    for item in items:
        if not isinstance(item, Mapping) or not item:
            raise ValidationError(
                'each custom category must be a dict like {"name": "description"}'
            )
        for name, description in item.items():
            if not isinstance(name, str) or not name.strip() or not isinstance(description, str):
                raise ValidationError(f"invalid custom category {name!r}: {description!r}")
            result[name.strip()] = description
    return result


def _instructions(guidance: Guidance) -> str | None:
    parts = []
    if guidance.custom_instructions:
        parts.append(_text(guidance.custom_instructions, "custom_instructions"))
    if guidance.includes:
        parts.append(f"Only remember facts about: {_text(guidance.includes, 'includes')}")
    if guidance.excludes:
        parts.append(f"Never remember facts about: {_text(guidance.excludes, 'excludes')}")
    return "\n".join(str(p) for p in parts) or None


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string")
    return value.strip()


def flag(value: Any, name: str) -> bool:
    """A boolean parameter: True or False, nothing taken for one ("false" is not false)."""
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be true or false, got {value!r}")
    return value


def limit_of(limit: int | None, top_k: int | None) -> int | None:
    """The one of `limit` / `top_k` given (a positive integer), or None."""
    if limit is not None and top_k is not None and limit != top_k:
        raise ValidationError("'limit' and 'top_k' mean the same; pass one of them")
    value = limit if limit is not None else top_k
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValidationError(f"limit/top_k must be a positive integer, got {value!r}")
    if value is not None and value >= 2**63:
        raise ValidationError(f"limit/top_k {value} is past any store (2**63 rows)")
    return value


@dataclass(frozen=True, slots=True)
class Paging:
    offset: int
    limit: int | None  # None: every row
    page: tuple[int, int] | None = None  # (page, page_size) when the call paged


def paging_of(page: int | None, page_size: int | None, cap: int | None) -> Paging:
    if page is None and page_size is None:
        return Paging(0, cap)
    if cap is not None:
        raise ValidationError("use either limit/top_k or page/page_size")
    page = 1 if page is None else page
    page_size = 100 if page_size is None else page_size
    for name, value in (("page", page), ("page_size", page_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    if page * page_size >= 2**63:
        raise ValidationError(f"page {page} of {page_size} is past any store (2**63 rows)")
    return Paging((page - 1) * page_size, page_size, (page, page_size))


def batch_items(memories: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    if isinstance(memories, str | bytes) or not isinstance(memories, Sequence):
        raise ValidationError(f"{name} takes a list of memories")
    if not memories:
        raise ValidationError(f"{name} needs at least one memory")
    if len(memories) > MAX_BATCH:
        raise ValidationError(f"{name} takes at most {MAX_BATCH} memories, got {len(memories)}")
    for index, item in enumerate(memories):
        if not isinstance(item, Mapping) or "memory_id" not in item:
            raise ValidationError(f"{name}: item {index} needs a 'memory_id'")
    ids = [str(item["memory_id"]) for item in memories]
    if len(set(ids)) != len(ids):
        raise ValidationError(f"{name}: the same memory_id appears twice")
    return list(memories)


def encode_cursor(position: tuple[str, int]) -> str:
    """A keyset position (created_at, row id) as an opaque token."""
    raw = f"{position[0]}|{position[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when, _, rid = raw.rpartition("|")
        if not when or not rid.isdigit():
            raise ValueError(raw)
        return when, int(rid)
    except ValueError:
        raise ValidationError(f"not a cursor this store gave: {token[:40]!r}") from None
