"""The shapes `Memory` and `AsyncMemory` return: mem0's result dicts, typed.

They are plain dicts at run time (what mem0's callers index and serialise); these TypedDicts only
let a type checker and an editor know their keys. Keys marked `NotRequired` appear only when they
apply (a memory's `user_id` when it has one, `score` in search results, `warnings` when there is
something to say).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "AddEvent",
    "AddResult",
    "FeedbackResult",
    "HistoryItem",
    "ListResult",
    "MemoryItem",
    "MessageResult",
    "ProfileResult",
    "Relation",
    "SearchResult",
    "SummaryResult",
]


class MemoryItem(TypedDict):
    """One memory: what `get` returns and each element of `get_all` / `search` results."""

    id: str
    memory: str
    hash: str
    metadata: dict[str, Any]
    categories: list[str]
    created_at: str  # ISO 8601, UTC: the event time (`timestamp` when the add gave one)
    updated_at: str
    user_id: NotRequired[str]
    agent_id: NotRequired[str]
    run_id: NotRequired[str]
    app_id: NotRequired[str]
    actor_id: NotRequired[str]  # the message's `name`
    role: NotRequired[str]
    memory_type: NotRequired[str]
    expiration_date: NotRequired[str]  # YYYY-MM-DD
    immutable: NotRequired[bool]
    score: NotRequired[float]  # search results: the fused score in [0, 1]
    explain: NotRequired[dict[str, Any]]  # search(explain=True): the recipe and each component


class AddEvent(TypedDict):
    """What one add did to one memory."""

    id: str
    memory: str
    event: Literal["ADD", "UPDATE", "DELETE"]
    previous_memory: NotRequired[str]  # UPDATE: the text it replaced
    actor_id: NotRequired[str | None]  # infer=False: the message's name and role
    role: NotRequired[str | None]


class AddResult(TypedDict):
    results: list[AddEvent]
    usage: NotRequired[dict[str, Any]]  # LLM and embedding calls, tokens, the extractor
    warnings: NotRequired[list[str]]  # what was not applied as asked, or why nothing was stored
    relations: NotRequired[dict[str, list[dict[str, Any]]]]  # graph: added / deleted entities
    replayed: NotRequired[bool]  # an idempotency key applied before


class Relation(TypedDict):
    """A graph relation: search returns `destination`, get_all `target` (as mem0 does)."""

    source: str
    relationship: str
    destination: NotRequired[str]
    target: NotRequired[str]


class SearchResult(TypedDict):
    results: list[MemoryItem]
    relations: NotRequired[list[Relation]]
    warnings: NotRequired[list[str]]
    usage: NotRequired[dict[str, int]]  # recipes that ask the LLM: its calls and tokens


class ListResult(TypedDict):
    results: list[MemoryItem]
    total: int  # every match, also when a page or limit returns fewer
    page: NotRequired[int]
    page_size: NotRequired[int]
    next_page: NotRequired[int | None]
    next_cursor: NotRequired[str | None]  # with `after`: the next page's cursor, None at the end
    relations: NotRequired[list[Relation]]


class HistoryItem(TypedDict):
    id: str
    memory_id: str
    old_memory: str | None
    new_memory: str | None
    event: Literal["ADD", "UPDATE", "DELETE"]
    created_at: str
    updated_at: str | None
    is_deleted: bool
    actor_id: str | None
    role: str | None
    # What made this version (an Engram extension): "add" (stored as given), "add:extraction"
    # (an add's extracted facts, reconciled), "update", "delete", "delete_all", "batch_update",
    # "batch_delete"; None for versions written before Engram recorded it.
    cause: str | None


class MessageResult(TypedDict):
    """update, delete, delete_all, batch_update, batch_delete."""

    message: str
    deleted_count: NotRequired[int]
    updated_count: NotRequired[int]


class FeedbackResult(TypedDict):
    id: str
    feedback: str | None
    feedback_reason: str | None


class ProfileResult(TypedDict):
    profile: dict[str, str]
    results: list[dict[str, Any]]  # each fact: key, value, memory_id, updated_at
    history: NotRequired[list[dict[str, Any]]]


class SummaryResult(TypedDict):
    summary: str
    memory_count: int
    method: str
