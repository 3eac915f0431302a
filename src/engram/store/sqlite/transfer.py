"""Reading and writing the rows attached to memories, for a lossless export and import."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from engram.core.entities import norm_name
from engram.errors import ConflictError, ValidationError
from engram.store.base import ATTACHED_FIELDS, Attached
from engram.store.sqlite import graph
from engram.store.sqlite.rows import HISTORY_COLUMNS, blob, chunked
from engram.store.sqlite.rows import history as history_row

# Per kind: its columns and tables, the column holding the memory id (rows are picked by it
# when exporting some memories; entities by the picked relations), the order of writing.
_READ = {
    "entity": ("e.user_id, e.agent_id, e.run_id, e.name, e.type, e.created_at", "entities e",
               None, "e.id"),
    "relation": (
        "r.user_id, r.agent_id, r.run_id, s.name, r.relationship, t.name, r.memory_id, "
        "r.valid_at, r.invalid_at, r.created_at",
        "relations r JOIN entities s ON s.id = r.source_id JOIN entities t ON t.id = r.target_id",
        "r.memory_id", "r.id",
    ),
    "profile": ("p.user_id, p.agent_id, p.run_id, p.key, p.value, p.memory_id, p.updated_at",
                "profile p", "p.memory_id", "p.rowid"),
    "profile_change": (
        "p.user_id, p.agent_id, p.run_id, p.key, p.old_value, p.new_value, p.memory_id, "
        "p.changed_at",
        "profile_history p", "p.memory_id", "p.id",
    ),
    "feedback": ("f.memory_id, f.feedback, f.reason, f.value, f.created_at", "feedback f",
                 "f.memory_id", "f.id"),
}  # fmt: skip
_OF_RELATIONS = (
    "e.id IN (SELECT source_id FROM relations WHERE memory_id IN ({marks}) "
    "UNION SELECT target_id FROM relations WHERE memory_id IN ({marks}))"
)


def read(c: sqlite3.Connection, memory_ids: Sequence[str] | None) -> Attached:
    out = Attached()
    if memory_ids is None:
        rows = c.execute(f"SELECT {HISTORY_COLUMNS} FROM history ORDER BY rowid").fetchall()
        out.history = [history_row(r) for r in rows]
        for kind, (columns, tables, _, order) in _READ.items():
            rows = c.execute(f"SELECT {columns} FROM {tables} ORDER BY {order}").fetchall()
            out.rows[kind] = _dicts(kind, rows)
        return out
    ids = list(memory_ids)
    for kind, (columns, tables, column, order) in _READ.items():
        found: dict[int, tuple[Any, ...]] = {}  # an entity may come up in several chunks
        for chunk, marks in chunked(ids):
            if column is None:
                where, params = _OF_RELATIONS.format(marks=marks), chunk + chunk
            else:
                where, params = f"{column} IN ({marks})", chunk
            for row in c.execute(f"SELECT {order}, {columns} FROM {tables} WHERE {where}", params):
                found[row[0]] = row[1:]
        out.rows[kind] = _dicts(kind, [found[key] for key in sorted(found)])
    history: list[tuple[Any, ...]] = []
    for chunk, marks in chunked(ids):
        history += c.execute(
            f"SELECT rowid, {HISTORY_COLUMNS} FROM history WHERE memory_id IN ({marks})", chunk
        ).fetchall()
    out.history = [history_row(r[1:]) for r in sorted(history, key=lambda r: r[0])]
    return out


def _dicts(kind: str, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    names = ATTACHED_FIELDS[kind]
    return [dict(zip(names, row, strict=True)) for row in rows]


def write(c: sqlite3.Connection, attached: Attached) -> None:
    """The attached rows after their memories (see `Store.restore`)."""
    c.executemany(
        f"INSERT INTO history ({HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (h.id, h.memory_id, h.old_memory, h.new_memory, h.event, h.created_at, h.updated_at,
             int(h.is_deleted), h.actor_id, h.role, h.cause)
            for h in attached.history
        ],
    )  # fmt: skip
    rows = attached.rows
    entities: dict[tuple[Any, ...], int] = {}
    for row, vector in zip(rows["entity"], attached.entity_vectors, strict=True):
        scope = _scope(row)
        norm = norm_name(row["name"])
        if _entity(c, entities, scope, norm) is None:
            cursor = c.execute(
                "INSERT INTO entities (user_id, agent_id, run_id, name, norm, type, embedding, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*scope, row["name"], norm, row["entity_type"], blob(vector), row["created_at"]),
            )
            entities[(*scope, norm)] = int(cursor.lastrowid or 0)
    for row in rows["relation"]:
        scope = _scope(row)
        ends = []
        for end in ("source", "target"):
            entity_id = _entity(c, entities, scope, norm_name(row[end]))
            if entity_id is None:
                raise ValidationError(
                    f"relation {row['source']!r} -{row['relationship']}-> {row['target']!r}: "
                    f"no entity {row[end]!r} in its scope (user_id={row['user_id']!r}, "
                    f"agent_id={row['agent_id']!r}, run_id={row['run_id']!r})"
                )
            ends.append(entity_id)
        c.execute(
            "INSERT INTO relations (user_id, agent_id, run_id, source_id, relationship, "
            "target_id, memory_id, valid_at, invalid_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*scope, ends[0], row["relationship"], ends[1], row["memory_id"], row["valid_at"],
             row["invalid_at"], row["created_at"]),
        )  # fmt: skip
    for row in rows["profile"]:
        scope = _scope(row)
        if c.execute(
            f"SELECT 1 FROM profile WHERE {graph.SAME} AND key = ?", (*scope, row["key"])
        ).fetchone():
            raise ConflictError(
                f"profile fact {row['key']!r} of user_id={row['user_id']!r}, "
                f"agent_id={row['agent_id']!r}, run_id={row['run_id']!r} exists already",
                details={"key": row["key"]},
            )
        c.execute(
            "INSERT INTO profile (user_id, agent_id, run_id, key, value, memory_id, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*scope, row["key"], row["value"], row["memory_id"], row["updated_at"]),
        )
    c.executemany(
        "INSERT INTO profile_history (user_id, agent_id, run_id, key, old_value, new_value, "
        "memory_id, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        _values(rows, "profile_change"),
    )
    c.executemany(
        "INSERT INTO feedback (memory_id, feedback, reason, value, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        _values(rows, "feedback"),
    )


def _values(rows: dict[str, list[dict[str, Any]]], kind: str) -> list[tuple[Any, ...]]:
    return [tuple(row[name] for name in ATTACHED_FIELDS[kind]) for row in rows[kind]]


def _scope(row: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    return row["user_id"], row["agent_id"], row["run_id"]


def _entity(
    c: sqlite3.Connection,
    known: dict[tuple[Any, ...], int],
    scope: tuple[str | None, str | None, str | None],
    norm: str,
) -> int | None:
    """The scope's entity of this normalised name: written by this restore, or stored before."""
    key = (*scope, norm)
    if key not in known:
        row = c.execute(
            f"SELECT id FROM entities WHERE {graph.SAME} AND norm = ?", (*scope, norm)
        ).fetchone()
        if row is None:
            return None
        known[key] = int(row[0])
    return known[key]
