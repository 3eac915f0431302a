"""CrewAI 1.15 memory kept by Engram: `EngramStorage`, the storage (CrewAI's `StorageBackend`
protocol) of CrewAI's `Memory` (`pip install 'engram-llm[crewai]'`).

```python
storage = EngramStorage(Memory(), user_id="alex")
crew = Crew(agents=[...], tasks=[...], memory=storage.crew_memory(llm=llm))
```

CrewAI's `Memory` decides what to keep (its LLM picks each record's scope path, categories and
importance); EngramStorage keeps each record as one Engram memory of its scope, verbatim: text,
categories, creation time as the memory's `timestamp`, metadata, and CrewAI's fields as metadata
keys `crewai_*`. Memories of the scope written by other apps are records too (their Engram id,
path "/"). CrewAI hands its storage only vectors, and Engram searches by text: the `Memory` must
embed through `storage.embed` (`crew_memory()` sees to it), which notes each vector's text; so
`set_memory_storage_factory` alone cannot route `Crew(memory=True)` here (that Memory keeps
CrewAI's embedder). Scope prefixes are path prefixes ("/a" holds "/a/x", not "/ab"). See
docs/integrations.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from engram.errors import MissingDependencyError
from engram.integrations._backend import Backend
from engram.providers.embedders.hashing import HashingEmbedder

try:
    from crewai.memory.types import MemoryRecord, ScopeInfo
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingDependencyError(
        "engram.integrations.crewai needs CrewAI: pip install 'engram-llm[crewai]'"
    ) from exc

__all__ = ["EngramStorage"]

TEXTS_KEPT = 4096  # vectors whose text `search` can look up (the most recent)
BATCH = 1000  # memories per batch_delete (the API's limit)


class EngramStorage:
    """CrewAI's memory storage over Engram, in the scope `user_id` / `agent_id` / `run_id` (at
    least one). `memory` is an engram `Memory` or a mem0 `MemoryClient`; `dims` sizes the
    vectors `embed` gives CrewAI (hashed words: they only key texts and let CrewAI drop
    near-identical items of a batch; Engram embeds the text itself)."""

    def __init__(
        self,
        memory: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        dims: int = 256,
    ) -> None:
        self._backend = Backend(memory, user_id=user_id, agent_id=agent_id, run_id=run_id)
        if self._backend.is_async:
            raise TypeError(
                "CrewAI calls its storage from worker threads: pass an engram Memory or a mem0 "
                f"MemoryClient, not {type(memory).__name__}"
            )
        self._hasher = HashingEmbedder(dims)
        self._texts: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> EngramStorage:
        return self  # CrewAI copies its Memory (crews are copied); the store stays one

    def crew_memory(self, **options: Any) -> Any:
        """CrewAI's `Memory` kept here; `options` are its own (`llm`, `root_scope`, ...)."""
        from crewai.memory.unified_memory import Memory

        return Memory(storage=self, embedder=self.embed, **options)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """CrewAI's embedder: a vector per text, each remembered with its text for `search`."""
        vectors = self._hasher.embed_sync(list(texts))
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                key = _key(vector)
                self._texts[key] = text
                self._texts.move_to_end(key)
            while len(self._texts) > TEXTS_KEPT:
                self._texts.popitem(last=False)
        return [vector.tolist() for vector in vectors]

    # -- the protocol: writes -------------------------------------------------------------------

    def save(self, records: list[MemoryRecord]) -> None:
        for record in records:
            args = self._backend.add_args(record.content, infer=False, metadata=_metadata(record))
            args["timestamp"] = _aware(record.created_at).isoformat()
            if record.categories:
                args["categories"] = list(record.categories)
            self._backend.call("add", **args)

    def update(self, record: MemoryRecord) -> None:
        """Replace the record with `record.id` (saved anew if there is none)."""
        found = self._find(record.id)
        if found is None:
            self.save([record])
            return
        self._backend.call(
            "update", found["id"], text=record.content, metadata=_metadata(record),
            categories=list(record.categories),
        )  # fmt: skip

    def delete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        """Delete the records matching every criterion given (all of them without any)."""
        conditions = _conditions(scope_prefix, categories, metadata_filter)
        if record_ids is not None:
            if not record_ids:
                return 0
            ids = list(record_ids)
            conditions.append({"OR": [{"metadata": {"crewai_id": {"in": ids}}},
                                      {"id": {"in": ids}}]})  # fmt: skip
        if older_than is not None:
            conditions.append({"created_at": {"lt": _aware(older_than).isoformat()}})
        found = [item["id"] for item in self._backend.list_all(_all(conditions))]
        for start in range(0, len(found), BATCH):
            batch = [{"memory_id": memory_id} for memory_id in found[start : start + BATCH]]
            self._backend.call("batch_delete", batch)
        return len(found)

    def reset(self, scope_prefix: str | None = None) -> None:
        self.delete(scope_prefix=scope_prefix)

    # -- the protocol: reads --------------------------------------------------------------------

    def search(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        """The records best matching the text `query_embedding` was made from, best first, with
        Engram's scores (0 to 1)."""
        found = self._backend.search(
            self._text_of(query_embedding), top_k=limit, threshold=min_score or None,
            filters=_all(_conditions(scope_prefix, categories, metadata_filter)),
        )  # fmt: skip
        return [(_record(item), float(item["score"])) for item in found]

    def get_record(self, record_id: str) -> MemoryRecord | None:
        found = self._find(record_id)
        return None if found is None else _record(found)

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        """Records under `scope_prefix`, newest first."""
        if limit <= 0 or offset < 0:
            return []
        return self._records(scope_prefix)[offset : offset + limit]

    def get_scope_info(self, scope: str) -> ScopeInfo:
        path = _path(scope)
        records = self._records(path)
        created = [record.created_at for record in records]
        return ScopeInfo(
            path=path, record_count=len(records),
            categories=sorted({c for record in records for c in record.categories}),
            oldest_record=min(created, default=None), newest_record=max(created, default=None),
            child_scopes=_children(path, records),
        )  # fmt: skip

    def list_scopes(self, parent: str = "/") -> list[str]:
        path = _path(parent)
        return _children(path, self._records(path))

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        return dict(Counter(c for record in self._records(scope_prefix) for c in record.categories))

    def count(self, scope_prefix: str | None = None) -> int:
        return len(self._records(scope_prefix))

    # -- the protocol: async twins (CrewAI's own storages run the sync ones too) ---------------

    async def asave(self, records: list[MemoryRecord]) -> None:
        await asyncio.to_thread(self.save, records)

    async def asearch(
        self,
        query_embedding: list[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> list[tuple[MemoryRecord, float]]:
        return await asyncio.to_thread(
            self.search, query_embedding, scope_prefix, categories, metadata_filter, limit,
            min_score,
        )  # fmt: skip

    async def adelete(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> int:
        return await asyncio.to_thread(
            self.delete, scope_prefix, categories, record_ids, older_than, metadata_filter
        )

    # -- helpers --------------------------------------------------------------------------------

    def _text_of(self, vector: Sequence[float]) -> str:
        with self._lock:
            text = self._texts.get(_key(vector))
        if text is None:
            raise ValueError(
                "EngramStorage searches by text and got a vector it did not make: CrewAI's "
                "Memory must embed through this storage (storage.crew_memory(...), or "
                "Memory(storage=storage, embedder=storage.embed))"
            )
        return text

    def _find(self, record_id: str) -> dict[str, Any] | None:
        """The memory of a record id: CrewAI's (`crewai_id`), else an Engram id of the scope."""
        found = self._backend.list_all({"metadata": {"crewai_id": record_id}})
        if found:
            return found[0]
        item = self._backend.get(record_id)
        return item if item is not None and self._backend.in_scope(item) else None

    def _records(self, scope_prefix: str | None) -> list[MemoryRecord]:
        return [_record(item) for item in self._backend.list_all(_all(_conditions(scope_prefix)))]


def _key(vector: Sequence[float] | np.ndarray) -> bytes:
    raw = np.asarray(vector, dtype=np.float32).tobytes()
    return hashlib.blake2b(raw, digest_size=16).digest()


def _path(scope: str | None) -> str:
    """A scope path in one spelling: "/" or "/a/b"."""
    return "/" + (scope or "").strip("/")


def _ancestors(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/", *("/" + "/".join(parts[: i + 1]) for i in range(len(parts)))]


def _children(path: str, records: list[MemoryRecord]) -> list[str]:
    """The immediate child scopes of `path` among `records`' scopes."""
    depth = len(_ancestors(path))
    return sorted({_ancestors(r.scope)[depth] for r in records if len(_ancestors(r.scope)) > depth})


def _conditions(
    scope_prefix: str | None,
    categories: list[str] | None = None,
    metadata_filter: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The filters of CrewAI's criteria (mem0's filter language)."""
    out: list[dict[str, Any]] = []
    if _path(scope_prefix) != "/":
        out.append({"metadata": {"crewai_scopes": {"contains": _path(scope_prefix)}}})
    if categories:
        out.append({"categories": {"in": list(categories)}})
    if metadata_filter:
        out.append({"metadata": dict(metadata_filter)})
    return out


def _all(conditions: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"AND": conditions}


def _metadata(record: MemoryRecord) -> dict[str, Any]:
    own = {
        "crewai_id": record.id, "crewai_scope": _path(record.scope),
        "crewai_scopes": _ancestors(_path(record.scope)), "crewai_importance": record.importance,
        "crewai_private": record.private,
    }  # fmt: skip
    if record.source is not None:
        own["crewai_source"] = record.source
    return {**record.metadata, **own}


def _record(item: Mapping[str, Any]) -> MemoryRecord:
    metadata = dict(item.get("metadata") or {})
    own = {key: metadata.pop(key) for key in list(metadata) if key.startswith("crewai_")}
    created = _naive(item["created_at"])
    return MemoryRecord(
        id=own.get("crewai_id") or item["id"], content=item["memory"],
        scope=own.get("crewai_scope", "/"), categories=list(item.get("categories") or []),
        metadata=metadata, importance=own.get("crewai_importance", 0.5), created_at=created,
        last_accessed=_naive(item["updated_at"]) if item.get("updated_at") else created,
        source=own.get("crewai_source"), private=bool(own.get("crewai_private", False)),
    )  # fmt: skip


def _aware(moment: datetime) -> datetime:
    """CrewAI's naive datetimes are UTC (`datetime.utcnow()`)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _naive(stamp: str) -> datetime:
    """An ISO timestamp as CrewAI compares them: naive UTC."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
