"""The store contract: every backend runs these (parametrize `store` over new backends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from engram.core.filters import parse_filters
from engram.errors import (
    ConflictError,
    DimensionMismatchError,
    ImmutableMemoryError,
    NotFoundError,
    StoreError,
)
from engram.store.base import Claim, Delete, Insert, MemoryRecord, Store, Update
from engram.store.sqlite.store import SQLiteStore

DIMS = 8
TODAY = "2026-01-01"


def vec(*values: float) -> np.ndarray:
    v = np.zeros(DIMS, dtype=np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


def rec(i: int, user: str = "u1", **kw: object) -> MemoryRecord:
    stamp = f"2025-01-{i + 1:02d}T00:00:00.000000+00:00"
    return MemoryRecord(
        id=f"00000000-0000-4000-8000-{i:012d}", memory=f"memory {i}", hash=f"h{i}",
        created_at=stamp, updated_at=stamp, user_id=user, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store
    if request.param == "postgres":
        from engram.store.postgres.store import PostgresStore

        backend = PostgresStore(request.getfixturevalue("pg_url"), project="contract")
    else:
        backend = SQLiteStore(tmp_path / "contract.db")
    await backend.open(dims=DIMS, model_id="test-model")
    yield backend
    await backend.close()


async def test_insert_get_and_history(store: Store) -> None:
    await store.apply([Insert(rec(1, metadata={"k": 1}), vec(1))])
    got = await store.get(rec(1).id)
    assert got is not None and got.metadata == {"k": 1} and got.memory == "memory 1"
    history = await store.history(rec(1).id)
    assert [h.event for h in history] == ["ADD"]


async def test_apply_is_all_or_nothing(store: Store) -> None:
    await store.apply([Insert(rec(1), vec(1))])
    with pytest.raises(NotFoundError):
        await store.apply(
            [Insert(rec(2), vec(0, 1)), Delete(rec(9).id, at="2026-01-01T00:00:00.000000+00:00")]
        )
    assert await store.get(rec(2).id) is None
    with pytest.raises(ConflictError):
        await store.apply([Insert(rec(3), vec(1)), Insert(rec(1), vec(1))])
    assert await store.get(rec(3).id) is None


async def test_claim_applies_a_change_set_once(store: Store) -> None:
    at = "2026-01-01T00:00:00.000000+00:00"
    assert await store.claimed("job-1") is None
    await store.apply([Insert(rec(1), vec(1)), Claim("job-1", at)])
    expected = [{"id": rec(1).id, "memory": "memory 1", "event": "ADD"}]
    assert await store.claimed("job-1") == expected
    with pytest.raises(ConflictError):
        await store.apply([Insert(rec(2), vec(0, 1)), Claim("job-1", at)])
    assert await store.get(rec(2).id) is None
    assert await store.claimed("job-1") == expected


async def test_update_keeps_history_and_respects_immutable(store: Store) -> None:
    await store.apply([Insert(rec(1), vec(1)), Insert(rec(2, immutable=True), vec(0, 1))])
    at = "2026-02-01T00:00:00.000000+00:00"
    await store.apply([Update(rec(1).id, at=at, memory="new text", embedding=vec(0, 0, 1))])
    history = await store.history(rec(1).id)
    assert [(h.event, h.old_memory, h.new_memory) for h in history] == [
        ("ADD", None, "memory 1"),
        ("UPDATE", "memory 1", "new text"),
    ]
    with pytest.raises(ImmutableMemoryError):
        await store.apply([Update(rec(2).id, at=at, metadata={"x": 1})])
    hits = await store.search(vec(0, 0, 1), parse_filters({"user_id": "u1"}), today=TODAY, top_k=1)
    assert hits[0].record.id == rec(1).id and hits[0].score == pytest.approx(1.0)


async def test_search_is_scoped_filtered_and_hides_expired(store: Store) -> None:
    await store.apply(
        [
            Insert(rec(1, metadata={"topic": "a"}), vec(1)),
            Insert(rec(2, metadata={"topic": "b"}), vec(1, 0.1)),
            Insert(rec(3, expiration_date="2025-06-01"), vec(1, 0.2)),
            Insert(rec(4, user="u2"), vec(1)),
        ]
    )
    scope = parse_filters({"user_id": "u1"})
    assert [h.record.id for h in await store.search(vec(1), scope, today=TODAY, top_k=10)] == [
        rec(1).id,
        rec(2).id,
    ]
    shown = await store.search(vec(1), scope, today=TODAY, top_k=10, show_expired=True)
    assert len(shown) == 3
    only_b = parse_filters({"user_id": "u1", "topic": "b"})
    assert [h.record.id for h in await store.search(vec(1), only_b, today=TODAY, top_k=10)] == [
        rec(2).id
    ]
    high = await store.search(vec(1), scope, today=TODAY, top_k=10, threshold=0.999)
    assert [h.record.id for h in high] == [rec(1).id]


async def test_list_pages_with_total(store: Store) -> None:
    await store.apply([Insert(rec(i), vec(1, i)) for i in range(25)])
    where = parse_filters({"user_id": "u1"})
    page = await store.list_memories(where, today=TODAY, offset=20, limit=10)
    assert page.total == 25 and len(page.records) == 5
    everything = await store.list_memories(where, today=TODAY)
    assert len(everything.records) == 25
    assert everything.records[0].id == rec(24).id  # newest first


async def test_delete_where_counts_and_keeps_history(store: Store) -> None:
    await store.apply([Insert(rec(i), vec(1, i)) for i in range(5)])
    await store.apply([Insert(rec(9, user="u2"), vec(1))])
    where = parse_filters({"user_id": "u1"})
    assert where is not None
    count = await store.delete_where(where, at="2026-01-01")
    assert count == 5
    assert (await store.list_memories(None, today=TODAY)).total == 1
    assert [h.event for h in await store.history(rec(0).id)] == ["ADD", "DELETE"]
    assert await store.search(vec(1), parse_filters({"user_id": "u1"}), today=TODAY, top_k=5) == []


async def test_reset_empties_everything(store: Store) -> None:
    await store.apply([Insert(rec(1), vec(1))])
    await store.reset()
    assert (await store.list_memories(None, today=TODAY)).total == 0
    assert await store.history(rec(1).id) == []
    assert await store.search(vec(1), None, today=TODAY, top_k=5) == []


async def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    a, b = SQLiteStore(tmp_path / "shared.db"), SQLiteStore(tmp_path / "shared.db")
    await a.open(dims=DIMS, model_id="m")
    await b.open(dims=DIMS, model_id="m")
    try:
        scope = parse_filters({"user_id": "u1"})
        assert await b.search(vec(1), scope, today=TODAY, top_k=5) == []
        await a.apply([Insert(rec(1), vec(1))])
        assert [h.record.id for h in await b.search(vec(1), scope, today=TODAY, top_k=5)] == [
            rec(1).id
        ]
        await a.apply([Delete(rec(1).id, at="2026-01-01")])
        assert await b.search(vec(1), scope, today=TODAY, top_k=5) == []
    finally:
        await a.close()
        await b.close()


async def test_other_dimension_or_model_is_refused(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "dims.db")
    await first.open(dims=DIMS, model_id="m")
    await first.apply([Insert(rec(1), vec(1))])  # vectors of "m": another model would mix
    await first.close()
    for dims, model in ((DIMS * 2, "m"), (DIMS, "other")):
        again = SQLiteStore(tmp_path / "dims.db")
        with pytest.raises(DimensionMismatchError, match="dimensional"):
            await again.open(dims=dims, model_id=model)
        await again.close()


async def test_schema_is_versioned_and_newer_versions_are_refused(tmp_path: Path) -> None:
    import sqlite3

    from engram.errors import StoreError
    from engram.store.sqlite.schema import SCHEMA_VERSION

    path = tmp_path / "versions.db"
    store = SQLiteStore(path)
    await store.open(dims=DIMS, model_id="m")
    await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    newer = SQLiteStore(path)
    with pytest.raises(StoreError, match="newer than this Engram"):
        await newer.open(dims=DIMS, model_id="m")
    await newer.close()


def test_concurrent_first_opens_wait_instead_of_failing(tmp_path: Path) -> None:
    """Switching a new file to WAL takes an exclusive lock, and SQLite answers BUSY at once
    (no busy wait) when openers race; the store must retry, not fail."""
    import threading

    errors: list[BaseException] = []
    for trial in range(40):
        stores = [SQLiteStore(tmp_path / f"race-{trial}.db") for _ in range(4)]
        barrier = threading.Barrier(len(stores))

        def open_now(store: SQLiteStore, barrier: threading.Barrier = barrier) -> None:
            conn = store._conn()
            barrier.wait()
            try:
                store._open(conn, DIMS, "m")
            except BaseException as exc:
                errors.append(exc)
            conn.close()

        threads = [threading.Thread(target=open_now, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


async def test_an_old_database_upgrades_with_its_data(tmp_path: Path) -> None:
    import sqlite3

    from engram.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION, _statements

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("dims", str(DIMS)), ("model_id", "m"), ("epoch", "e")],
    )
    conn.execute(
        "INSERT INTO memories (id, memory, hash, user_id, created_at, updated_at, embedding) "
        "VALUES (?, 'Keeps bees in the garden', 'h', 'u1', '2025-01-01', '2025-01-01', ?)",
        (rec(1).id, vec(1).tobytes()),
    )
    conn.close()
    store = SQLiteStore(path)
    await store.open(dims=DIMS, model_id="m")
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    found = await store.candidates(None, ["bees"], parse_filters({"user_id": "u1"}), today=TODAY,
                                   n_vector=0, n_keyword=5)  # fmt: skip
    assert [c.memory_id for c in found] == [rec(1).id]
    old = await store.get(rec(1).id)
    assert old is not None
    assert old.feedback == 0.0
    await store.close()


# -- PostgreSQL: one database, many stores ---------------------------------------------------


async def test_postgres_stores_share_a_project_and_projects_are_apart(pg_url: str) -> None:
    from engram.store.postgres.store import PostgresStore

    one, two = PostgresStore(pg_url, project="p1"), PostgresStore(pg_url, project="p1")
    other = PostgresStore(pg_url, project="p2")
    for backend in (one, two, other):
        await backend.open(dims=DIMS, model_id="test-model")
    await one.apply([Insert(rec(1), vec(1))])
    assert (await two.get(rec(1).id)) is not None  # another server process sees it at once
    assert await other.get(rec(1).id) is None
    assert (await other.list_memories(None, today=TODAY)).total == 0
    assert await other.search(vec(1), None, today=TODAY, top_k=5) == []
    await other.apply([Insert(rec(1), vec(1))])  # the same id in another project is its own
    await one.reset()
    assert await one.get(rec(1).id) is None and await other.get(rec(1).id) is not None
    for backend in (one, two, other):
        await backend.close()


async def test_postgres_refuses_another_embedder_and_newer_schemas(pg_url: str) -> None:
    import psycopg

    from engram.store.postgres.store import PostgresStore

    first = PostgresStore(pg_url, project="dims")
    await first.open(dims=DIMS, model_id="m")
    await first.apply([Insert(rec(1), vec(1))])
    await first.close()
    for dims, model in ((DIMS * 2, "m"), (DIMS, "other")):
        again = PostgresStore(pg_url, project="dims")
        with pytest.raises(DimensionMismatchError, match="dimensional"):
            await again.open(dims=dims, model_id=model)
        await again.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE engram_schema SET version = version + 1")
    newer = PostgresStore(pg_url, project="dims")
    with pytest.raises(StoreError, match="newer"):
        await newer.open(dims=DIMS, model_id="m")
    await newer.close()


async def test_postgres_servers_starting_together_migrate_once(pg_url: str) -> None:
    import asyncio

    import psycopg

    from engram.store.postgres.schema import SCHEMA_VERSION
    from engram.store.postgres.store import PostgresStore

    stores = [PostgresStore(pg_url, project=f"s{i}") for i in range(3)]
    await asyncio.gather(*(s.open(dims=DIMS, model_id="m") for s in stores))
    with psycopg.connect(pg_url) as conn:
        found = conn.execute("SELECT version FROM engram_schema").fetchall()
        assert found == [(SCHEMA_VERSION,)]
    for s in stores:
        await s.close()
