"""Reading and writing the rows attached to memories on PostgreSQL, for a lossless export and
import (the same rows and rules as `store/sqlite/transfer.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncCursor

from engram.core.entities import norm_name
from engram.errors import ConflictError, StoreError, ValidationError
from engram.store.base import ATTACHED_FIELDS, Attached
from engram.store.postgres.rows import HISTORY_COLUMNS, ScopeKey
from engram.store.postgres.rows import history as history_row

Cursor = AsyncCursor[Any]

# Per kind: its columns and tables, the column holding the memory id (entities are picked by
# the relations of the picked memories), the order of writing.
_READ = {
    "entity": ("e.user_id, e.agent_id, e.run_id, e.name, e.type, e.created_at", "entities e",
               None, "e.id"),
    "relation": (
        "r.user_id, r.agent_id, r.run_id, s.name, r.relationship, t.name, r.memory_id, "
        "r.valid_at, r.invalid_at, r.created_at",
        "relations r JOIN entities s ON s.project = r.project AND s.id = r.source_id "
        "JOIN entities t ON t.project = r.project AND t.id = r.target_id",
        "r.memory_id", "r.id",
    ),
    "profile": ("p.user_id, p.agent_id, p.run_id, p.key, p.value, p.memory_id, p.updated_at",
                "profile p", "p.memory_id", "p.seq"),
    "profile_change": (
        "p.user_id, p.agent_id, p.run_id, p.key, p.old_value, p.new_value, p.memory_id, "
        "p.changed_at",
        "profile_history p", "p.memory_id", "p.id",
    ),
    "feedback": ("f.memory_id, f.feedback, f.reason, f.value, f.created_at", "feedback f",
                 "f.memory_id", "f.id"),
}  # fmt: skip
_OF_RELATIONS = (
    "e.id IN (SELECT source_id FROM relations WHERE project = %s AND memory_id = ANY(%s::text[]) "
    "UNION SELECT target_id FROM relations WHERE project = %s AND memory_id = ANY(%s::text[]))"
)


async def read(cur: Cursor, project: str, memory_ids: Sequence[str] | None) -> Attached:
    out = Attached()
    ids = None if memory_ids is None else list(memory_ids)
    for kind, (columns, tables, column, order) in _READ.items():
        alias = order.split(".")[0]
        where, params = f"{alias}.project = %s", list[Any]([project])
        if ids is not None:
            if column is None:
                where += f" AND {_OF_RELATIONS}"
                params += [project, ids, project, ids]
            else:
                where += f" AND {column} = ANY(%s::text[])"
                params.append(ids)
        await cur.execute(f"SELECT {columns} FROM {tables} WHERE {where} ORDER BY {order}", params)
        rows = await cur.fetchall()
        out.rows[kind] = [
            dict(zip(ATTACHED_FIELDS[kind], _plain(row), strict=True)) for row in rows
        ]
    where, params = "project = %s", list[Any]([project])
    if ids is not None:
        where += " AND memory_id = ANY(%s::text[])"
        params.append(ids)
    await cur.execute(f"SELECT {HISTORY_COLUMNS} FROM history WHERE {where} ORDER BY seq", params)
    out.history = [history_row(r) for r in await cur.fetchall()]
    return out


def _plain(row: Sequence[Any]) -> list[Any]:
    """Values as an export writes them (feedback values are floats, as SQLite returns them)."""
    return [float(v) if isinstance(v, float) else v for v in row]


async def write(cur: Cursor, project: str, attached: Attached) -> None:
    """The attached rows after their memories (see `Store.restore`)."""
    if attached.history:
        await cur.executemany(
            f"INSERT INTO history (project, {HISTORY_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (project, h.id, h.memory_id, h.old_memory, h.new_memory, h.event, h.created_at,
                 h.updated_at, h.is_deleted, h.actor_id, h.role, h.cause)
                for h in attached.history
            ],
        )  # fmt: skip
    rows = attached.rows
    known: dict[tuple[Any, ...], int] = {}
    for row, vector in zip(rows["entity"], attached.entity_vectors, strict=True):
        scope = _scope(row)
        norm = norm_name(row["name"])
        if await _entity(cur, project, known, scope, norm) is None:
            await cur.execute(
                "INSERT INTO entities (project, user_id, agent_id, run_id, name, norm, type, "
                "embedding, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (project, *scope, row["name"], norm, row["entity_type"], vector,
                 row["created_at"]),
            )  # fmt: skip
            created = await cur.fetchone()
            if created is None:
                raise StoreError("an entity insert returned no id")
            known[(*scope, norm)] = int(created[0])
    for row in rows["relation"]:
        await _relation(cur, project, known, row)
    for row in rows["profile"]:
        await _profile(cur, project, row)
    await _insert_all(cur, project, "profile_history", "profile_change", rows)
    await _insert_all(cur, project, "feedback", "feedback", rows)


async def _relation(
    cur: Cursor, project: str, known: dict[tuple[Any, ...], int], row: dict[str, Any]
) -> None:
    scope = _scope(row)
    ends = []
    for end in ("source", "target"):
        entity_id = await _entity(cur, project, known, scope, norm_name(row[end]))
        if entity_id is None:
            raise ValidationError(
                f"relation {row['source']!r} -{row['relationship']}-> {row['target']!r}: "
                f"no entity {row[end]!r} in its scope (user_id={row['user_id']!r}, "
                f"agent_id={row['agent_id']!r}, run_id={row['run_id']!r})"
            )
        ends.append(entity_id)
    await cur.execute(
        "INSERT INTO relations (project, user_id, agent_id, run_id, source_id, relationship, "
        "target_id, memory_id, valid_at, invalid_at, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (project, *scope, ends[0], row["relationship"], ends[1], row["memory_id"],
         row["valid_at"], row["invalid_at"], row["created_at"]),
    )  # fmt: skip


async def _profile(cur: Cursor, project: str, row: dict[str, Any]) -> None:
    scope = _scope(row)
    await cur.execute(
        "SELECT 1 FROM profile WHERE project = %s AND user_id IS NOT DISTINCT FROM %s "
        "AND agent_id IS NOT DISTINCT FROM %s AND run_id IS NOT DISTINCT FROM %s AND key = %s",
        (project, *scope, row["key"]),
    )
    if await cur.fetchone():
        raise ConflictError(
            f"profile fact {row['key']!r} of user_id={row['user_id']!r}, "
            f"agent_id={row['agent_id']!r}, run_id={row['run_id']!r} exists already",
            details={"key": row["key"]},
        )
    await cur.execute(
        "INSERT INTO profile (project, user_id, agent_id, run_id, key, value, memory_id, "
        "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (project, *scope, row["key"], row["value"], row["memory_id"], row["updated_at"]),
    )


_TABLE_COLUMNS = {
    "profile_change": "user_id, agent_id, run_id, key, old_value, new_value, memory_id, changed_at",
    "feedback": "memory_id, feedback, reason, value, created_at",
}


async def _insert_all(
    cur: Cursor, project: str, table: str, kind: str, rows: dict[str, list[dict[str, Any]]]
) -> None:
    if not rows[kind]:
        return
    names = ATTACHED_FIELDS[kind]
    marks = ", ".join("%s" for _ in range(len(names) + 1))
    await cur.executemany(
        f"INSERT INTO {table} (project, {_TABLE_COLUMNS[kind]}) VALUES ({marks})",
        [(project, *(row[name] for name in names)) for row in rows[kind]],
    )


def _scope(row: dict[str, Any]) -> ScopeKey:
    return row["user_id"], row["agent_id"], row["run_id"]


async def _entity(
    cur: Cursor, project: str, known: dict[tuple[Any, ...], int], scope: ScopeKey, norm: str
) -> int | None:
    """The scope's entity of this normalised name: written by this restore, or stored before."""
    key = (*scope, norm)
    if key not in known:
        await cur.execute(
            "SELECT id FROM entities WHERE project = %s AND user_id IS NOT DISTINCT FROM %s "
            "AND agent_id IS NOT DISTINCT FROM %s AND run_id IS NOT DISTINCT FROM %s "
            "AND norm = %s",
            (project, *scope, norm),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        known[key] = int(row[0])
    return known[key]
