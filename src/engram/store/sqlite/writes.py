"""The SQL of every write, as functions on a connection inside the caller's transaction."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from engram.core.filters import Node
from engram.core.ids import new_id, text_hash
from engram.errors import ConflictError, ImmutableMemoryError, NotFoundError
from engram.store.base import (
    UNSET,
    Attached,
    Claim,
    Delete,
    Insert,
    MemoryRecord,
    SaveMessages,
    Update,
)
from engram.store.sqlite import graph, transfer
from engram.store.sqlite.compile import compile_where
from engram.store.sqlite.rows import COLUMNS, HISTORY_COLUMNS, SAME_SCOPE, blob, chunked, record

LOG_KEEP = 200_000  # index_log rows kept; a process further behind reloads its index


def insert(
    c: sqlite3.Connection, op: Insert, *, with_history: bool = True, cause: str | None = None
) -> MemoryRecord:
    r = op.record
    c.execute(
        f"INSERT INTO memories ({COLUMNS}, embedding) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            r.id, r.memory, r.hash, r.created_at, r.updated_at, r.user_id, r.agent_id,
            r.run_id, r.app_id, r.actor_id, r.role, json.dumps(r.metadata),
            json.dumps(r.categories), r.memory_type, int(r.immutable), r.expiration_date,
            r.feedback, blob(op.embedding),
        ),
    )  # fmt: skip
    if with_history:
        add_history(c, r.id, None, r.memory, "ADD", r.created_at, r.created_at, r.actor_id, r.role,
                    cause=cause)  # fmt: skip
    return r


def load(c: sqlite3.Connection, memory_id: str) -> MemoryRecord:
    row = c.execute(f"SELECT {COLUMNS} FROM memories WHERE id = ?", (memory_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"memory {memory_id} not found", details={"id": memory_id})
    return record(row)


def update(c: sqlite3.Connection, op: Update, cause: str | None = None) -> MemoryRecord:
    old = load(c, op.memory_id)
    if old.immutable and not op.allow_immutable:
        raise ImmutableMemoryError(
            f"memory {op.memory_id} is immutable", details={"id": op.memory_id}
        )
    new = MemoryRecord(**{name: getattr(old, name) for name in MemoryRecord.__slots__})
    new.updated_at = op.at
    sets = ["updated_at = ?"]
    params: list[Any] = [op.at]
    if op.memory is not UNSET:
        if op.embedding is None:
            raise ValueError("an Update of the text needs the new embedding")
        new.memory, new.hash = op.memory, text_hash(op.memory)
        sets += ["memory = ?", "hash = ?", "embedding = ?"]
        params += [new.memory, new.hash, blob(op.embedding)]
    for name in ("metadata", "categories", "expiration_date"):
        value = getattr(op, name)
        if value is not UNSET:
            setattr(new, name, value)
            sets.append(f"{name} = ?")
            params.append(json.dumps(value) if name != "expiration_date" else value)
    c.execute(f"UPDATE memories SET {', '.join(sets)} WHERE id = ?", (*params, op.memory_id))
    actor = op.actor_id if op.actor_id is not None else old.actor_id
    role = op.role if op.role is not None else old.role
    add_history(c, old.id, old.memory, new.memory, "UPDATE", old.created_at, op.at, actor, role,
                cause=cause)  # fmt: skip
    return new


def delete(c: sqlite3.Connection, op: Delete, cause: str | None = None) -> MemoryRecord:
    old = load(c, op.memory_id)
    c.execute("DELETE FROM memories WHERE id = ?", (op.memory_id,))
    if op.keep_graph:
        op.ended = graph.retire_memory(c, op.memory_id, op.at)
    else:
        graph.remove_for_memories(c, [op.memory_id], op.at)
    add_history(
        c, old.id, old.memory, None, "DELETE", old.created_at, op.at, old.actor_id, old.role,
        deleted=True, cause=cause,
    )  # fmt: skip
    return old


def add_history(
    c: sqlite3.Connection,
    memory_id: str,
    old: str | None,
    new: str | None,
    event: str,
    created_at: str,
    updated_at: str,
    actor_id: str | None,
    role: str | None,
    *,
    deleted: bool = False,
    cause: str | None = None,
) -> None:
    c.execute(
        f"INSERT INTO history ({HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id(), memory_id, old, new, event, created_at, updated_at, int(deleted),
            actor_id, role, cause,
        ),
    )  # fmt: skip


def same_text_stored(c: sqlite3.Connection, r: MemoryRecord) -> bool:
    """A memory of exactly this scope already has this text (by hash)."""
    found = c.execute(
        f"SELECT 1 FROM memories WHERE hash = ? AND {SAME_SCOPE} LIMIT 1",
        (r.hash, r.user_id, r.agent_id, r.run_id),
    ).fetchone()
    return found is not None


def save_messages(c: sqlite3.Connection, op: SaveMessages) -> None:
    scope = (op.scope.get("user_id"), op.scope.get("agent_id"), op.scope.get("run_id"))
    c.executemany(
        "INSERT INTO messages (user_id, agent_id, run_id, role, name, content, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*scope, role, name, content, op.at) for role, name, content in op.messages],
    )
    c.execute(
        f"DELETE FROM messages WHERE {SAME_SCOPE} AND id <= coalesce((SELECT id FROM messages"
        f" WHERE {SAME_SCOPE} ORDER BY id DESC LIMIT 1 OFFSET ?), -1)",
        (*scope, *scope, op.keep),
    )


def delete_matching(c: sqlite3.Connection, where: Node, at: str, cause: str | None = None) -> int:
    sql, params = compile_where(where)
    rows = c.execute(
        f"SELECT id, memory, created_at, actor_id, role FROM memories m WHERE {sql}", params
    ).fetchall()
    c.executemany("DELETE FROM memories WHERE id = ?", [(r[0],) for r in rows])
    graph.remove_for_memories(c, [r[0] for r in rows], at)
    c.executemany(
        f"INSERT INTO history ({HISTORY_COLUMNS}) "
        "VALUES (?, ?, ?, NULL, 'DELETE', ?, ?, 1, ?, ?, ?)",
        [(new_id(), r[0], r[1], r[2], at, r[3], r[4], cause) for r in rows],
    )
    return len(rows)


def restore(c: sqlite3.Connection, memories: list[Insert], attached: Attached) -> None:
    ids = [op.record.id for op in memories]
    present = [
        row[0]
        for chunk, marks in chunked(ids)
        for row in c.execute(f"SELECT id FROM memories WHERE id IN ({marks})", chunk)
    ]
    if present:
        raise ConflictError(
            f"{len(present)} of the {len(ids)} memories to import exist already in this store "
            f"(the first: {present[0]}); nothing was imported",
            details={"ids": present[:20]},
        )
    for op in memories:
        insert(c, op, with_history=False)
    transfer.write(c, attached)


def claim(
    c: sqlite3.Connection, op: Claim, operations: list[Any], written: list[MemoryRecord | None]
) -> None:
    """Record `op.key` with a summary of what the other operations wrote (see `Claim`)."""
    events = {Insert: "ADD", Update: "UPDATE", Delete: "DELETE"}
    result = [
        {"id": record.id, "memory": record.memory, "event": events[type(other)]}
        for other, record in zip(operations, written, strict=True)
        if record is not None and type(other) in events
    ]
    try:
        c.execute(
            "INSERT INTO claims (key, result, created_at) VALUES (?, ?, ?)",
            (op.key, json.dumps(result), op.at),
        )
    except sqlite3.IntegrityError:
        raise ConflictError(
            f"the change set {op.key!r} was applied already", details={"key": op.key}
        ) from None


def claimed(c: sqlite3.Connection, key: str) -> list[dict[str, Any]] | None:
    row = c.execute("SELECT result FROM claims WHERE key = ?", (key,)).fetchone()
    return None if row is None else list(json.loads(row[0]))


def reset(c: sqlite3.Connection) -> None:
    for table in ("memories", "history", "messages", "index_log", "feedback", "claims"):
        c.execute(f"DELETE FROM {table}")
    graph.reset(c)
    c.execute("UPDATE meta SET value = ? WHERE key = 'epoch'", (uuid.uuid4().hex,))


def prune_log(c: sqlite3.Connection) -> None:
    top = c.execute("SELECT max(seq) FROM index_log").fetchone()[0] or 0
    floor = top - LOG_KEEP
    if floor > 0:
        c.execute("DELETE FROM index_log WHERE seq <= ?", (floor,))
        c.execute(
            "INSERT INTO meta (key, value) VALUES ('log_floor', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(floor),),
        )


def set_feedback(
    c: sqlite3.Connection, memory_id: str, feedback: str | None, reason: str | None, value: float,
    at: str,
) -> None:  # fmt: skip
    load(c, memory_id)  # NotFoundError when missing
    c.execute("UPDATE memories SET feedback = ? WHERE id = ?", (value, memory_id))
    c.execute(
        "INSERT INTO feedback (memory_id, feedback, reason, value, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (memory_id, feedback, reason, value, at),
    )
