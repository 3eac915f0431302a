"""Columns, and conversions between SQLite rows and store records."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from engram.store.base import HistoryRecord, MemoryRecord, Vector

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
