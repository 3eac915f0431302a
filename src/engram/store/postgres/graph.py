"""Graph memory and profile facts in PostgreSQL, inside the caller's transaction (the rules are
those of `store/sqlite/graph.py` and `core/entities.py`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from psycopg import AsyncCursor

from engram.core.entities import (
    NAME_SIMILARITY,
    functional,
    norm_name,
    norm_relationship,
    same_by_initials,
)
from engram.core.filters import Node
from engram.store.base import LinkGraph, Vector
from engram.store.postgres.compile import Params, compile_where
from engram.store.postgres.rows import ScopeKey, same_scope
from engram.types import Relation

Cursor = AsyncCursor[Any]


async def _one(cur: Cursor, sql: str, params: Any = ()) -> Any:
    await cur.execute(sql, params)
    return await cur.fetchone()


async def _all(cur: Cursor, sql: str, params: Any = ()) -> list[Any]:
    await cur.execute(sql, params)
    return await cur.fetchall()


async def resolve_entity(
    cur: Cursor, project: str, scope: ScopeKey, name: str, vector: Vector | None, at: str
) -> int:
    norm = norm_name(name)
    p = Params([project])
    row = await _one(
        cur, f"SELECT id FROM entities WHERE project = %s AND {same_scope(scope, p)} "
        f"AND norm = {p.bind(norm)}", p,
    )  # fmt: skip
    if row:
        return int(row[0])
    p = Params([project])
    others = await _all(
        cur, f"SELECT id, norm, embedding FROM entities WHERE project = %s AND "
        f"{same_scope(scope, p)} ORDER BY id", p,
    )  # fmt: skip
    for entity_id, other, _ in others:
        if same_by_initials(norm, other):
            return int(entity_id)
    if vector is not None:
        query = np.asarray(vector, dtype=np.float32)
        for entity_id, _, stored in others:
            if stored is not None and float(stored.to_numpy() @ query) >= NAME_SIMILARITY:
                return int(entity_id)
    row = await _one(
        cur,
        "INSERT INTO entities (project, user_id, agent_id, run_id, name, norm, embedding, "
        "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (project, *scope, name.strip(), norm, vector, at),
    )
    return int(row[0])


async def _name(cur: Cursor, project: str, entity_id: int) -> str:
    row = await _one(
        cur, "SELECT name FROM entities WHERE project = %s AND id = %s", (project, entity_id)
    )
    return str(row[0])


# Relations with their entities' names (entities joined within the relation's project).
_NAMED = ("FROM relations r JOIN entities s ON s.project = r.project AND s.id = r.source_id "
          "JOIN entities t ON t.project = r.project AND t.id = r.target_id")  # fmt: skip


async def link(
    cur: Cursor, project: str, op: LinkGraph, memory_id: str
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Apply one memory's graph changes; returns (added, ended) relations."""
    ended: list[dict[str, str]] = []
    stale_profile: dict[str, str] = {}
    if op.retire_previous:
        ended += await end_relations(cur, project, [memory_id], op.at)
        stale_profile = await _profile_of(cur, project, [memory_id])
    added: list[dict[str, str]] = []
    owner = norm_name(op.owner) if op.owner else None
    for triple in op.triples:
        relationship = norm_relationship(triple.relationship)
        if not relationship or not triple.source.strip() or not triple.target.strip():
            continue
        source = await resolve_entity(
            cur, project, op.scope, triple.source, triple.source_vector, op.at
        )
        target = await resolve_entity(
            cur, project, op.scope, triple.target, triple.target_vector, op.at
        )
        existing = await _one(
            cur, "SELECT 1 FROM relations WHERE project = %s AND source_id = %s AND "
            "relationship = %s AND target_id = %s AND invalid_at IS NULL",
            (project, source, relationship, target),
        )  # fmt: skip
        if existing:
            continue
        if functional(relationship):
            ended += await _end_where(
                cur, project, "r.source_id = %s AND r.relationship = %s", (source, relationship),
                op.at,
            )  # fmt: skip
        await cur.execute(
            "INSERT INTO relations (project, user_id, agent_id, run_id, source_id, relationship, "
            "target_id, memory_id, valid_at, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (project, *op.scope, source, relationship, target, memory_id, op.at, op.at),
        )
        source_name = await _name(cur, project, source)
        target_name = await _name(cur, project, target)
        added.append({"source": source_name, "relationship": relationship, "target": target_name})
        if functional(relationship) and owner is not None and norm_name(source_name) == owner:
            await set_profile(cur, project, op.scope, relationship, target_name, memory_id, op.at)
            stale_profile.pop(relationship, None)
    for key in stale_profile:
        await remove_profile(cur, project, op.scope, key, memory_id, op.at)
    return added, ended


async def end_relations(
    cur: Cursor, project: str, memory_ids: list[str], at: str
) -> list[dict[str, str]]:
    return await _end_where(cur, project, "r.memory_id = ANY(%s::text[])", (memory_ids,), at)


async def _end_where(
    cur: Cursor, project: str, condition: str, params: tuple[Any, ...], at: str
) -> list[dict[str, str]]:
    rows = await _all(
        cur,
        f"SELECT r.id, s.name, r.relationship, t.name {_NAMED} "
        f"WHERE r.project = %s AND r.invalid_at IS NULL AND {condition} ORDER BY r.id",
        (project, *params),
    )
    if rows:
        await cur.execute(
            "UPDATE relations SET invalid_at = %s WHERE project = %s AND id = ANY(%s::bigint[])",
            (at, project, [r[0] for r in rows]),
        )
    return [{"source": r[1], "relationship": r[2], "target": r[3]} for r in rows]


async def retire_memory(cur: Cursor, project: str, memory_id: str, at: str) -> list[dict[str, str]]:
    """The pipeline deleted this memory: its relations end, its profile facts go (with history)."""
    ended = await end_relations(cur, project, [memory_id], at)
    for key in await _profile_of(cur, project, [memory_id]):
        rows = await _all(
            cur, "SELECT user_id, agent_id, run_id FROM profile WHERE project = %s AND key = %s "
            "AND memory_id = %s", (project, key, memory_id),
        )  # fmt: skip
        for scope in rows:
            await remove_profile(cur, project, tuple(scope), key, memory_id, at)
    return ended


async def remove_for_memories(cur: Cursor, project: str, memory_ids: list[str], at: str) -> None:
    """An explicit delete: the relations and profile facts only these memories supported go."""
    if not memory_ids:
        return
    await cur.execute(
        "DELETE FROM relations WHERE project = %s AND memory_id = ANY(%s::text[])",
        (project, memory_ids),
    )
    rows = await _all(
        cur, "SELECT user_id, agent_id, run_id, key, memory_id FROM profile "
        "WHERE project = %s AND memory_id = ANY(%s::text[])", (project, memory_ids),
    )  # fmt: skip
    for row in rows:
        await remove_profile(cur, project, tuple(row[:3]), row[3], row[4], at)
    await cur.execute(
        "DELETE FROM entities e WHERE e.project = %s AND NOT EXISTS (SELECT 1 FROM relations r "
        "WHERE r.project = e.project AND (r.source_id = e.id OR r.target_id = e.id))",
        (project,),
    )


async def set_profile(
    cur: Cursor, project: str, scope: ScopeKey, key: str, value: str, memory_id: str, at: str
) -> None:
    p = Params([project])
    where = f"project = %s AND {same_scope(scope, p)} AND key = {p.bind(key)}"
    old = await _one(cur, f"SELECT value FROM profile WHERE {where}", p)
    if old and old[0] == value:
        await cur.execute(f"UPDATE profile SET memory_id = %s WHERE {where}", [memory_id, *p])
        return
    await cur.execute(f"DELETE FROM profile WHERE {where}", p)
    await cur.execute(
        "INSERT INTO profile (project, user_id, agent_id, run_id, key, value, memory_id, "
        "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (project, *scope, key, value, memory_id, at),
    )
    await _profile_history(cur, project, scope, key, old[0] if old else None, value, memory_id, at)


async def remove_profile(
    cur: Cursor, project: str, scope: ScopeKey, key: str, memory_id: str, at: str
) -> None:
    p = Params([project])
    where = f"project = %s AND {same_scope(scope, p)} AND key = {p.bind(key)}"
    old = await _one(
        cur, f"SELECT value FROM profile WHERE {where} AND memory_id = %s", [*p, memory_id]
    )
    if old:
        await cur.execute(f"DELETE FROM profile WHERE {where}", p)
        await _profile_history(cur, project, scope, key, old[0], None, memory_id, at)


async def _profile_of(cur: Cursor, project: str, memory_ids: list[str]) -> dict[str, str]:
    rows = await _all(
        cur, "SELECT key, value FROM profile WHERE project = %s AND memory_id = ANY(%s::text[]) "
        "ORDER BY seq", (project, memory_ids),
    )  # fmt: skip
    return {str(k): str(v) for k, v in rows}


async def _profile_history(
    cur: Cursor, project: str, scope: ScopeKey, key: str, old: str | None, new: str | None,
    memory_id: str, at: str,
) -> None:  # fmt: skip
    await cur.execute(
        "INSERT INTO profile_history (project, user_id, agent_id, run_id, key, old_value, "
        "new_value, memory_id, changed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (project, *scope, key, old, new, memory_id, at),
    )


def _scope_sql(
    project: str, scope: dict[str, str], table: str, where: Node | None = None
) -> tuple[str, Params]:
    """The rows of `table` in the scope; with no scope, those of the scopes that have a memory
    matching `where` (as `store/sqlite/graph._scope_sql`)."""
    p = Params([project])
    names = [n for n in ("user_id", "agent_id", "run_id") if n in scope]
    sql = f"{table}.project = %s"
    if names or where is None:
        for n in names:
            sql += f" AND {table}.{n} = {p.bind(scope[n], '::text')}"
        return sql, p
    same = " AND ".join(f"m.{n} IS NOT DISTINCT FROM {table}.{n}" for n in ("user_id", "agent_id",
                                                                           "run_id"))  # fmt: skip
    inner = f"m.project = {p.bind(project)}"
    matching, _ = compile_where(where, p)
    return f"{sql} AND EXISTS (SELECT 1 FROM memories m WHERE {inner} AND {same} AND {matching})", p


async def relations(
    cur: Cursor, project: str, scope: dict[str, str], *, include_ended: bool = False,
    where: Node | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    sql, params = _scope_sql(project, scope, "r", where)
    if not include_ended:
        sql += " AND r.invalid_at IS NULL"
    rows = await _all(
        cur,
        "SELECT s.name, r.relationship, t.name, r.valid_at, r.invalid_at, r.memory_id "
        f"{_NAMED} WHERE {sql} ORDER BY r.id",
        params,
    )
    return [
        {"source": r[0], "relationship": r[1], "target": r[2], "valid_at": r[3], "invalid_at": r[4],
         "memory_id": r[5]}
        for r in rows
    ]  # fmt: skip


async def neighbourhood(
    cur: Cursor, project: str, scope: dict[str, str], query: str, where: Node | None = None
) -> tuple[dict[str, float], list[Relation]]:
    """Memories linked to entities named in the query (1.0 direct, 0.5 one hop away), and the
    valid relations around those entities."""
    text = f" {norm_name(query)} "
    sql, params = _scope_sql(project, scope, "entities", where)
    named = [
        int(entity_id)
        for entity_id, norm in await _all(cur, f"SELECT id, norm FROM entities WHERE {sql}", params)
        if norm and f" {norm} " in text
    ]
    scores: dict[str, float] = {}
    found: list[Relation] = []
    frontier, seen = set(named), set(named)
    for weight in (1.0, 0.5):
        if not frontier:
            break
        ids = sorted(frontier)
        rows = await _all(
            cur,
            "SELECT r.memory_id, r.source_id, r.target_id, s.name, r.relationship, t.name "
            f"{_NAMED} WHERE r.project = %s AND r.invalid_at IS NULL "
            "AND (r.source_id = ANY(%s::bigint[]) OR r.target_id = ANY(%s::bigint[])) "
            "ORDER BY r.id",
            (project, ids, ids),
        )
        following: set[int] = set()
        for memory_id, source, target, source_name, relationship, target_name in rows:
            if memory_id:
                scores[memory_id] = max(scores.get(memory_id, 0.0), weight)
            if weight == 1.0:
                found.append(
                    {"source": source_name, "relationship": relationship,
                     "destination": target_name}
                )  # fmt: skip
            following.update({source, target} - seen)
        seen |= following
        frontier = following
    return scores, found


async def profile(cur: Cursor, project: str, scope: dict[str, str]) -> dict[str, dict[str, Any]]:
    sql, params = _scope_sql(project, scope, "profile")
    rows = await _all(
        cur, f"SELECT key, value, memory_id, updated_at FROM profile WHERE {sql} ORDER BY key",
        params,
    )  # fmt: skip
    return {r[0]: {"value": r[1], "memory_id": r[2], "updated_at": r[3]} for r in rows}


async def profile_changes(cur: Cursor, project: str, scope: dict[str, str]) -> list[dict[str, Any]]:
    sql, params = _scope_sql(project, scope, "profile_history")
    rows = await _all(
        cur, "SELECT key, old_value, new_value, memory_id, changed_at FROM profile_history "
        f"WHERE {sql} ORDER BY id", params,
    )  # fmt: skip
    return [
        {"key": r[0], "old_value": r[1], "new_value": r[2], "memory_id": r[3], "changed_at": r[4]}
        for r in rows
    ]


async def reset(cur: Cursor, project: str) -> None:
    for table in ("relations", "entities", "profile", "profile_history"):
        await cur.execute(f"DELETE FROM {table} WHERE project = %s", (project,))
