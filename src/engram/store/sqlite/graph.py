"""Graph memory and profile facts in SQL, inside the caller's transaction.

Entities are per scope, resolved by normalised name ("The Alps" = "alps"), acronym ("NYC" =
"New York City") or name-vector similarity. Relations carry the memory that states them and a
validity window: a relation is never deleted because something contradicts it; it gets
`invalid_at`. Single-valued relationships (`lives_in`, `works_at`, `favorite_*`, ...) end the
previous value when a new one arrives. Profile facts are the current single-valued relations
of the scope's own entity (its user or agent id), kept as key -> value with history.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from engram.core.entities import (
    NAME_SIMILARITY,
    functional,
    norm_name,
    norm_relationship,
    same_by_initials,
)
from engram.core.filters import Node
from engram.store.base import LinkGraph, Vector
from engram.store.sqlite.compile import compile_where
from engram.store.sqlite.rows import blob, chunked
from engram.types import Relation

ScopeKey = tuple[str | None, str | None, str | None]
SAME = "user_id IS ? AND agent_id IS ? AND run_id IS ?"


def resolve_entity(c: sqlite3.Connection, scope: ScopeKey, name: str, vector: Vector | None,
                   at: str) -> int:  # fmt: skip
    norm = norm_name(name)
    row = c.execute(f"SELECT id FROM entities WHERE {SAME} AND norm = ?", (*scope, norm)).fetchone()
    if row:
        return int(row[0])
    others = c.execute(f"SELECT id, norm, embedding FROM entities WHERE {SAME}", scope).fetchall()
    for entity_id, other, _ in others:
        if same_by_initials(norm, other):
            return int(entity_id)
    if vector is not None:
        query = np.asarray(vector, dtype=np.float32)
        for entity_id, _, stored in others:
            if stored and float(np.frombuffer(stored, dtype=np.float32) @ query) >= NAME_SIMILARITY:
                return int(entity_id)
    cursor = c.execute(
        "INSERT INTO entities (user_id, agent_id, run_id, name, norm, embedding, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*scope, name.strip(), norm, None if vector is None else blob(vector), at),
    )
    return int(cursor.lastrowid or 0)


def _name(c: sqlite3.Connection, entity_id: int) -> str:
    return str(c.execute("SELECT name FROM entities WHERE id = ?", (entity_id,)).fetchone()[0])


def link(
    c: sqlite3.Connection, op: LinkGraph, memory_id: str
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Apply one memory's graph changes; returns (added, ended) relations."""
    ended: list[dict[str, str]] = []
    stale_profile: dict[str, str] = {}
    if op.retire_previous:
        ended += end_relations(c, [memory_id], op.at)
        stale_profile = _profile_of(c, [memory_id])
    added: list[dict[str, str]] = []
    owner = norm_name(op.owner) if op.owner else None
    for triple in op.triples:
        relationship = norm_relationship(triple.relationship)
        if not relationship or not triple.source.strip() or not triple.target.strip():
            continue
        source = resolve_entity(c, op.scope, triple.source, triple.source_vector, op.at)
        target = resolve_entity(c, op.scope, triple.target, triple.target_vector, op.at)
        existing = c.execute(
            "SELECT 1 FROM relations WHERE source_id = ? AND relationship = ? AND target_id = ? "
            "AND invalid_at IS NULL",
            (source, relationship, target),
        ).fetchone()
        if existing:
            continue
        if functional(relationship):
            ended += _end_where(
                c, "r.source_id = ? AND r.relationship = ?", (source, relationship), op.at
            )
        c.execute(
            "INSERT INTO relations (user_id, agent_id, run_id, source_id, relationship, target_id, "
            "memory_id, valid_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*op.scope, source, relationship, target, memory_id, op.at, op.at),
        )
        source_name, target_name = _name(c, source), _name(c, target)
        added.append({"source": source_name, "relationship": relationship, "target": target_name})
        if functional(relationship) and owner is not None and norm_name(source_name) == owner:
            set_profile(c, op.scope, relationship, target_name, memory_id, op.at)
            stale_profile.pop(relationship, None)
    for key in stale_profile:
        remove_profile(c, op.scope, key, memory_id, op.at)
    return added, ended


def end_relations(c: sqlite3.Connection, memory_ids: list[str], at: str) -> list[dict[str, str]]:
    ended: list[dict[str, str]] = []
    for chunk, marks in chunked(memory_ids):
        ended += _end_where(c, f"r.memory_id IN ({marks})", tuple(chunk), at)
    return ended


def _end_where(
    c: sqlite3.Connection, condition: str, params: tuple[Any, ...], at: str
) -> list[dict[str, str]]:
    rows = c.execute(
        "SELECT r.id, s.name, r.relationship, t.name FROM relations r "
        "JOIN entities s ON s.id = r.source_id JOIN entities t ON t.id = r.target_id "
        f"WHERE r.invalid_at IS NULL AND {condition}",
        params,
    ).fetchall()
    c.executemany("UPDATE relations SET invalid_at = ? WHERE id = ?", [(at, r[0]) for r in rows])
    return [{"source": r[1], "relationship": r[2], "target": r[3]} for r in rows]


def retire_memory(c: sqlite3.Connection, memory_id: str, at: str) -> list[dict[str, str]]:
    """The pipeline deleted this memory: its relations end, its profile facts go (with history)."""
    ended = end_relations(c, [memory_id], at)
    for key in _profile_of(c, [memory_id]):
        for scope in c.execute(
            "SELECT user_id, agent_id, run_id FROM profile WHERE key = ? AND memory_id = ?",
            (key, memory_id),
        ).fetchall():
            remove_profile(c, scope, key, memory_id, at)
    return ended


def remove_for_memories(c: sqlite3.Connection, memory_ids: list[str], at: str) -> None:
    """An explicit delete: the relations and profile facts only these memories supported go."""
    for chunk, marks in chunked(memory_ids):
        c.execute(f"DELETE FROM relations WHERE memory_id IN ({marks})", chunk)
        for scope_and_key in c.execute(
            "SELECT user_id, agent_id, run_id, key, memory_id FROM profile "
            f"WHERE memory_id IN ({marks})",
            chunk,
        ).fetchall():
            remove_profile(c, scope_and_key[:3], scope_and_key[3], scope_and_key[4], at)
    c.execute(
        "DELETE FROM entities WHERE id NOT IN (SELECT source_id FROM relations) "
        "AND id NOT IN (SELECT target_id FROM relations)"
    )


def set_profile(
    c: sqlite3.Connection, scope: ScopeKey, key: str, value: str, memory_id: str, at: str
) -> None:
    old = c.execute(f"SELECT value FROM profile WHERE {SAME} AND key = ?", (*scope, key)).fetchone()
    if old and old[0] == value:
        c.execute(
            f"UPDATE profile SET memory_id = ? WHERE {SAME} AND key = ?", (memory_id, *scope, key)
        )
        return
    c.execute(f"DELETE FROM profile WHERE {SAME} AND key = ?", (*scope, key))
    c.execute(
        "INSERT INTO profile (user_id, agent_id, run_id, key, value, memory_id, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*scope, key, value, memory_id, at),
    )
    _profile_history(c, scope, key, old[0] if old else None, value, memory_id, at)


def remove_profile(
    c: sqlite3.Connection, scope: ScopeKey, key: str, memory_id: str, at: str
) -> None:
    old = c.execute(
        f"SELECT value FROM profile WHERE {SAME} AND key = ? AND memory_id = ?",
        (*scope, key, memory_id),
    ).fetchone()
    if old:
        c.execute(f"DELETE FROM profile WHERE {SAME} AND key = ?", (*scope, key))
        _profile_history(c, scope, key, old[0], None, memory_id, at)


def _profile_of(c: sqlite3.Connection, memory_ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk, marks in chunked(memory_ids):
        rows = c.execute(f"SELECT key, value FROM profile WHERE memory_id IN ({marks})", chunk)
        out.update((str(k), str(v)) for k, v in rows)
    return out


def _profile_history(
    c: sqlite3.Connection,
    scope: ScopeKey,
    key: str,
    old: str | None,
    new: str | None,
    memory_id: str,
    at: str,
) -> None:
    c.execute(
        "INSERT INTO profile_history (user_id, agent_id, run_id, key, old_value, new_value, "
        "memory_id, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*scope, key, old, new, memory_id, at),
    )


# -- reads --------------------------------------------------------------------------------------


def _scope_sql(
    scope: dict[str, str], table: str, where: Node | None = None
) -> tuple[str, list[Any]]:
    """The rows of `table` (entities or relations) in the scope; with no scope, those of the
    scopes that have a memory matching `where` (a filter with its ids inside OR / NOT)."""
    names = [n for n in ("user_id", "agent_id", "run_id") if n in scope]
    if names or where is None:
        sql = " AND ".join(f"{table}.{n} = ?" for n in names) or "1"
        return sql, [scope[n] for n in names]
    matching, params = compile_where(where)
    same = " AND ".join(f"m.{n} IS {table}.{n}" for n in ("user_id", "agent_id", "run_id"))
    return f"EXISTS (SELECT 1 FROM memories m WHERE {same} AND {matching})", params


def relations(
    c: sqlite3.Connection,
    scope: dict[str, str],
    *,
    include_ended: bool = False,
    where: Node | None = None,
) -> list[dict[str, Any]]:
    sql, params = _scope_sql(scope, "r", where)
    if not include_ended:
        sql += " AND r.invalid_at IS NULL"
    rows = c.execute(
        "SELECT s.name, r.relationship, t.name, r.valid_at, r.invalid_at, r.memory_id "
        "FROM relations r JOIN entities s ON s.id = r.source_id "
        f"JOIN entities t ON t.id = r.target_id WHERE {sql} ORDER BY r.id",
        params,
    ).fetchall()
    return [
        {"source": r[0], "relationship": r[1], "target": r[2], "valid_at": r[3], "invalid_at": r[4],
         "memory_id": r[5]}
        for r in rows
    ]  # fmt: skip


def neighbourhood(
    c: sqlite3.Connection, scope: dict[str, str], query: str, where: Node | None = None
) -> tuple[dict[str, float], list[Relation]]:
    """Memories linked to entities named in the query (1.0 direct, 0.5 one hop away), and the
    valid relations around those entities."""
    text = f" {norm_name(query)} "
    sql, params = _scope_sql(scope, "entities", where)
    named = [
        int(entity_id)
        for entity_id, norm in c.execute(f"SELECT id, norm FROM entities WHERE {sql}", params)
        if norm and f" {norm} " in text
    ]
    if not named:
        return {}, []
    scores: dict[str, float] = {}
    found: list[Relation] = []
    frontier, seen = set(named), set(named)
    for weight in (1.0, 0.5):
        if not frontier:
            break
        marks = ", ".join("?" for _ in frontier)
        rows = c.execute(
            "SELECT r.memory_id, r.source_id, r.target_id, s.name, r.relationship, t.name "
            "FROM relations r JOIN entities s ON s.id = r.source_id "
            "JOIN entities t ON t.id = r.target_id WHERE r.invalid_at IS NULL "
            f"AND (r.source_id IN ({marks}) OR r.target_id IN ({marks}))",
            [*frontier, *frontier],
        ).fetchall()
        following: set[int] = set()
        for memory_id, source, target, source_name, relationship, target_name in rows:
            if memory_id:
                scores[memory_id] = max(scores.get(memory_id, 0.0), weight)
            if weight == 1.0:
                found.append(
                    {
                        "source": source_name,
                        "relationship": relationship,
                        "destination": target_name,
                    }
                )
            following.update({source, target} - seen)
        seen |= following
        frontier = following
    return scores, found


def profile(c: sqlite3.Connection, scope: dict[str, str]) -> dict[str, dict[str, Any]]:
    sql, params = _scope_sql(scope, "profile")
    rows = c.execute(
        f"SELECT key, value, memory_id, updated_at FROM profile WHERE {sql} ORDER BY key", params
    )
    return {r[0]: {"value": r[1], "memory_id": r[2], "updated_at": r[3]} for r in rows}


def profile_changes(c: sqlite3.Connection, scope: dict[str, str]) -> list[dict[str, Any]]:
    sql, params = _scope_sql(scope, "profile_history")
    rows = c.execute(
        "SELECT key, old_value, new_value, memory_id, changed_at FROM profile_history "
        f"WHERE {sql} ORDER BY id",
        params,
    )
    return [
        {"key": r[0], "old_value": r[1], "new_value": r[2], "memory_id": r[3], "changed_at": r[4]}
        for r in rows
    ]


def reset(c: sqlite3.Connection) -> None:
    for table in ("relations", "entities", "profile", "profile_history"):
        c.execute(f"DELETE FROM {table}")
