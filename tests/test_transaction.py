"""The one transaction helper: commits, rolls back, and never masks the error that ended a
transaction with a failed rollback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engram.store.sqlite.transaction import atomic


def _conn(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("CREATE TABLE t (x INTEGER)")
    return conn


def test_commits_and_rolls_back(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    with atomic(conn):
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ValueError, match="boom"), atomic(conn):
        conn.execute("INSERT INTO t VALUES (2)")
        raise ValueError("boom")
    assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert not conn.in_transaction


def test_the_original_error_survives_a_transaction_sqlite_already_ended(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    with pytest.raises(RuntimeError, match="the real error"), atomic(conn):
        conn.execute("INSERT INTO t VALUES (3)")
        conn.execute("ROLLBACK")  # as SQLite does itself on a full disk or an interrupt
        raise RuntimeError("the real error")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_failed_rollback_is_noted_on_the_original_error(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    with pytest.raises(RuntimeError) as caught, atomic(conn):
        conn.execute("INSERT INTO t VALUES (4)")
        conn.close()  # the rollback that follows cannot run
        raise RuntimeError("first")
    assert str(caught.value) == "first"
    assert "rollback" in " ".join(getattr(caught.value, "__notes__", []))
