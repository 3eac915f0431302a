"""The writes of a change set, each in the caller's transaction on one project: new memories
(a run of them as one INSERT per table), the duplicate check, updates and deletes with their
history rows, the conversation's recent messages, and idempotency claims."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncCursor
from psycopg.types.json import Jsonb

from engram.core.ids import new_id, text_hash
from engram.errors import ConflictError, ImmutableMemoryError, NotFoundError
from engram.store.base import (
    UNSET,
    Claim,
    Delete,
    Insert,
    MemoryRecord,
    Operation,
    SaveMessages,
    Update,
)
from engram.store.postgres import graph
from engram.store.postgres.compile import Params
from engram.store.postgres.rows import COLUMNS, HISTORY_COLUMNS, record, same_scope, tokens

Cursor = AsyncCursor[Any]
# Rows of one INSERT statement (20 parameters each; a statement takes at most 65,535).
INSERT_ROWS = 1000


async def insert(
    cur: Cursor, project: str, ops: Sequence[Insert], *, with_history: bool = True,
    cause: str | None = None,
) -> list[MemoryRecord]:  # fmt: skip
    """New memories and (unless restored with theirs) their ADD history rows: one statement
    per table for up to INSERT_ROWS of them (the full-text statistics' trigger then runs once,
    not once a row)."""
    for offset in range(0, len(ops), INSERT_ROWS):
        chunk = ops[offset : offset + INSERT_ROWS]
        memories: list[Any] = []
        history: list[Any] = []
        for op in chunk:
            r = op.record
            memories += (
                project, r.id, r.memory, r.hash, r.created_at, r.updated_at, r.user_id,
                r.agent_id, r.run_id, r.app_id, r.actor_id, r.role, Jsonb(r.metadata),
                Jsonb(r.categories), r.memory_type, r.immutable, r.expiration_date,
                r.feedback, op.embedding, tokens(r),
            )  # fmt: skip
            history += (
                project, new_id(), r.id, None, r.memory, "ADD", r.created_at,
                r.created_at, False, r.actor_id, r.role, cause,
            )  # fmt: skip
        await cur.execute(
            f"INSERT INTO memories (project, {COLUMNS}, embedding, tokens) VALUES "
            + ", ".join(["(" + ", ".join(["%s"] * 20) + ")"] * len(chunk)),
            memories,
        )
        if with_history:
            await cur.execute(
                f"INSERT INTO history (project, {HISTORY_COLUMNS}) VALUES "
                + ", ".join(["(" + ", ".join(["%s"] * 12) + ")"] * len(chunk)),
                history,
            )
    return [op.record for op in ops]


async def duplicate(cur: Cursor, project: str, op: Insert) -> bool:
    """Stored already in its scope: the same text, or a vector at least `dedupe` similar.
    The scope's adds wait for each other here (an advisory lock until commit)."""
    if op.dedupe is None:
        return False
    r = op.record
    scope = (r.user_id, r.agent_id, r.run_id)
    await cur.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (json.dumps([project, *scope]),),
    )
    p = Params([project])
    same = same_scope(scope, p)
    await cur.execute(
        f"SELECT 1 FROM memories WHERE project = %s AND {same} AND hash = {p.bind(r.hash)} LIMIT 1",
        p,
    )
    if await cur.fetchone():
        return True
    p = Params()
    distance = f"(embedding <=> {p.bind(op.embedding, '::vector')})"
    await cur.execute(
        f"SELECT 1 - {distance} FROM memories WHERE project = {p.bind(project)} AND "
        f"{same_scope(scope, p)} ORDER BY embedding <=> "
        f"{p.bind(op.embedding, '::vector')} LIMIT 1",
        p,
    )
    best = await cur.fetchone()
    return best is not None and float(best[0]) >= op.dedupe


async def load(cur: Cursor, project: str, memory_id: str) -> MemoryRecord:
    await cur.execute(
        f"SELECT {COLUMNS} FROM memories WHERE project = %s AND id = %s FOR UPDATE",
        (project, memory_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"memory {memory_id} not found", details={"id": memory_id})
    return record(row)


async def update(cur: Cursor, project: str, op: Update, cause: str | None = None) -> MemoryRecord:
    old = await load(cur, project, op.memory_id)
    if old.immutable and not op.allow_immutable:
        raise ImmutableMemoryError(
            f"memory {op.memory_id} is immutable", details={"id": op.memory_id}
        )
    new = MemoryRecord(**{name: getattr(old, name) for name in MemoryRecord.__slots__})
    new.updated_at = op.at
    sets, params = ["updated_at = %s"], list[Any]([op.at])
    if op.memory is not UNSET:
        if op.embedding is None:
            raise ValueError("an Update of the text needs the new embedding")
        new.memory, new.hash = op.memory, text_hash(op.memory)
        sets += ["memory = %s", "hash = %s", "embedding = %s", "tokens = %s"]
        params += [new.memory, new.hash, op.embedding, tokens(new)]
    for name in ("metadata", "categories", "expiration_date"):
        value = getattr(op, name)
        if value is not UNSET:
            setattr(new, name, value)
            sets.append(f"{name} = %s")
            params.append(value if name == "expiration_date" else Jsonb(value))
    await cur.execute(
        f"UPDATE memories SET {', '.join(sets)} WHERE project = %s AND id = %s",
        (*params, project, op.memory_id),
    )
    actor = op.actor_id if op.actor_id is not None else old.actor_id
    role = op.role if op.role is not None else old.role
    await record_history(
        cur, project, old.id, old.memory, new.memory, "UPDATE", old.created_at, op.at, actor, role,
        cause=cause,
    )  # fmt: skip
    return new


async def delete(cur: Cursor, project: str, op: Delete, cause: str | None = None) -> MemoryRecord:
    old = await load(cur, project, op.memory_id)
    await cur.execute(
        "DELETE FROM memories WHERE project = %s AND id = %s", (project, op.memory_id)
    )
    if op.keep_graph:
        op.ended = await graph.retire_memory(cur, project, op.memory_id, op.at)
    else:
        await graph.remove_for_memories(cur, project, [op.memory_id], op.at)
    await record_history(
        cur, project, old.id, old.memory, None, "DELETE", old.created_at, op.at, old.actor_id,
        old.role, deleted=True, cause=cause,
    )  # fmt: skip
    return old


async def record_history(
    cur: Cursor, project: str, memory_id: str, old: str | None, new: str | None, event: str,
    created_at: str, updated_at: str, actor_id: str | None, role: str | None, *,
    deleted: bool = False, cause: str | None = None,
) -> None:  # fmt: skip
    await cur.execute(
        f"INSERT INTO history (project, {HISTORY_COLUMNS}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (project, new_id(), memory_id, old, new, event, created_at, updated_at,
         deleted, actor_id, role, cause),
    )  # fmt: skip


async def save_messages(cur: Cursor, project: str, op: SaveMessages) -> None:
    scope = (op.scope.get("user_id"), op.scope.get("agent_id"), op.scope.get("run_id"))
    await cur.executemany(
        "INSERT INTO messages (project, user_id, agent_id, run_id, role, name, content, "
        "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [(project, *scope, role, name, content, op.at) for role, name, content in
         op.messages],
    )  # fmt: skip
    await cur.execute(
        "DELETE FROM messages WHERE project = %s AND scope_key = engram_scope_key(%s, %s, %s) "
        "AND id <= coalesce((SELECT id FROM messages WHERE project = %s AND scope_key = "
        "engram_scope_key(%s, %s, %s) ORDER BY id DESC LIMIT 1 OFFSET %s), -1)",
        (project, *scope, project, *scope, op.keep),
    )


async def claim(
    cur: Cursor, project: str, op: Claim, operations: Sequence[Operation],
    written: list[MemoryRecord | None],
) -> None:  # fmt: skip
    events = {Insert: "ADD", Update: "UPDATE", Delete: "DELETE"}
    result = [
        {"id": rec.id, "memory": rec.memory, "event": events[type(other)]}
        for other, rec in zip(operations, written, strict=True)
        if rec is not None and type(other) in events
    ]
    await cur.execute(
        "INSERT INTO claims (project, key, result, created_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (project, key) DO NOTHING",
        (project, op.key, Jsonb(result), op.at),
    )
    if cur.rowcount == 0:
        raise ConflictError(
            f"the change set {op.key!r} was applied already", details={"key": op.key}
        )


def is_plain_insert(op: Operation) -> bool:
    """An insert that checks for no duplicate: a run of them is written together."""
    return isinstance(op, Insert) and op.dedupe is None
