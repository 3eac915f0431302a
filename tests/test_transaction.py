"""The one transaction helper: commits, rolls back, and never masks the error that ended a
transaction with a failed rollback."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from engram.store.sqlite.transaction import atomic


def _conn(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("CREATE TABLE t (x INTEGER)")
    return conn


def _in_transaction(conn: sqlite3.Connection, body: Callable[[], None]) -> None:
    with atomic(conn):
        conn.execute("INSERT INTO t VALUES (2)")
        body()


def _fail(message: str, before: Callable[[], object] = lambda: None) -> Callable[[], None]:
    def body() -> None:
        before()
        raise RuntimeError(message)

    return body


def test_commits_and_rolls_back(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    _in_transaction(conn, lambda: None)
    with pytest.raises(RuntimeError, match="boom"):
        _in_transaction(conn, _fail("boom"))
    assert conn.execute("SELECT x FROM t").fetchall() == [(2,)]
    assert not conn.in_transaction


def test_the_original_error_survives_a_transaction_sqlite_already_ended(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    # SQLite ends the transaction itself on a full disk or an interrupt; then ROLLBACK would fail
    ended = _fail("the real error", lambda: conn.execute("ROLLBACK"))
    with pytest.raises(RuntimeError, match="the real error"):
        _in_transaction(conn, ended)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_failed_rollback_is_noted_on_the_original_error(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    with pytest.raises(RuntimeError) as caught:
        _in_transaction(conn, _fail("first", conn.close))  # the rollback that follows can't run
    assert str(caught.value) == "first"
    assert "rollback" in " ".join(getattr(caught.value, "__notes__", []))
