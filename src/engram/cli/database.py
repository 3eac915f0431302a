"""Database commands: `db status` / `db upgrade` (a PostgreSQL database's schema, or the data
directory's SQLite stores) and `migrate` (moving stores between SQLite and PostgreSQL)."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from engram.cli.admin import database_url
from engram.cli.memories import Command, provider_config
from engram.config import DEFAULT_DB_NAME, default_data_dir
from engram.errors import ValidationError

COMMANDS = frozenset({"db", "migrate"})


def add_commands(sub: Any, command: Command) -> None:
    db = command(sub, "db", "the database's schema: its version, and upgrading it")
    actions = db.add_subparsers(dest="action", required=True)
    command(actions, "status", "the schema version, migrations still to apply, the projects")
    command(actions, "upgrade", "apply the migrations this Engram has and the database lacks")
    move = command(sub, "migrate", "move stores: SQLite -> PostgreSQL, or a project back")
    move.add_argument("--from", dest="source", required=True,
                      help="a SQLite store (a data directory, or an .db file; a server's data "
                           "directory moves whole), or postgresql://...")  # fmt: skip
    move.add_argument(
        "--to",
        dest="destination",
        required=True,
        help="postgresql://..., or a new SQLite store (a directory or .db file)",
    )
    move.add_argument("--collection", default=None,
                      help="the PostgreSQL project (mem0's collection_name) a single store "
                           "becomes, or is read from (default mem0)")  # fmt: skip


def run(args: argparse.Namespace) -> Any:
    if args.command == "migrate":
        return _migrate(args)
    url = database_url(args)
    if url is not None:
        from engram.store.postgres import schema

        if args.action == "upgrade":
            asyncio.run(schema.migrate_url(url))
        return asyncio.run(schema.status(url))
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    return _sqlite(data_dir, upgrade=args.action == "upgrade")


def _migrate(args: argparse.Namespace) -> Any:
    from engram import moving

    source, destination = str(args.source), str(args.destination)
    project = args.collection or "mem0"
    config = provider_config(args)
    if _is_url(destination) and not _is_url(source):
        return asyncio.run(moving.to_postgres(Path(source).expanduser(), destination, config,
                                              project))  # fmt: skip
    if _is_url(source) and not _is_url(destination):
        return asyncio.run(moving.from_postgres(source, project, Path(destination).expanduser(),
                                                config))  # fmt: skip
    raise ValidationError("migrate moves between SQLite and PostgreSQL: one of --from and --to "
                          "must be a postgresql:// URL, the other a path")  # fmt: skip


def _is_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


def _sqlite(data_dir: Path, *, upgrade: bool) -> dict[str, Any]:
    """The schema version of each SQLite store of a data directory (its own, and its server
    projects'), brought up to date with `upgrade`."""
    from engram.store.sqlite.schema import SCHEMA_VERSION, migrate

    stores = []
    for path in [
        data_dir / DEFAULT_DB_NAME,
        *sorted(data_dir.glob(f"projects/*/{DEFAULT_DB_NAME}")),
    ]:
        if not path.is_file():
            continue
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            if upgrade:
                migrate(conn)
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
        stores.append({"store": str(path), "schema_version": version,
                       "pending": max(0, SCHEMA_VERSION - version)})  # fmt: skip
    return {"engram_schema_version": SCHEMA_VERSION, "stores": stores}
