"""A real PostgreSQL 15 server with pgvector, started by the tests on a private port and socket.

`scripts/install-postgres.sh` (run by `make test`) installs it on a clean machine. Where it is
missing, PostgreSQL tests skip with the reason printed, except in CI ($CI set), where they fail.
`initdb` refuses root, so as root the cluster is made and run as the `postgres` user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
VECTOR = Path("/usr/share/postgresql/15/extension/vector.control")


def unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 is not installed ({PG_BIN}): run `make postgres` as root"
    if not VECTOR.exists():
        return f"pgvector is not installed ({VECTOR}): run `make postgres` as root"
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError:
        return "the postgres extra is not installed: pip install '.[postgres]'"
    return None


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}")
    print(f"skipping PostgreSQL tests: {reason}", file=sys.stderr)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One PostgreSQL cluster in a directory of its own; `database()` makes a fresh database.
    With `primary`, a hot standby of that cluster (`pg_basebackup -R`: streaming replication)."""

    def __init__(
        self, base: Path, primary: Cluster | None = None, *, durable: bool = False
    ) -> None:
        self.base = base
        self.data, self.sockets = base / "data", base / "sockets"
        self.sockets.mkdir(parents=True, exist_ok=True)
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(base, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        self.port = _free_port()
        if primary is None:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E",
                      "UTF8", "--no-sync")  # fmt: skip
        else:
            self._run("pg_basebackup", "-D", str(self.data), "-h", "127.0.0.1", "-p",
                      str(primary.port), "-U", "postgres", "-R", "-X", "stream", "--no-sync")  # fmt: skip
        commits = "on" if durable else "off"  # on: WAL is sent to a standby at each commit
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} -c fsync=off "
            f"-c full_page_writes=off -c synchronous_commit={commits} -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(base / "server.log"), "-w",
                  "-o", options, "start")  # fmt: skip

    def _run(self, tool: str, *args: str) -> None:
        command = [str(PG_BIN / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def database(self) -> str:
        """A new, empty database with the vector extension; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
