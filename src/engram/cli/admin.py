"""The server's commands: `serve`, and `keys` / `projects`, which manage the server's control
database (`<data_dir>/server.db`, or the tables of its PostgreSQL database with `--database-url`)
from the machine itself, whether or not a server runs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engram.cli.memories import Command, usable_data_dir
from engram.config import default_data_dir
from engram.errors import MissingDependencyError, ValidationError
from engram.server import control
from engram.server.projects import ProjectMemories, store_dir

COMMANDS = frozenset({"serve", "keys", "projects"})
CONTROL_DB = "server.db"


def add_commands(sub: Any, command: Command) -> None:
    serve = command(sub, "serve", "run the REST server (Mem0 Platform API)")
    serve.add_argument("--host", help="interface (default $ENGRAM_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default $ENGRAM_PORT or 8000)")
    serve.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                       help="mem0-style JSON config (default $ENGRAM_CONFIG)")  # fmt: skip
    serve.add_argument("--cors-origins", help="comma-separated origins allowed by CORS")
    serve.add_argument("--rate-limit", type=int, help="requests per minute per API key")
    serve.add_argument("--workers", type=int,
                       help="server processes (default $ENGRAM_WORKERS or 1; one per core "
                            "serves the most searches)")  # fmt: skip
    serve.add_argument("--database-read-url", action="append", default=[],
                       help="a read replica of --database-url (repeatable; default "
                            "$ENGRAM_DATABASE_READ_URL)")  # fmt: skip
    keys = command(sub, "keys", "manage the server's API keys from this machine")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = command(keys_sub, "create", "make a key (shown once)")
    create.add_argument("--admin", action="store_true",
                        help="an OWNER key of the default project (admin@localhost)")  # fmt: skip
    create.add_argument("--email", help="a member of the project (its role is the key's)")
    create.add_argument("--name", help="a label for the key")
    for name, text in (("list", "list a project's keys"), ("revoke", "revoke a key")):
        action = command(keys_sub, name, text)
        if name == "revoke":
            action.add_argument("key_id")
    command(sub, "projects", "list the server's projects and where their memories are")


# The global flags each server command reads; the others would be silently ignored: refused.
_READS = {"serve": {"config", "database_url"}, "keys": {"project", "database_url"},
          "projects": {"database_url"}}  # fmt: skip


def run(args: argparse.Namespace) -> Any:
    given = {name for name in ("config", "embedder", "project", "database_url")
             if getattr(args, name, None)}  # fmt: skip
    ignored = given - _READS[args.command]
    if ignored:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in sorted(ignored))
        hint = " (the server takes its embedder from --config)" if args.command == "serve" else ""
        raise ValidationError(f"engram {args.command} does not take {flags}{hint}")
    if args.command == "serve":
        return _serve(args)
    url = database_url(args)
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    if url is None:
        usable_data_dir(data_dir)
    with _control(data_dir, url) as c:
        if args.command == "projects":
            return _projects(c, data_dir)
        return _keys(c, args)


def database_url(args: argparse.Namespace) -> str | None:
    """`--database-url`, else $ENGRAM_DATABASE_URL: a server's PostgreSQL database, or None."""
    url = getattr(args, "database_url", None) or os.environ.get("ENGRAM_DATABASE_URL") or None
    if url is not None and not url.startswith(("postgresql://", "postgres://")):
        raise ValidationError(f"the database URL must be postgresql://..., got {url[:20]!r}")
    return url


@contextmanager
def _control(data_dir: Path, url: str | None) -> Iterator[control.Conn]:
    if url is not None:
        from engram.server.control_pg import connect

        with connect(url) as pg:
            yield pg
        return
    conn = control.connect(data_dir / CONTROL_DB)
    try:
        yield conn
    finally:
        conn.close()


def project_store(data_dir: Path, wanted: str) -> Path:
    """The data directory of the store of the server project `wanted` (an id or a name)."""
    if not (data_dir / CONTROL_DB).exists():
        raise ValidationError(
            f"--project: no server has used the data directory {data_dir} (no {CONTROL_DB})"
        )
    with _control(data_dir, None) as c:
        project = control.find_project(c, wanted)
        return store_dir(data_dir, project["id"], control.default_store(c))


def project_in_database(url: str, wanted: str | None) -> str:
    """The id of the server project `wanted` (an id or a name; None: the default project) in a
    server's PostgreSQL database."""
    with _control(Path(), url) as c:
        if wanted is None:
            default = control.default_project(c)
            if default is None:
                raise ValidationError("no server has used this database yet (no projects)")
            return default
        return str(control.find_project(c, wanted)["id"])


def _projects(c: control.Conn, data_dir: Path) -> dict[str, Any]:
    default = control.default_store(c)
    found = control.rows(c, "SELECT id, org_id, name, created_at FROM projects ORDER BY created_at")
    for project in found:
        project["default"] = default is not None and project["id"] == default[0]
        project["store"] = (
            f"PostgreSQL, project {project['id']}" if c.postgres
            else str(store_dir(data_dir, project["id"], default) / "engram.db")
        )  # fmt: skip
    return {"results": found}


def _keys(c: control.Conn, args: argparse.Namespace) -> Any:
    project = control.find_project(c, args.project) if args.project else None
    if args.action == "create" and args.admin:
        if project is not None or args.email:
            raise ValidationError(
                "--admin makes a key of the default project: no --project/--email"
            )
        return control.mint_admin_key(c)
    if project is None and args.action == "create":  # a server may not have run here yet
        project = control.find_project(c, control.set_up(c))
    elif project is None:
        default = control.default_project(c)
        if default is None:
            raise ValidationError(f"no server has used this data directory yet ({CONTROL_DB})")
        project = control.find_project(c, default)
    if args.action == "create":
        email = args.email or "admin@localhost"
        return control.transaction(
            c, lambda: control.create_key(c, project["org_id"], project["id"], email, args.name)
        )
    if args.action == "list":
        return {"results": control.list_keys(c, project["id"])}
    control.transaction(c, lambda: control.revoke_key(c, project["id"], args.key_id))
    return {"message": f"API key {args.key_id} revoked."}


def _serve(args: argparse.Namespace) -> int | None:
    """Start the server; settings from ENGRAM_* variables, then the flags. The configuration is
    checked first (its providers built, as the server will), so that a bad one stops here with
    one line and writes nothing."""
    try:
        import uvicorn

        from engram.server import workers
        from engram.server.app import create_app
        from engram.server.settings import Settings
    except ImportError as exc:
        raise MissingDependencyError(
            f"the server needs its extra: pip install 'engram-llm[server]' ({exc})"
        ) from None
    origins = None if args.cors_origins is None else tuple(args.cors_origins.split(","))
    settings = Settings.from_env(
        host=args.host, port=args.port, data_dir=args.data_dir, config=args.config,
        cors_origins=origins, rate_limit=args.rate_limit, workers=args.workers,
        database_url=args.database_url, database_read_urls=tuple(args.database_read_url) or None,
    )  # fmt: skip
    usable_data_dir(settings.data_dir)
    asyncio.run(ProjectMemories(settings.data_dir, settings.memory_config()).close())
    if settings.database_url:  # reachable, and its schema up to date, before the server starts
        from engram.store.postgres.schema import migrate_url

        asyncio.run(migrate_url(settings.database_url))
    port_lock = workers.claim(settings.host, settings.port) if settings.workers > 1 else None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"Engram server on http://{settings.host}:{settings.port} "
          f"(API docs: http://{settings.host}:{settings.port}/docs), data in {settings.data_dir}",
          flush=True)  # fmt: skip
    if settings.workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                    log_level="warning")  # fmt: skip
        return None
    # Worker processes start fresh and build the app from the environment.
    shutil.rmtree(settings.data_dir / "metrics", ignore_errors=True)  # this run's counters only
    os.environ.update(settings.to_env())
    try:
        workers.serve(settings.host, settings.port, settings.workers)
    finally:
        if port_lock is not None:
            port_lock.close()
    return None
