"""The one place that writes `BEGIN ... COMMIT / ROLLBACK` for SQLite (the store, the server's
control database and its shared rate limiter all use it).

A failed statement can end SQLite's transaction by itself (a full disk, an interrupted or busy
statement), and then a `ROLLBACK` fails with "cannot rollback - no transaction is active". That
second error must never replace the first one: the rollback runs only while a transaction is
open, and if it fails too, it is noted on the original error, which is what propagates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def atomic(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
    """One transaction on `conn` (opened with `isolation_level=None`): committed when the block
    ends, rolled back when it raises. `immediate` takes the write lock at once (every write
    transaction); `immediate=False` is a read snapshot (several reads that must agree)."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as exc:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error as rollback_error:
            exc.add_note(f"the rollback that followed failed too: {rollback_error}")
        raise
