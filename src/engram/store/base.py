"""The store interface: what any backend (SQLite, PostgreSQL) must provide.

A backend keeps memories, their embeddings and their history in one database, and applies every
change set in one transaction: either all of it is visible or none of it. The contract tests in
`tests/test_store_contract.py` run against every backend.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from engram.core.filters import Node
from engram.core.text import content_words
from engram.types import Relation

Vector = npt.NDArray[np.float32]
Event = Literal["ADD", "UPDATE", "DELETE"]


class Unset(enum.Enum):
    """The type of `UNSET`: "leave this field as it is" in an `Update` (`None` is a value there:
    an `expiration_date` of None clears it)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(slots=True)
class MemoryRecord:
    id: str
    memory: str
    hash: str
    created_at: str
    updated_at: str
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    app_id: str | None = None
    actor_id: str | None = None
    role: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    memory_type: str | None = None
    immutable: bool = False
    expiration_date: str | None = None
    feedback: float = 0.0  # in [-1, 1]: a ranking signal from users' feedback


@dataclass(slots=True)
class HistoryRecord:
    id: str
    memory_id: str
    old_memory: str | None
    new_memory: str | None
    event: Event
    created_at: str
    updated_at: str | None
    is_deleted: bool
    actor_id: str | None
    role: str | None
    # What made this version (see `engram.pipeline.items.CAUSES`); None before it was recorded.
    cause: str | None = None


# What an export carries besides memories, per kind of row: the fields of each row (entities
# by name within their scope; a relation names its source and target entities).
ATTACHED_FIELDS: dict[str, tuple[str, ...]] = {
    "entity": ("user_id", "agent_id", "run_id", "name", "entity_type", "created_at"),
    "relation": (
        "user_id", "agent_id", "run_id", "source", "relationship", "target", "memory_id",
        "valid_at", "invalid_at", "created_at",
    ),
    "profile": ("user_id", "agent_id", "run_id", "key", "value", "memory_id", "updated_at"),
    "profile_change": (
        "user_id", "agent_id", "run_id", "key", "old_value", "new_value", "memory_id",
        "changed_at",
    ),
    "feedback": ("memory_id", "feedback", "reason", "value", "created_at"),
}  # fmt: skip


@dataclass(slots=True)
class Attached:
    """The rows that hang off memories, as an export carries them: history, graph entities and
    relations (with their validity windows), profile facts and their changes, feedback. Each
    list is in the order it was written; `rows[kind]` holds dicts of `ATTACHED_FIELDS[kind]`.
    `entity_vectors` (one per entity, for a restore) are their names' embeddings."""

    history: list[HistoryRecord] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {kind: [] for kind in ATTACHED_FIELDS}
    )
    entity_vectors: list[Vector] = field(default_factory=list)


@dataclass(slots=True)
class Insert:
    """Add a memory. With `dedupe`, the store skips it (inside the transaction, so concurrent adds
    cannot both pass) when a memory of the same scope has the same text or a vector at least
    `dedupe` similar; `apply` then returns `None` in its place."""

    record: MemoryRecord
    embedding: Vector
    dedupe: float | None = None


@dataclass(slots=True)
class SaveMessages:
    """Keep the latest messages of a scope (the context of the next add), at most `keep`."""

    scope: dict[str, str | None]
    messages: list[tuple[str, str | None, str]]  # role, name, content
    at: str
    keep: int = 20


@dataclass(slots=True)
class Update:
    """Change some fields of a memory. `UNSET` fields are kept; a new text needs its embedding."""

    memory_id: str
    at: str
    memory: str | Unset = UNSET
    embedding: Vector | None = None
    metadata: dict[str, Any] | Unset = UNSET
    categories: list[str] | Unset = UNSET
    expiration_date: str | Unset | None = UNSET
    actor_id: str | None = None
    role: str | None = None
    allow_immutable: bool = False


@dataclass(slots=True)
class Delete:
    """Delete a memory. An explicit delete also removes the graph facts only it supported;
    the pipeline's deletes (`keep_graph`) end their validity instead."""

    memory_id: str
    at: str
    keep_graph: bool = False
    ended: list[dict[str, str]] = field(default_factory=list)  # relations ended (by `apply`)


@dataclass(frozen=True, slots=True)
class Triple:
    """A relation as the extractor states it; entity vectors are for name resolution."""

    source: str
    relationship: str
    target: str
    source_vector: Vector | None = None
    target_vector: Vector | None = None


@dataclass(slots=True)
class LinkGraph:
    """Graph changes of one memory: new relations it states (valid from `at`), and, when the
    memory was updated or deleted by the pipeline, its earlier relations end at `at`.
    `memory` is the index of the operation in the same `apply` call whose record it is."""

    scope: tuple[str | None, str | None, str | None]
    at: str
    memory: int
    triples: list[Triple] = field(default_factory=list)
    retire_previous: bool = False
    owner: str | None = None  # the scope's own entity name (the user or agent id)
    added: list[dict[str, str]] = field(default_factory=list)  # filled in by `apply`
    ended: list[dict[str, str]] = field(default_factory=list)  # filled in by `apply`


@dataclass(slots=True)
class Claim:
    """Apply the other operations of this `apply` call at most once per `key`: the key is
    recorded in the same transaction with what they wrote (`{"id", "memory", "event"}` each), and
    a key recorded before raises `ConflictError` (nothing is written). `claimed(key)` reads it."""

    key: str
    at: str


Operation = Insert | Update | Delete | SaveMessages | LinkGraph | Claim


@dataclass(slots=True)
class Page:
    records: list[MemoryRecord]
    total: int
    last: tuple[str, int] | None = None  # the last record's keyset position (`before`)


@dataclass(slots=True)
class Hit:
    record: MemoryRecord
    score: float


@dataclass(frozen=True, slots=True)
class KeywordMatches:
    """Full-text matches of a query within the filters: the backend's row key -> BM25 (higher
    is better), best first, and whether that is every match. Opaque to callers: pass it back to
    `candidates`."""

    scores: dict[Any, float]
    complete: bool
    # When the backend scored every match: BM25 of given rows among them (those matching), for
    # candidates the other retrievers bring (not checked against the filters: they are).
    score_of: Callable[[list[Any]], dict[Any, float]] | None = None


@dataclass(slots=True)
class Candidate:
    """A search candidate: what ranking needs (the full record is loaded for the winners only)
    and its raw scores: cosine, and BM25 (higher is better; 0: no query term)."""

    memory_id: str
    created_at: str
    feedback: float
    vector: float
    keyword: float
    actor_id: str | None = None
    neighbours: tuple[str, ...] = ()  # candidates that are its adjacent turns (memory ids)
    text: str = ""  # its first `core.text.CONTENT_CHARS` characters
    words: int = field(init=False)  # how much it states: `core.text.content_words` of `text`

    def __post_init__(self) -> None:
        self.words = content_words(self.text)


def conversation_line(role: str | None, actor_id: str | None) -> bool:
    """Whether a memory is a line of a conversation, whose adjacent lines are its neighbours in
    search: a verbatim message (it has a role), or what a named speaker said (an actor)."""
    return role is not None or actor_id is not None


class Store(Protocol):
    """A memory store. All methods are coroutines; blocking I/O stays inside the backend."""

    async def open(self, *, dims: int, model_id: str) -> None:
        """Create or migrate the schema; raise `DimensionMismatchError` if vectors disagree."""
        ...

    async def apply(
        self, operations: Sequence[Operation], *, cause: str | None = None
    ) -> list[MemoryRecord | None]:
        """Apply all operations in one transaction and return, per operation, the record it
        wrote (deletes: the removed record; skipped duplicates and messages: `None`). A missing
        id raises `NotFoundError`, an immutable memory `ImmutableMemoryError`; either way
        nothing is written."""
        ...

    async def recent_messages(
        self, scope: dict[str, str | None], limit: int
    ) -> list[tuple[str, str | None, str]]:
        """The last `limit` messages saved for exactly this scope, oldest first."""
        ...

    async def claimed(self, key: str) -> list[dict[str, Any]] | None:
        """What the `apply` call that claimed `key` wrote, or `None` if none did."""
        ...

    async def get(self, memory_id: str) -> MemoryRecord | None: ...

    async def get_many(self, memory_ids: Sequence[str]) -> dict[str, MemoryRecord]: ...

    async def list_memories(
        self,
        where: Node | None,
        *,
        today: str,
        show_expired: bool = False,
        offset: int = 0,
        limit: int | None = None,
        before: tuple[str, int] | None = None,
    ) -> Page:
        """Matching memories, newest first, with the total count of matches. `before`: only
        those after that position in this order (a previous page's `last`), found through the
        index however deep the page."""
        ...

    async def search(
        self,
        vector: Vector,
        where: Node | None,
        *,
        today: str,
        top_k: int,
        threshold: float | None = None,
        show_expired: bool = False,
    ) -> list[Hit]:
        """The `top_k` most similar matching memories; scores in [0, 1], best first."""
        ...

    async def keyword_matches(
        self,
        terms: Sequence[str],
        where: Node | None,
        *,
        today: str,
        show_expired: bool = False,
        want: int | None = None,
    ) -> KeywordMatches:
        """Full-text matches of any of `terms` among the memories passing the filters (a search
        runs this while the query is being embedded): at least the `want` best when there are
        that many (every match when `want` is None)."""
        ...

    async def candidates(
        self,
        vector: Vector | None,
        terms: Sequence[str],
        where: Node | None,
        *,
        today: str,
        n_vector: int,
        n_keyword: int,
        show_expired: bool = False,
        extra_ids: Sequence[str] = (),
        keyword: KeywordMatches | Awaitable[KeywordMatches] | None = None,
    ) -> list[Candidate]:
        """The union of the `n_vector` most similar and the `n_keyword` best full-text matches
        (any of `terms`; `keyword`, when given, is their `keyword_matches`, or the task still
        computing them: the store may run its nearest-neighbour statement meanwhile) among
        matching memories, plus the matching ones of `extra_ids` (from the graph), each with
        both scores."""
        ...

    async def relations(
        self, scope: dict[str, str], *, include_ended: bool = False, where: Node | None = None
    ) -> list[dict[str, Any]]:
        """The scope's relations (valid ones only, unless `include_ended`), oldest first. With
        an empty scope and a `where`, the relations of every scope that has a memory matching
        it (a filter whose ids sit inside OR / NOT has no one scope)."""
        ...

    async def neighbourhood(
        self, scope: dict[str, str], query: str, where: Node | None = None
    ) -> tuple[dict[str, float], list[Relation]]:
        """Memory ids linked to entities named in `query` (1.0 direct, 0.5 one hop away) and the
        valid relations of those entities; the scopes are chosen as in `relations`."""
        ...

    async def profile(self, scope: dict[str, str]) -> dict[str, dict[str, Any]]: ...

    async def entities(self) -> list[dict[str, Any]]:
        """Every user, agent, app and run id with memories: `{"type", "name", "total_memories",
        "created_at", "updated_at"}` (oldest and newest of its memories)."""
        ...

    async def profile_history(self, scope: dict[str, str]) -> list[dict[str, Any]]: ...

    async def set_feedback(
        self, memory_id: str, feedback: str | None, reason: str | None, value: float, *, at: str
    ) -> None:
        """Record feedback on a memory; `value` in [-1, 1] becomes its ranking signal."""
        ...

    async def delete_where(self, where: Node, *, at: str, cause: str | None = None) -> int:
        """Delete every matching memory (with history) in one transaction; return how many."""
        ...

    async def history(self, memory_id: str) -> list[HistoryRecord]: ...

    async def export(self, where: Node | None) -> tuple[list[MemoryRecord], Attached]:
        """From one snapshot: every memory matching `where` (expired ones too; every memory
        when `None`), oldest first, and what is attached to them: their history, the relations
        they state and those relations' entities, the profile facts and changes they caused,
        their feedback. With `where=None`, the rows of deleted memories too."""
        ...

    async def restore(self, memories: Sequence[Insert], attached: Attached) -> None:
        """Write exported records and attached rows as they are, in one transaction. An entity
        that exists already in its scope (same normalised name) is reused; a memory id or a
        scope's profile key that exists already raises `ConflictError`, a relation naming an
        entity that is neither given nor stored raises `ValidationError`: nothing is written."""
        ...

    async def reset(self) -> None:
        """Remove every memory and history row (the schema stays)."""
        ...

    async def close(self) -> None: ...
