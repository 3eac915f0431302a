"""Columns, and conversions between SQLite rows and store records (and search candidates)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import numpy as np

from engram.core.text import CONTENT_CHARS
from engram.store.base import Candidate, HistoryRecord, MemoryRecord, Vector, conversation_line

COLUMNS = (
    "id, memory, hash, created_at, updated_at, user_id, agent_id, run_id, app_id, actor_id, role, "
    "metadata, categories, memory_type, immutable, expiration_date, feedback"
)
HISTORY_COLUMNS = (
    "id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, "
    "role, cause"
)
INDEX_COLUMNS = "rid, user_id, agent_id, run_id, expiration_date, embedding"
SAME_SCOPE = "user_id IS ? AND agent_id IS ? AND run_id IS ?"
CHUNK = 500  # bound parameters per IN (...) list
T = TypeVar("T")


def chunked(items: Sequence[T]) -> Iterator[tuple[list[T], str]]:
    """Slices of at most CHUNK items, each with its `?, ?, ...` placeholders."""
    for start in range(0, len(items), CHUNK):
        chunk = list(items[start : start + CHUNK])
        yield chunk, ", ".join("?" for _ in chunk)


def icontains(haystack: Any, needle: Any) -> int:
    """SQL function `engram_icontains`: case-insensitive (Unicode case folding) substring."""
    if not isinstance(haystack, str) or not isinstance(needle, str):
        return 0
    return int(needle.casefold() in haystack.casefold())


def record(row: sqlite3.Row | tuple[Any, ...]) -> MemoryRecord:
    return MemoryRecord(
        id=row[0],
        memory=row[1],
        hash=row[2],
        created_at=row[3],
        updated_at=row[4],
        user_id=row[5],
        agent_id=row[6],
        run_id=row[7],
        app_id=row[8],
        actor_id=row[9],
        role=row[10],
        metadata=json.loads(row[11]),
        categories=json.loads(row[12]),
        memory_type=row[13],
        immutable=bool(row[14]),
        expiration_date=row[15],
        feedback=float(row[16]),
    )


def history(row: tuple[Any, ...]) -> HistoryRecord:
    return HistoryRecord(
        id=row[0],
        memory_id=row[1],
        old_memory=row[2],
        new_memory=row[3],
        event=row[4],
        created_at=row[5],
        updated_at=row[6],
        is_deleted=bool(row[7]),
        actor_id=row[8],
        role=row[9],
        cause=row[10],
    )


def blob(vector: Vector) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def candidates_of(
    conn: sqlite3.Connection, rids: list[int], cosine: dict[int, float], keyword: dict[int, float]
) -> list[Candidate]:
    """The candidates' rows with their scores and neighbours: the candidates that are the lines
    just before and after each one in the same conversation (adjacent rows of the same scope,
    both `conversation_line`s, at most an hour apart); only those lift a score. One primary-key
    read of the candidates' rows."""
    wanted = sorted(set(rids))
    by_rid: dict[int, tuple[Any, ...]] = {}
    for chunk, marks in chunked(wanted):
        for row in conn.execute(
            "SELECT rid, id, created_at, feedback, actor_id, user_id, agent_id, run_id, role, "
            f"substr(memory, 1, {CONTENT_CHARS}) FROM memories WHERE rid IN ({marks})",
            chunk,
        ):
            by_rid[row[0]] = row
    found: list[Candidate] = []
    when: dict[int, datetime] = {}  # parsed once per row

    def at(rid: int) -> datetime:
        if rid not in when:
            when[rid] = datetime.fromisoformat(by_rid[rid][2])
        return when[rid]

    for rid in rids:
        row = by_rid.get(rid)
        if row is None:  # deleted meanwhile
            continue
        adjacent = ()
        if conversation_line(
            row[8], row[4]
        ):  # a line of a conversation: its neighbours are the next ones
            adjacent = tuple(
                by_rid[other][1]
                for other in (rid - 1, rid + 1)
                if other in by_rid
                and conversation_line(by_rid[other][8], by_rid[other][4])
                and by_rid[other][5:8] == row[5:8]
                and abs((at(other) - at(rid)).total_seconds()) <= 3600
            )
        scores = cosine.get(rid, 0.0), keyword.get(rid, 0.0)
        found.append(Candidate(row[1], row[2], float(row[3]), *scores, row[4], adjacent, row[9]))
    return found
