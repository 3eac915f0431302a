"""Moving stores between SQLite and PostgreSQL (`engram migrate`), through the JSON Lines transfer
(`engram.transfer`): every memory with its history, graph, profile facts and feedback; the
destination computes the vectors with the same embedder, which the source's record must match.

- A store (a SQLite file, or a data directory's `engram.db`) moves to a project of a PostgreSQL
  database, and a project of a PostgreSQL database to a SQLite store.
- A server's data directory (it has `server.db`) moves whole: its organizations, projects,
  members, API keys, webhooks and their deliveries, profiles and jobs, and every project's store,
  each to the project of the same id; the server's keys keep working against the database.

A move writes into an empty destination and either completes or leaves nothing behind: what it
wrote is removed when any part fails. The source is only read; stop a server before moving its
data directory (a running one is detected and refused).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engram.config import DEFAULT_DB_NAME, MemoryConfig
from engram.errors import ConflictError, StoreError, ValidationError
from engram.memory import AsyncMemory
from engram.store.base import Store
from engram.store.sqlite.store import SQLiteStore
from engram.transfer import export_lines, import_lines

CONTROL_DB = "server.db"
# The control tables in the order their references need (a project's org first, ...).
CONTROL_TABLES = ("orgs", "projects", "members", "org_members", "api_keys", "jobs", "webhooks",
                  "deliveries", "profile_settings", "profiles", "server_meta")  # fmt: skip
_IDENTITIES = ("webhooks", "deliveries")  # ids the database hands out next: after the moved ones


async def copy_store(source: Store, destination: Store, config: MemoryConfig) -> dict[str, int]:
    """Every row of `source` into the empty `destination` (one transaction); the counts."""
    async with AsyncMemory(config, store=source) as reading:
        lines = [line async for line in export_lines(reading, None)]
    async with AsyncMemory(config, store=destination) as writing:
        return await import_lines(writing, lines)


def sqlite_store_path(path: Path) -> Path:
    """The store file of `path`: the file itself, or a data directory's `engram.db`."""
    return path / DEFAULT_DB_NAME if path.is_dir() or not path.suffix else path


async def to_postgres(source: Path, url: str, config: MemoryConfig, project: str) -> dict[str, Any]:
    """Move a SQLite store, or a server's whole data directory, into the database at `url`."""
    from engram.store.postgres.database import Database

    if source.is_dir() and (source / CONTROL_DB).exists():
        return await _server_to_postgres(source, url, config)
    path = sqlite_store_path(source)
    if not path.is_file():
        raise ValidationError(f"no Engram store at {source} (looked for {path})")
    database = Database(url, max_size=2)
    try:
        counts = await _into_projects(database, config, [(project, path)])
    finally:
        await database.close()
    return {"moved": {project: counts[project]}, "to": _safe(url)}


async def from_postgres(
    url: str, project: str, destination: Path, config: MemoryConfig
) -> dict[str, Any]:
    """Copy one project of the database at `url` into a new SQLite store at `destination`."""
    from engram.store.postgres.database import Database
    from engram.store.postgres.store import PostgresStore

    path = sqlite_store_path(destination)
    if path.exists():
        raise ConflictError(f"{path} exists already: move into a new store")
    database = Database(url, max_size=2)
    try:
        await database.open()
        if not await _project_exists(database, project):
            raise ValidationError(f"the database has no project {project!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            counts = await copy_store(PostgresStore(database, project=project), SQLiteStore(path),
                                      config)  # fmt: skip
        except BaseException:
            for leftover in (path, *(Path(f"{path}{s}") for s in ("-wal", "-shm", "-vectors"))):
                leftover.unlink(missing_ok=True)
            raise
    finally:
        await database.close()
    return {"moved": {project: counts}, "to": str(path)}


async def _server_to_postgres(data_dir: Path, url: str, config: MemoryConfig) -> dict[str, Any]:
    from engram.server import control
    from engram.server.jobs import QueueLock
    from engram.server.projects import store_dir
    from engram.store.postgres.database import Database

    lock = QueueLock(data_dir / "queue.lock")
    if not lock.try_take():
        raise ConflictError(f"a server is running on {data_dir}: stop it before moving its data")
    try:
        conn = control.connect(data_dir / CONTROL_DB)
        try:
            tables = {t: control.rows(conn, f"SELECT * FROM {t}") for t in CONTROL_TABLES}
            default = control.default_store(conn)
        finally:
            conn.close()
        stores = []
        for project in tables["projects"]:
            path = store_dir(data_dir, project["id"], default) / DEFAULT_DB_NAME
            if path.is_file():
                stores.append((str(project["id"]), path))
        database = Database(url, max_size=2)
        try:
            await database.open()
            await _copy_control(url, tables)
            try:
                counts = await _into_projects(database, config, stores)
            except BaseException:
                await _clear_control(url)
                raise
        finally:
            await database.close()
    finally:
        lock.release()
    summary = {t: len(rows) for t, rows in tables.items()}
    return {"moved": counts, "server": summary, "to": _safe(url)}


async def _into_projects(
    database: Any, config: MemoryConfig, stores: Sequence[tuple[str, Path]]
) -> dict[str, dict[str, int]]:
    """Each (project, SQLite file) into its project of `database`, all or none."""
    from engram.store.postgres.store import PostgresStore

    await database.open()
    for project, _ in stores:
        if await _project_exists(database, project):
            raise ConflictError(f"the database has a project {project!r} already: not moved")
    counts: dict[str, dict[str, int]] = {}
    try:
        for project, path in stores:
            destination = PostgresStore(database, project=project)
            counts[project] = await copy_store(SQLiteStore(path), destination, config)
    except BaseException:
        for project, _ in stores:
            await PostgresStore(database, project=project).drop()
        raise
    return counts


async def _project_exists(database: Any, project: str) -> bool:
    async with database.writing(project) as conn:
        found = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM stores WHERE project = %s) OR "
            "EXISTS (SELECT 1 FROM memories WHERE project = %s)",
            (project, project),
        )
        row = await found.fetchone()
    return bool(row and row[0])


async def _copy_control(url: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """The control tables' rows into the database's (which must have no server yet)."""
    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(url)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    async with conn, conn.transaction():
        found = await (await conn.execute("SELECT count(*) FROM orgs")).fetchone()
        if found and found[0]:
            raise ConflictError("the database has a server's projects already: not moved")
        for table in CONTROL_TABLES:
            for original in tables[table]:
                row = dict(original)
                if table == "jobs" and row["status"] == "RUNNING":  # the server was stopped
                    row["status"] = "PENDING"
                names = ", ".join(row)
                marks = ", ".join(["%s"] * len(row))
                await conn.execute(
                    f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values())
                )
        for table in _IDENTITIES:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
            )


async def _clear_control(url: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        for table in reversed(CONTROL_TABLES):
            await conn.execute(f"DELETE FROM {table}")


def _safe(url: str) -> str:
    """A database URL without its password, for output."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{tail}"
