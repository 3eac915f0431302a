"""Run by the CrewAI virtualenv (tests/integrations/test_crewai.py): EngramStorage, CrewAI's
memory `StorageBackend`, called directly and through CrewAI's own `Memory` (every field given
and shallow recall: no LLM involved), over each kind of store.

Usage: crewai_storage.py library | crewai_storage.py remote URL API_KEY. `library`: an engram
Memory on a temporary store (the hashing embedder); `remote`: mem0's MemoryClient against
`engram serve` at URL. Prints "ok crewai <mode>".
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from crewai.memory.storage.backend import StorageBackend

from engram import AsyncMemory, Memory
from engram.integrations.crewai import EngramStorage


def stored(store: Any, user: str) -> list[dict[str, Any]]:
    """What Engram holds for `user`, as any client sees it."""
    return list(store.get_all(filters={"user_id": user})["results"])


def add_elsewhere(store: Any, text: str, user: str) -> str:
    """A memory another app wrote (verbatim, at once); its Engram id."""
    extra = {"async_mode": False} if hasattr(store, "host") else {}
    return str(store.add(text, user_id=user, infer=False, **extra)["results"][0]["id"])


@contextmanager
def refused(kind: type[BaseException], fragment: str) -> Iterator[None]:
    """The block must raise `kind`, with `fragment` in its message."""
    try:
        yield
    except kind as exc:
        if fragment not in str(exc):
            raise AssertionError(f"{fragment!r} not in {exc!r}") from exc
    else:
        raise AssertionError(f"no {kind.__name__} raised")


def exercise(store: Any, user: str) -> None:
    """Each method of the protocol, with `store` behind it; `user` is this run's scope."""
    storage = EngramStorage(store, user_id=user)
    assert isinstance(storage, StorageBackend)
    memory = storage.crew_memory(llm="gpt-4o-mini")  # never called: every field is given
    seats = memory.remember("Alex prefers window seats on long flights.", scope="/travel/flights",
                            categories=["travel"], importance=0.8, metadata={"topic": "seats"})  # fmt: skip
    memory.remember("Flights to Tokyo are cheaper in May.", scope="/travel",
                    categories=["travel", "prices"], importance=0.6)  # fmt: skip
    memory.remember("The team ships on Fridays.", scope="/work", categories=["process"],
                    importance=0.4)  # fmt: skip
    memory.remember("Alex's passport number is private.", scope="/travel", categories=["travel"],
                    importance=0.9, source="alex-session", private=True)  # fmt: skip

    # Engram holds each record as a memory: text, categories, time, CrewAI's fields in metadata.
    (kept,) = [m for m in stored(store, user) if m["memory"].startswith("Alex prefers")]
    assert kept["categories"] == ["travel"], kept
    assert kept["metadata"]["topic"] == "seats" and kept["metadata"]["crewai_id"] == seats.id
    assert kept["metadata"]["crewai_scope"] == "/travel/flights", kept
    assert kept["created_at"].startswith(seats.created_at.isoformat()[:19]), (kept, seats)

    recall(memory, seats.id)
    scopes(memory, storage)
    updated = memory.update(seats.id, content="Alex prefers aisle seats on long flights.")
    again = storage.get_record(seats.id)
    assert again is not None
    fields = {"last_accessed"}  # Engram's update time; the rest round-trips
    assert again.model_dump(exclude=fields) == updated.model_dump(exclude=fields), again
    assert memory.recall("aisle seats", depth="shallow")[0].record.id == seats.id
    assert storage.get_record("9a1f0c62-0000-4000-8000-000000000000") is None

    # A memory another app wrote is a record too: found, and deleted, by its Engram id.
    other_id = add_elsewhere(store, "Alex is vegetarian.", user)
    found = memory.recall("vegetarian", depth="shallow")[0].record
    assert (found.id, found.scope, found.content) == (other_id, "/", "Alex is vegetarian.")
    assert storage.get_record(other_id) is not None
    assert memory.forget(record_ids=[other_id]) == 1
    deletes(memory, storage)
    assert stored(store, user) == []


def recall(memory: Any, seats_id: str) -> None:
    matches = memory.recall("window seats on flights", depth="shallow")
    assert matches[0].record.id == seats_id and matches[0].record.importance == 0.8, matches
    assert matches[0].record.metadata == {"topic": "seats"}, matches[0]
    assert all(not m.record.private for m in matches)  # CrewAI's own privacy rule, on our fields
    mine = memory.recall("passport", depth="shallow", source="alex-session")
    assert "Alex's passport number is private." in [m.record.content for m in mine]
    in_travel = memory.recall("team ships Fridays", scope="/travel", depth="shallow")
    assert "The team ships on Fridays." not in [m.record.content for m in in_travel]
    priced = memory.recall("flights", categories=["prices"], depth="shallow")
    assert [m.record.content for m in priced] == ["Flights to Tokyo are cheaper in May."]


def scopes(memory: Any, storage: EngramStorage) -> None:
    """Scopes are paths: "/trav" is no prefix of "/travel"."""
    assert memory.list_scopes() == ["/travel", "/work"]
    assert memory.list_scopes("/travel") == ["/travel/flights"]
    info = memory.info("/travel")
    assert info.record_count == 3 and info.categories == ["prices", "travel"], info
    assert info.child_scopes == ["/travel/flights"] and info.oldest_record <= info.newest_record
    assert storage.count() == 4 and storage.count("/travel") == 3 and storage.count("/trav") == 0
    assert memory.list_categories() == {"travel": 3, "prices": 1, "process": 1}
    newest_first = [r.content for r in storage.list_records("/travel", limit=1, offset=1)]
    assert newest_first == ["Flights to Tokyo are cheaper in May."], newest_first


def deletes(memory: Any, storage: EngramStorage) -> None:
    """By category, by metadata, by age, by scope; nothing for an empty id list."""
    assert storage.delete(record_ids=[]) == 0
    assert memory.forget(categories=["prices"]) == 1
    assert memory.forget(metadata_filter={"topic": "seats"}) == 1
    assert memory.forget(older_than=datetime.utcnow() - timedelta(days=1)) == 0
    assert asyncio.run(storage.adelete(scope_prefix="/work")) == 1
    assert storage.count() == 1  # the private record
    with refused(ValueError, "embed through this storage"):
        storage.search([0.5] * 256)
    vector = storage.embed(["passport"])[0]
    assert asyncio.run(storage.asearch(vector, limit=1))[0][0].private
    memory.reset()
    assert storage.count() == 0


def library() -> None:
    config = {"embedder": {"provider": "hashing"}}
    with (
        tempfile.TemporaryDirectory() as directory,
        Memory({**config, "data_dir": directory}) as store,
    ):
        add_elsewhere(store, "Someone else's memory.", "bo")
        exercise(store, "alex")
        assert [m["memory"] for m in stored(store, "bo")] == ["Someone else's memory."]
        with refused(TypeError, "worker threads"):
            EngramStorage(AsyncMemory({**config, "data_dir": directory}), user_id="alex")


def remote(url: str, key: str) -> None:
    from mem0 import MemoryClient

    exercise(MemoryClient(api_key=key, host=url), "alex-remote")


if __name__ == "__main__":
    mode = sys.argv[1]
    library() if mode == "library" else remote(sys.argv[2], sys.argv[3])
    print(f"ok crewai {mode}")
