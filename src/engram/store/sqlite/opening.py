"""Opening a SQLite store: WAL, migrations, and the embedder the store's vectors come from.

A store records the embedder (dimensions and model id) that made its vectors. Opening it with
another one is an error while it holds vectors; an empty store takes the embedder that opens it
(a first `engram list` must not tie a fresh data directory to the CLI's default model). Since
another process may so re-tie an empty store that this one has open, every write of vectors
checks the record first (`check_embedder`), so vector spaces never mix.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

from engram.errors import DimensionMismatchError, StoreError
from engram.store.sqlite.schema import migrate
from engram.store.sqlite.transaction import atomic


def open_database(
    conn: sqlite3.Connection, path: Path, dims: int, model_id: str, busy_timeout: float
) -> None:
    """Switch to WAL, migrate, record the embedder. Retried on lock errors: switching a new file
    to WAL needs an exclusive lock, and SQLite answers BUSY at once, without waiting, where
    waiting could deadlock (two connections opening the same new file together)."""
    deadline = time.monotonic() + busy_timeout
    delay = 0.01
    while True:
        try:
            _open_once(conn, path, dims, model_id)
            return
        except sqlite3.OperationalError as exc:
            locked = "locked" in str(exc) or "busy" in str(exc)
            if not locked or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _open_once(conn: sqlite3.Connection, path: Path, dims: int, model_id: str) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"{path}: could not switch to WAL mode (got {mode!r})")
    migrate(conn)
    with atomic(conn):
        _record_embedder(conn, path, dims, model_id)


def _record_embedder(c: sqlite3.Connection, path: Path, dims: int, model_id: str) -> None:
    meta = dict(c.execute("SELECT key, value FROM meta").fetchall())
    if "dims" not in meta:
        c.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("dims", str(dims)), ("model_id", model_id), ("epoch", uuid.uuid4().hex)],
        )
        return
    if int(meta["dims"]) == dims and meta["model_id"] == model_id:
        return
    holds_vectors = c.execute(
        "SELECT EXISTS (SELECT 1 FROM memories) "
        "OR EXISTS (SELECT 1 FROM entities WHERE embedding IS NOT NULL)"
    ).fetchone()[0]
    if holds_vectors:
        raise DimensionMismatchError(
            f"{path} holds {meta['dims']}-dimensional vectors from {meta['model_id']!r}, but "
            f"the configured embedder is {model_id!r} with {dims} dimensions; use the original "
            "embedder or another data directory",
            details={"stored_model_id": meta["model_id"], "stored_dims": int(meta["dims"])},
        )
    c.executemany(  # nothing to mix with: the store takes this embedder
        "UPDATE meta SET value = ? WHERE key = ?",
        [(str(dims), "dims"), (model_id, "model_id"), (uuid.uuid4().hex, "epoch")],
    )


def check_embedder(c: sqlite3.Connection, path: Path, embedder: tuple[str, str]) -> None:
    """Before vectors are written: the store still records this embedder (dims, model id)."""
    meta = dict(c.execute("SELECT key, value FROM meta WHERE key IN ('dims', 'model_id')"))
    if (meta.get("dims"), meta.get("model_id")) != embedder:
        raise DimensionMismatchError(
            f"{path} now records {meta.get('model_id')!r} ({meta.get('dims')} dimensions), "
            f"not the {embedder[1]!r} it was opened with: reopen it"
        )
