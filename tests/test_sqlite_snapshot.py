"""The vector index saved beside a SQLite database (`store/sqlite/snapshot.py`): a reopened store
maps it instead of reading every vector, replays what changed since, and never uses a file that
does not go with the database (restored copies, damaged files, a reset)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from engram.core.filters import parse_filters
from engram.store.base import Attached, Delete, Insert, MemoryRecord
from engram.store.sqlite import indexing, snapshot
from engram.store.sqlite.store import SQLiteStore
from tests.test_ann import DIMS, clustered

NOW = "2026-01-01T00:00:00.000000+00:00"
TODAY = "2026-01-01"
SCOPES = [{"user_id": "u"}, {"user_id": "v", "agent_id": "a"}, {"run_id": "r"}]


def rec(i: int) -> MemoryRecord:
    scope = SCOPES[i % 3] if i >= 3000 else SCOPES[0]
    return MemoryRecord(id=f"00000000-0000-4000-8000-{i:012d}", memory=f"m{i}", hash="h",
                        created_at=NOW, updated_at=NOW, user_id=scope.get("user_id"),
                        agent_id=scope.get("agent_id"), run_id=scope.get("run_id"))  # fmt: skip


def store_at(path: Path, **kwargs: int) -> SQLiteStore:
    return SQLiteStore(path, ann_threshold=2000, snapshot_min=kwargs.get("snapshot_min", 100))


async def results(store: SQLiteStore, queries: np.ndarray) -> list[list[str]]:
    out = []
    for scope in SCOPES:
        where = parse_filters(scope)
        for q in queries:
            hits = await store.search(q, where, today=TODAY, top_k=5)
            out.append([h.record.id for h in hits])
    return out


async def filled(path: Path, data: np.ndarray) -> SQLiteStore:
    """A store of 3,000 rows in one scope (with its IVF index built) and 600 in three scopes."""
    store = store_at(path)
    await store.open(dims=DIMS, model_id="m")
    await store.apply([Insert(rec(i), data[i]) for i in range(3600)])
    await store.search(data[0], parse_filters(SCOPES[0]), today=TODAY, top_k=5)
    deadline = time.monotonic() + 30
    while not store.ann_ready(SCOPES[0]):
        assert time.monotonic() < deadline, "the IVF index was never installed"
        time.sleep(0.05)
    return store


def token_of(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'vectors'").fetchone()
    return None if row is None else str(row[0])


async def test_a_reopened_store_maps_the_saved_index_and_replays_later_changes(
    tmp_path: Path,
) -> None:
    db, data = tmp_path / "engram.db", clustered(4000)
    queries = data[[0, 5, 1234, 2999, 3001, 3302, 3599]]
    store = await filled(db, data)
    before = await results(store, queries)
    await store.close()
    saved = snapshot.path_for(db)
    assert saved.exists() and token_of(db) == snapshot.read(saved, DIMS).token  # type: ignore[union-attr]

    # Changes by a process that does not save (below its threshold): replayed at the next open.
    other = store_at(db, snapshot_min=10**9)
    await other.open(dims=DIMS, model_id="m")
    await other.apply([Delete(rec(5).id, at=NOW), Insert(rec(3600), data[3600])])
    await other.close()

    store = store_at(db)
    await store.open(dims=DIMS, model_id="m")
    after = await results(store, queries)
    keeper = store._keeper
    (big,), (small,) = (keeper.index.partitions_for(s) for s in SCOPES[:2])
    assert big.ivf is not None  # the IVF index kept (its partition copied: a row was appended)
    assert not small.vectors.flags.writeable  # mapped from the file, read-only
    assert keeper._unsaved == 2  # the two changed rows, not the 3,600
    assert rec(5).id not in after[1] and after[1][:3] == before[1][1:4]
    n = len(queries)  # the other scopes' results are those of the database, read exactly
    assert after[n:] == before[n:]
    new = await store.search(data[3600], parse_filters(SCOPES[0]), today=TODAY, top_k=1)
    assert new[0].record.id == rec(3600).id
    # A row appended to a mapped partition copies it first (the file is never written).
    content = saved.read_bytes()
    await store.apply([Insert(rec(3601), data[3601])])  # into SCOPES[1]'s partition
    found = await store.search(data[3601], parse_filters(SCOPES[1]), today=TODAY, top_k=1)
    assert found[0].record.id == rec(3601).id
    (small,) = keeper.index.partitions_for(SCOPES[1])
    assert small.vectors.flags.writeable and saved.read_bytes() == content
    await store.close()


@pytest.mark.parametrize("how", ["batches", "one call", "restore"])
async def test_a_process_that_only_writes_saves_the_index(tmp_path: Path, how: str) -> None:
    """A bulk load or an import (writes, no search, no deduplication) leaves the index saved
    at close: the next process maps it instead of reading every vector from the database."""
    db, data = tmp_path / "engram.db", clustered(600)
    store = store_at(db)
    await store.open(dims=DIMS, model_id="m")
    if how == "restore":
        await store.restore([Insert(rec(i), data[i]) for i in range(600)], Attached())
    else:
        size = 200 if how == "batches" else 600
        for start in range(0, 600, size):
            await store.apply([Insert(rec(i), data[i]) for i in range(start, start + size)])
    await store.close()
    saved = snapshot.path_for(db)
    assert saved.exists() and token_of(db) == snapshot.read(saved, DIMS).token  # type: ignore[union-attr]

    store = store_at(db)
    await store.open(dims=DIMS, model_id="m")
    found = await store.search(data[123], parse_filters(SCOPES[0]), today=TODAY, top_k=1)
    assert found[0].record.id == rec(123).id
    assert store._keeper._unsaved == 0  # mapped from the file: nothing read from the database
    await store.close()


async def test_the_index_follows_a_process_that_only_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every FOLLOW_EVERY rows written, the writing process's index catches up (after the
    commit), so it never falls behind the change log's reach."""
    monkeypatch.setattr(indexing, "FOLLOW_EVERY", 300)
    db, data = tmp_path / "engram.db", clustered(600)
    store = store_at(db)
    await store.open(dims=DIMS, model_id="m")
    for start in range(0, 600, 200):
        await store.apply([Insert(rec(i), data[i]) for i in range(start, start + 200)])
    assert len(store._keeper.index) == 400  # followed after 400 rows; the last 200 not yet
    await store.close()


async def test_a_file_that_does_not_go_with_the_database_is_not_used(tmp_path: Path) -> None:
    db, data = tmp_path / "engram.db", clustered(4000)
    queries = data[[1, 700, 3003]]
    store = await filled(db, data)
    expected = await results(store, queries)
    await store.close()
    shutil.copy(db, tmp_path / "copy.db")  # names the saved file
    saved = snapshot.path_for(db)

    # A copy restored over the database after the file was rewritten: the tokens differ.
    store = store_at(db)
    await store.open(dims=DIMS, model_id="m")
    await store.apply([Delete(rec(i).id, at=NOW) for i in range(600, 800)])
    await store.close()  # rewrites the file (200 changes: over a twentieth) and the token
    assert token_of(db) != token_of(tmp_path / "copy.db")
    shutil.copy(tmp_path / "copy.db", db)
    store = store_at(db)
    await store.open(dims=DIMS, model_id="m")
    assert await results(store, queries) == expected  # row 700 is back: read from the database
    assert store._keeper._unsaved == 3600
    await store.close()

    # A damaged file: read from the database, with a warning.
    with open(saved, "r+b") as f:
        f.truncate(saved.stat().st_size // 2)
    store = store_at(db, snapshot_min=10**9)
    await store.open(dims=DIMS, model_id="m")
    assert await results(store, queries) == expected
    await store.close()

    # A reset removes it.
    store = store_at(db)
    await store.open(dims=DIMS, model_id="m")
    await store.reset()
    assert not saved.exists()
    assert await results(store, queries) == [[]] * len(expected)
    await store.close()


@pytest.mark.parametrize("count", [0, 99])
async def test_small_stores_are_not_saved(tmp_path: Path, count: int) -> None:
    db, data = tmp_path / "engram.db", clustered(100)
    store = store_at(db)
    await store.open(dims=DIMS, model_id="m")
    await store.apply([Insert(rec(i), data[i]) for i in range(count)])
    await store.close()
    assert not snapshot.path_for(db).exists() and token_of(db) is None
