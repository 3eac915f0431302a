"""Conversation turns in the full-text index: a turn's entry carries the turns around it.

A turn is a verbatim message (a row with a `role`). Its `context` column holds the text of up to
`AROUND` turns before and after it in the same scope (by row order) that were said within the
hour; the FTS5 index weights it at `CONTEXT_WEIGHT` beside the turn's own text (see keyword.BM25).
"Yes, twice last year!" then matches a question about the trip it answers, and a question whose
words are spread over an exchange finds its turns (LoCoMo raw turns, all@10 0.713 -> 0.74).

Writes keep it exact inside their transaction: inserting, re-texting or deleting a turn
recomputes the context of the turns around it (`Touched`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

AROUND = 2  # turns on each side whose text a turn's entry carries
WITHIN_S = 3600  # ... when said within this many seconds of it
CONTEXT_WEIGHT = 0.2  # of the context column in BM25 (the turn's own text: 1.0)

Scope = tuple[str | None, str | None, str | None]
Turn = tuple[int, str, str, str | None]  # rid, text, created_at, context

_TURNS = "user_id IS ? AND agent_id IS ? AND run_id IS ? AND role IS NOT NULL"
_COLUMNS = "rid, memory, created_at, context"


def contexts(turns: Sequence[Turn]) -> dict[int, str | None]:
    """rid -> context of each of one scope's consecutive turns (oldest first)."""
    times = [datetime.fromisoformat(t[2]) for t in turns]
    out: dict[int, str | None] = {}
    for i, turn in enumerate(turns):
        near = [
            turns[j][1]
            for j in range(max(0, i - AROUND), min(len(turns), i + AROUND + 1))
            if j != i and abs((times[j] - times[i]).total_seconds()) <= WITHIN_S
        ]
        out[turn[0]] = "\n".join(near) or None
    return out


def refresh(c: sqlite3.Connection, scope: Scope, low: int, high: int) -> None:
    """Recompute the context of the scope's turns with rid in [low, high] and of the `AROUND`
    turns on each side of that range (rows whose context did not change are not written)."""
    before = c.execute(
        f"SELECT {_COLUMNS} FROM memories WHERE {_TURNS} AND rid < ? ORDER BY rid DESC LIMIT ?",
        (*scope, low, 2 * AROUND),
    ).fetchall()[::-1]
    middle = c.execute(
        f"SELECT {_COLUMNS} FROM memories WHERE {_TURNS} AND rid BETWEEN ? AND ? ORDER BY rid",
        (*scope, low, high),
    ).fetchall()
    after = c.execute(
        f"SELECT {_COLUMNS} FROM memories WHERE {_TURNS} AND rid > ? ORDER BY rid LIMIT ?",
        (*scope, high, 2 * AROUND),
    ).fetchall()
    fresh = contexts([*before, *middle, *after])
    changed = [
        (fresh[rid], rid)
        for rid, _, _, old in [*before[-AROUND:], *middle, *after[:AROUND]]
        if fresh[rid] != old
    ]
    c.executemany("UPDATE memories SET context = ? WHERE rid = ?", changed)


class Touched:
    """The turns a transaction inserted, re-texted or deleted, per scope, to refresh the
    contexts around them before it commits."""

    def __init__(self) -> None:
        self._ranges: dict[Scope, tuple[int, int]] = {}

    def note(self, c: sqlite3.Connection, memory_id: str) -> None:
        """Note a memory (before deleting it; after inserting it) if it is a turn."""
        row = c.execute(
            "SELECT rid, user_id, agent_id, run_id FROM memories WHERE id = ? AND role IS NOT NULL",
            (memory_id,),
        ).fetchone()
        if row is not None:
            self.add((row[1], row[2], row[3]), row[0])

    def add(self, scope: Scope, rid: int) -> None:
        low, high = self._ranges.get(scope, (rid, rid))
        self._ranges[scope] = (min(low, rid), max(high, rid))

    def refresh(self, c: sqlite3.Connection) -> None:
        for scope, (low, high) in self._ranges.items():
            refresh(c, scope, low, high)
        self._ranges.clear()


def backfill(c: sqlite3.Connection) -> None:
    """Compute every turn's context (schema migration 9), one scope at a time."""
    scopes = c.execute(
        "SELECT DISTINCT user_id, agent_id, run_id FROM memories WHERE role IS NOT NULL"
    ).fetchall()
    for scope in scopes:
        turns = c.execute(
            f"SELECT {_COLUMNS} FROM memories WHERE {_TURNS} ORDER BY rid", scope
        ).fetchall()
        fresh = contexts(turns)
        c.executemany(
            "UPDATE memories SET context = ? WHERE rid = ?",
            [(fresh[t[0]], t[0]) for t in turns if fresh[t[0]] is not None],
        )
