"""Checks of a data directory's SQLite store as it lies on disk, after a crash or a storm of
writers.

`check_sqlite` reads the file with plain sqlite3: SQLite's own integrity check, the full-text
index against the rows (FTS5's `integrity-check` and its row ids), every row's vector, the change
log the in-process vector indexes replay, and history against memories. `check_library_view` opens
the store through `Memory`: every acknowledged memory is readable with its last acknowledged text
(or the one a change in flight at a kill gave it), every acknowledged delete stays deleted, each
user's vector search returns exactly that user's rows, and sampled keyword searches find their
memory.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from engram import Memory
from tests.reliability.writer import DIMS, Acks, memory_config, token_of

SAMPLE = 20  # keyword searches per check


@dataclass(frozen=True, slots=True)
class StoreFigures:
    memories: int
    fulltext: int
    history: int


def _ids(conn: sqlite3.Connection, sql: str) -> set[object]:
    return {row[0] for row in conn.execute(sql)}


def check_sqlite(db: Path, dims: int = DIMS) -> StoreFigures:
    """Assert the store in `db` is whole; its figures."""
    with contextlib.closing(sqlite3.connect(db, timeout=60, isolation_level=None)) as conn:
        verdict = conn.execute("PRAGMA integrity_check").fetchall()
        assert verdict == [("ok",)], f"{db}: PRAGMA integrity_check: {verdict[:5]}"
        try:  # rank 1: the index is also compared with the rows it was built from
            conn.execute(
                "INSERT INTO memories_fts (memories_fts, rank) VALUES ('integrity-check', 1)"
            )
        except sqlite3.DatabaseError as exc:
            message = f"{db}: the full-text index disagrees with the rows: {exc}"
            raise AssertionError(message) from exc
        rows = _ids(conn, "SELECT rid FROM memories")
        indexed = _ids(conn, "SELECT id FROM memories_fts_docsize")
        assert indexed == rows, (
            f"{db}: {len(rows - indexed)} rows missing from the full-text index, "
            f"{len(indexed - rows)} indexed rows that do not exist"
        )
        bad = conn.execute(
            "SELECT count(*) FROM memories WHERE length(embedding) != ?", (dims * 4,)
        ).fetchone()[0]
        assert bad == 0, f"{db}: {bad} rows without a {dims}-dimensional vector"
        if conn.execute("SELECT 1 FROM meta WHERE key = 'log_floor'").fetchone() is None:
            unlogged = rows - _ids(conn, "SELECT rid FROM index_log")
            assert not unlogged, f"{db}: {len(unlogged)} rows missing from index_log"
        ids = _ids(conn, "SELECT id FROM memories")
        added = _ids(conn, "SELECT memory_id FROM history WHERE event = 'ADD'")
        deleted = _ids(conn, "SELECT memory_id FROM history WHERE event = 'DELETE'")
        assert ids <= added, f"{db}: {len(ids - added)} memories without their ADD in history"
        orphans = added - deleted - ids
        assert not orphans, f"{db}: {len(orphans)} ADDs in history whose memory is missing"
        history = conn.execute("SELECT count(*) FROM history").fetchone()[0]
    return StoreFigures(len(rows), len(indexed), history)


def rows_by_user(db: Path) -> dict[str, set[str]]:
    with contextlib.closing(sqlite3.connect(db, timeout=60)) as conn:
        found: dict[str, set[str]] = defaultdict(set)
        for memory_id, user in conn.execute("SELECT id, user_id FROM memories"):
            found[user].add(memory_id)
    return dict(found)


def check_library_view(
    data_dir: Path, acks: Acks, rng: random.Random
) -> tuple[int, dict[str, str | None]]:
    """Assert what `Memory` reads of `data_dir` agrees with the acknowledged changes and with the
    rows. Returns the number of vectors its searches found (one per row, checked), and how each
    change in flight turned out (id -> its text, None if gone)."""
    rows = rows_by_user(data_dir / "engram.db")
    with Memory(memory_config(data_dir)) as memory:
        wrong, settled = [], {}
        for memory_id in acks.live.keys() | acks.deleted | acks.pending.keys():
            got = memory.get(memory_id)
            text = None if got is None else got["memory"]
            allowed: set[str | None] = (
                {None} if memory_id in acks.deleted else {acks.live[memory_id].memory}
            )
            if memory_id in acks.pending:
                change = acks.pending[memory_id]
                allowed.add(None if change is None else change.memory)
                settled[memory_id] = text
            if text not in allowed:
                wrong.append((memory_id, allowed, text))
        assert not wrong, (
            f"{len(wrong)} of {len(acks.live) + len(acks.deleted)} acknowledged memories are "
            f"lost, changed or back (id, allowed, found): {wrong[:3]}"
        )
        for user, ids in rows.items():
            found = memory.search("note", user_id=user, top_k=len(ids), recipe="vector")
            vectors = {r["id"] for r in found["results"]}
            assert vectors == ids, (
                f"user {user}: the vector index holds {len(vectors - ids)} ids that are not rows "
                f"and misses {len(ids - vectors)} rows"
            )
        certain = sorted(acks.live.keys() - acks.pending.keys())
        for memory_id in rng.sample(certain, min(SAMPLE, len(certain))):
            acked = acks.live[memory_id]
            found = memory.search(
                token_of(acked.memory), user_id=acked.user_id, top_k=3, recipe="keyword"
            )
            assert memory_id in [r["id"] for r in found["results"]], (
                f"the keyword search for {token_of(acked.memory)!r} misses {memory_id}"
            )
    return sum(len(ids) for ids in rows.values()), settled
