"""Columns of the PostgreSQL tables, conversions to store records, and the scope condition."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from engram.store.base import HistoryRecord, MemoryRecord
from engram.store.postgres.compile import Params

COLUMNS = (
    "id, memory, hash, created_at, updated_at, user_id, agent_id, run_id, app_id, actor_id, role, "
    "metadata, categories, memory_type, immutable, expiration_date, feedback"
)
M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in COLUMNS.split(","))
HISTORY_COLUMNS = (
    "id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, "
    "role, cause"
)
ScopeKey = tuple[str | None, str | None, str | None]
_WORD = re.compile(r"\w+")


def record(row: Sequence[Any]) -> MemoryRecord:
    return MemoryRecord(
        id=row[0], memory=row[1], hash=row[2], created_at=row[3], updated_at=row[4],
        user_id=row[5], agent_id=row[6], run_id=row[7], app_id=row[8], actor_id=row[9],
        role=row[10], metadata=dict(row[11] or {}), categories=list(row[12] or []),
        memory_type=row[13], immutable=bool(row[14]), expiration_date=row[15],
        feedback=float(row[16]),
    )  # fmt: skip


def history(row: Sequence[Any]) -> HistoryRecord:
    return HistoryRecord(
        id=row[0], memory_id=row[1], old_memory=row[2], new_memory=row[3], event=row[4],
        created_at=row[5], updated_at=row[6], is_deleted=bool(row[7]), actor_id=row[8],
        role=row[9], cause=row[10],
    )  # fmt: skip


def same_scope(scope: ScopeKey, p: Params, alias: str = "") -> str:
    """The rows of exactly this (user, agent, run) scope (a None id: the row has none), in the
    form the scope indexes answer (a condition of a WHERE clause: null counts as false there)."""
    return " AND ".join(
        f"{alias}{name} IS NULL" if value is None else f"{alias}{name} = {p.bind(value, '::text')}"
        for name, value in zip(("user_id", "agent_id", "run_id"), scope, strict=True)
    )


def tokens(record: MemoryRecord) -> int:
    """The words a memory's full-text entry holds (text, speaker, date in words): its length for
    BM25."""
    return len(_WORD.findall(record.memory)) + len(_WORD.findall(record.actor_id or "")) + 3
