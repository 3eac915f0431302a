"""The server's own database: organizations, projects, members, API keys, jobs, webhooks and
their deliveries. On SQLite it is `server.db` in the data directory (memories are not there: each
project has its own store); on PostgreSQL these are tables of the one database that also holds
every project's memories (`control_pg.py`).

The functions here take a `Conn`, which both databases provide: SQL with `?` and `:name`
parameters, `transaction()`, and `postgres` for the few statements the two dialects spell
differently. On SQLite, one connection is used by one thread at a time (`ControlDB.run`); every
write is one transaction. API keys are stored as SHA-256 digests (keys are 256 random bits, so a
slow hash adds nothing) and shown once, when created.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from engram.config import DEFAULT_DB_NAME
from engram.core.timeutil import utc_now_iso
from engram.errors import ConflictError, NotFoundError, ValidationError
from engram.store.sqlite.transaction import atomic

T = TypeVar("T")
ROLES = ("OWNER", "READER")  # of a project's members, and of an organization's
ADMIN_EMAIL = "admin@localhost"  # the user of the keys made on the machine (`engram keys`)
KEY_PREFIX = "eg-"

SCHEMA = """
CREATE TABLE IF NOT EXISTS orgs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs (id), name TEXT NOT NULL,
    description TEXT, custom_instructions TEXT, custom_categories TEXT,
    agent_custom_instructions TEXT, allow_private_urls INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    project_id TEXT NOT NULL REFERENCES projects (id), email TEXT NOT NULL,
    role TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (project_id, email)
);
CREATE TABLE IF NOT EXISTS org_members (
    org_id TEXT NOT NULL REFERENCES orgs (id), email TEXT NOT NULL,
    role TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (org_id, email)
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, hint TEXT NOT NULL,
    org_id TEXT NOT NULL, project_id TEXT NOT NULL REFERENCES projects (id),
    role TEXT NOT NULL, user_email TEXT NOT NULL, name TEXT,
    created_at TEXT NOT NULL, revoked_at TEXT, org_wide INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
    status TEXT NOT NULL, results TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_project ON jobs (project_id, created_at);
CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, url TEXT NOT NULL,
    event_types TEXT NOT NULL, secret TEXT NOT NULL, is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY, webhook_id INTEGER NOT NULL, event_type TEXT NOT NULL,
    body TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL, last_status INTEGER, last_error TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_at);
CREATE TABLE IF NOT EXISTS profile_settings (
    project_id TEXT PRIMARY KEY, enabled INTEGER NOT NULL, schema TEXT,
    custom_instructions TEXT, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS server_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    project_id TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL,
    profile TEXT, status TEXT NOT NULL, error TEXT, generation_count INTEGER NOT NULL DEFAULT 0,
    source_updated_at TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (project_id, entity_type, entity_id)
);
"""

_ADDED_COLUMNS = {  # added to existing databases
    "projects": ("agent_custom_instructions TEXT", "allow_private_urls INTEGER NOT NULL DEFAULT 0"),
    "api_keys": ("org_wide INTEGER NOT NULL DEFAULT 0",),
}  # added to existing databases


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from: an API key's project and role."""

    key_id: str
    org_id: str
    project_id: str
    role: str
    user_email: str
    # The organization role this key carries: its user's (OWNER or READER) when the key was made
    # organization-wide (`engram keys create --admin`, or by an organization OWNER), else none.
    org_role: str | None = None
    lsn: str | None = None  # PostgreSQL: the primary's WAL position when the key was checked

    @property
    def can_write(self) -> bool:
        return self.role == "OWNER"

    @property
    def org_owner(self) -> bool:
        """May create projects, manage any project of the organization and its members."""
        return self.org_role == "OWNER"


class Cursor(Protocol):
    """What a statement gives back, on either database."""

    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    """A connection to the control database (SQLite's `SQLiteConn`, PostgreSQL's `PgConn`)."""

    @property
    def postgres(self) -> bool: ...  # for the few statements the dialects spell differently
    @property
    def integrity_error(self) -> type[Exception]: ...  # a broken unique or foreign key

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ..., /) -> Any: ...
    def transaction(self, serial: bool = True) -> AbstractContextManager[Any]:
        """One transaction. `serial` ones run one at a time, as SQLite runs every write
        transaction: PostgreSQL's wait for each other on a lock (the others rely on row locks)."""
        ...


class SQLiteConn(sqlite3.Connection):
    """sqlite3's connection, with `Conn`'s few additions (statements run unchanged)."""

    postgres = False
    integrity_error = sqlite3.IntegrityError

    def transaction(self, serial: bool = True) -> AbstractContextManager[Any]:
        return atomic(self)


def connect(path: Path) -> SQLiteConn:
    """A connection to the control database, its schema brought up to date (the server's, or
    the CLI's for `engram keys` / `engram projects`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=SQLiteConn)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.executescript(SCHEMA)
    for table, columns in _ADDED_COLUMNS.items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    return conn


class ControlDB:
    """The control database of a server process: `run(fn, *args)` calls `fn(conn, *args)` on a
    thread of its own. This is SQLite's, one connection and one thread; PostgreSQL's is
    `control_pg.PgControlDB`."""

    postgres = False

    def __init__(self, path: Path) -> None:
        self._conn = connect(path)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="engram-control")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` on the control thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, self._conn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._conn.close()


def transaction(c: Conn, body: Callable[[], T], serial: bool = True) -> T:
    """`body()` in one write transaction (see `Conn.transaction`)."""
    with c.transaction(serial):
        return body()


def rows(c: Conn, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = c.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# -- bootstrap --------------------------------------------------------------------------------


def bootstrap(c: Conn, admin_key: str | None) -> str | None:
    """At every start: the default organization and project (made the first time), and an admin
    key when the server has no usable OWNER key at all (the given one, or a new one that is
    returned so it can be shown once). `admin_key` given later is added if it is not known yet."""

    def body() -> str | None:
        _ensure_default(c)
        if admin_key is not None:
            if find_key(c, digest(admin_key)) is None:
                _admin_key(c, admin_key)
            return None
        owners = c.execute(
            "SELECT 1 FROM api_keys WHERE role = 'OWNER' AND revoked_at IS NULL LIMIT 1"
        ).fetchone()
        if owners is not None:
            return None
        key = new_key()
        _admin_key(c, key)
        return key

    return transaction(c, body)


def _ensure_default(c: Conn) -> bool:
    """The default organization and project (made on first start; True then). The default
    project's memories are the data directory's own store, which the library and the CLI use."""
    first = c.execute("SELECT id FROM orgs LIMIT 1").fetchone() is None
    if first:
        org = create_org(c, "default")
        project = create_project(c, org["id"], "default", "created on first start")
        add_member(c, project["id"], ADMIN_EMAIL, "OWNER")
    if _meta(c, "default_project") is None:
        oldest = c.execute("SELECT id FROM projects ORDER BY created_at LIMIT 1").fetchone()
        if oldest is not None:  # servers from before this record: their first project
            _set_meta(c, "default_project", oldest[0])
    default = _meta(c, "default_project")
    if default is not None and _meta(c, "default_owner") is None:
        # Decided once: the machine's admin owns the default organization (servers from before
        # organization roles get it at their first start with them).
        org = c.execute("SELECT org_id FROM projects WHERE id = ?", (default,)).fetchone()
        if org is not None:
            set_org_member(c, str(org[0]), ADMIN_EMAIL, "OWNER")
            # The admin keys made on the machine before organization roles existed reach the
            # organization; every other key stays a project key.
            c.execute(
                "UPDATE api_keys SET org_wide = 1 WHERE project_id = ? AND user_email = ? "
                "AND name = 'admin'",
                (default, ADMIN_EMAIL),
            )
        _set_meta(c, "default_owner", ADMIN_EMAIL)
    if default is not None and _meta(c, "default_store") is None:
        # Decided once: the data directory's own store, unless an earlier Engram already kept
        # the default project's memories under projects/.
        legacy = f"projects/{default}"
        kept = not c.postgres and (_data_dir(c) / legacy / DEFAULT_DB_NAME).exists()
        _set_meta(c, "default_store", legacy if kept else "")
    return first


def _meta(c: Conn, key: str) -> str | None:
    row = c.execute("SELECT value FROM server_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(c: Conn, key: str, value: str) -> None:
    c.execute(
        "INSERT INTO server_meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _data_dir(c: Conn) -> Path:
    """The data directory: where the control database (`server.db`) lives."""
    return Path(c.execute("PRAGMA database_list").fetchone()[2]).parent


def default_store(c: Conn) -> tuple[str, str] | None:
    """The default project and where its store is, relative to the data directory ("" is the
    data directory's own `engram.db`); None before any server or `engram keys` ran."""
    project, where = _meta(c, "default_project"), _meta(c, "default_store")
    return None if project is None or where is None else (project, where)


def set_up(c: Conn) -> str:
    """The default project's id, making the default organization and project if no server has
    run yet (no key is made)."""
    transaction(c, lambda: _ensure_default(c))
    return str(default_project(c))


def default_project(c: Conn) -> str | None:
    return _meta(c, "default_project")


def _admin_key(c: Conn, key: str) -> dict[str, Any]:
    project_id = default_project(c)
    org_id = c.execute("SELECT org_id FROM projects WHERE id = ?", (project_id,)).fetchone()[0]
    return insert_key(c, key, org_id, str(project_id), "OWNER", ADMIN_EMAIL, "admin", org_wide=True)


def mint_admin_key(c: Conn) -> dict[str, Any]:
    """A new OWNER key of the default project (`engram keys create --admin`), made from the
    machine itself; the key is in `key`, shown this once. Sets the server up if it never ran."""

    def body() -> dict[str, Any]:
        _ensure_default(c)
        key = new_key()
        return {**_admin_key(c, key), "key": key}

    return transaction(c, body)


def find_project(c: Conn, wanted: str) -> dict[str, Any]:
    """A project by id or by name (a name several projects share is an error)."""
    found = rows(
        c, "SELECT id, org_id, name FROM projects WHERE id = ? OR name = ? ORDER BY created_at",
        (wanted, wanted),
    )  # fmt: skip
    exact = [p for p in found if p["id"] == wanted]
    if exact:
        return exact[0]
    if not found:
        raise NotFoundError(f"no project with the id or name {wanted!r}")
    if len(found) > 1:
        ids = ", ".join(p["id"] for p in found)
        raise ValidationError(f"several projects are named {wanted!r} ({ids}): give the id")
    return found[0]


# -- organizations, projects, members -----------------------------------------------------------


def create_org(c: Conn, name: str) -> dict[str, Any]:
    org = {"id": "org_" + uuid.uuid4().hex[:20], "name": name, "created_at": utc_now_iso()}
    c.execute("INSERT INTO orgs (id, name, created_at) VALUES (:id, :name, :created_at)", org)
    return org


PROJECT_FIELDS = ("name", "description", "custom_instructions", "custom_categories",
                  "agent_custom_instructions", "allow_private_urls")  # fmt: skip


def create_project(
    c: Conn, org_id: str, name: str, description: str | None = None
) -> dict[str, Any]:
    if c.execute("SELECT 1 FROM orgs WHERE id = ?", (org_id,)).fetchone() is None:
        raise NotFoundError(f"organization {org_id} not found")
    now = utc_now_iso()
    pid = "proj_" + uuid.uuid4().hex[:20]
    c.execute(
        "INSERT INTO projects (id, org_id, name, description, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (pid, org_id, name, description, now, now),
    )
    return get_project(c, org_id, pid)


def get_project(c: Conn, org_id: str, project_id: str) -> dict[str, Any]:
    found = rows(c, "SELECT * FROM projects WHERE id = ? AND org_id = ?", (project_id, org_id))
    if not found:
        raise NotFoundError(f"project {project_id} not found")
    project = found[0]
    project["custom_categories"] = json.loads(project["custom_categories"] or "null")
    project["allow_private_urls"] = bool(project["allow_private_urls"])
    project["project_id"], project["org_id"] = project["id"], org_id
    project["members"] = list_members(c, project_id)
    return project


def project_allows_private(c: Conn, project_id: str) -> bool:
    found = c.execute("SELECT allow_private_urls FROM projects WHERE id = ?", (project_id,))
    row = found.fetchone()
    return bool(row and row[0])


def list_projects(c: Conn, org_id: str) -> list[dict[str, Any]]:
    ids = [r[0] for r in c.execute("SELECT id FROM projects WHERE org_id = ?", (org_id,))]
    return [get_project(c, org_id, pid) for pid in ids]


def update_project(
    c: Conn, org_id: str, project_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    check_changes(changes)
    get_project(c, org_id, project_id)
    for name, value in changes.items():
        stored = json.dumps(value) if name == "custom_categories" else value
        stored = int(stored) if isinstance(stored, bool) else stored
        c.execute(f"UPDATE projects SET {name} = ? WHERE id = ?", (stored, project_id))
    c.execute("UPDATE projects SET updated_at = ? WHERE id = ?", (utc_now_iso(), project_id))
    return get_project(c, org_id, project_id)


def check_changes(changes: dict[str, Any]) -> None:
    """A `ValidationError` unless `changes` are known project fields with values of their type."""
    unknown = set(changes) - set(PROJECT_FIELDS)
    if unknown:
        raise ValidationError(f"unknown project fields: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        if name == "custom_categories":
            _check_categories(value)
        elif name == "allow_private_urls":
            if not isinstance(value, bool):
                raise ValidationError(f"allow_private_urls must be true or false, got {value!r}")
        elif name == "name":
            if not isinstance(value, str) or not value.strip():
                raise ValidationError("a project's name must be a non-empty string")
        elif value is not None and not isinstance(value, str):
            raise ValidationError(f"{name} must be a string")


def _check_categories(value: Any) -> None:
    ok = value is None or (
        isinstance(value, list)
        and all(
            isinstance(item, dict) and all(isinstance(v, str) for v in item.values())
            for item in value
        )
    )
    if not ok:
        raise ValidationError('custom_categories must be a list of {"name": "description"}')


def delete_project(c: Conn, org_id: str, project_id: str) -> None:
    get_project(c, org_id, project_id)
    if project_id == default_project(c):
        raise ConflictError(
            "the default project cannot be deleted: its memories are the data directory's own "
            "store, shared with the library and the CLI"
        )
    c.execute(
        "DELETE FROM deliveries WHERE webhook_id IN (SELECT id FROM webhooks WHERE project_id = ?)",
        (project_id,),
    )
    for table in ("members", "api_keys", "jobs", "webhooks", "profiles", "profile_settings"):
        c.execute(f"DELETE FROM {table} WHERE project_id = ?", (project_id,))
    c.execute("DELETE FROM projects WHERE id = ?", (project_id,))


def list_members(c: Conn, project_id: str) -> list[dict[str, Any]]:
    return rows(
        c,
        "SELECT email, role, created_at FROM members WHERE project_id = ? ORDER BY created_at",
        (project_id,),
    )


def add_member(c: Conn, project_id: str, email: str, role: str) -> None:
    _check_member(email, role)
    try:
        c.execute(
            "INSERT INTO members (project_id, email, role, created_at) VALUES (?, ?, ?, ?)",
            (project_id, email, role, utc_now_iso()),
        )
    except c.integrity_error:
        raise ConflictError(f"{email} is a member of this project already") from None


def update_member(c: Conn, project_id: str, email: str, role: str) -> None:
    _check_member(email, role)
    changed = c.execute(
        "UPDATE members SET role = ? WHERE project_id = ? AND email = ?", (role, project_id, email)
    ).rowcount
    if not changed:
        raise NotFoundError(f"{email} is not a member of this project")
    c.execute(
        "UPDATE api_keys SET role = ? WHERE project_id = ? AND user_email = ?",
        (role, project_id, email),
    )


def remove_member(c: Conn, project_id: str, email: str) -> None:
    removed = c.execute(
        "DELETE FROM members WHERE project_id = ? AND email = ?", (project_id, email)
    ).rowcount
    if not removed:
        raise NotFoundError(f"{email} is not a member of this project")
    c.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE project_id = ? AND user_email = ? "
        "AND revoked_at IS NULL",
        (utc_now_iso(), project_id, email),
    )


def member_role(c: Conn, project_id: str, email: str) -> str:
    row = c.execute(
        "SELECT role FROM members WHERE project_id = ? AND email = ?", (project_id, email)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"{email} is not a member of this project")
    return str(row[0])


def list_org_members(c: Conn, org_id: str) -> list[dict[str, Any]]:
    return rows(
        c,
        "SELECT email, role, created_at FROM org_members WHERE org_id = ? ORDER BY created_at",
        (org_id,),
    )


def set_org_member(c: Conn, org_id: str, email: str, role: str) -> None:
    """Make `email` a member of the organization with `role` (added, or its role changed)."""
    _check_member(email, role)
    if role != "OWNER":
        _keep_an_owner(c, org_id, email)
    c.execute(
        "INSERT INTO org_members (org_id, email, role, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (org_id, email) DO UPDATE SET role = excluded.role",
        (org_id, email, role, utc_now_iso()),
    )


def remove_org_member(c: Conn, org_id: str, email: str) -> None:
    """`email` leaves the organization (its project memberships and keys stay: the projects'
    owners manage those)."""
    _keep_an_owner(c, org_id, email)
    removed = c.execute(
        "DELETE FROM org_members WHERE org_id = ? AND email = ?", (org_id, email)
    ).rowcount
    if not removed:
        raise NotFoundError(f"{email} is not a member of this organization")


def _keep_an_owner(c: Conn, org_id: str, leaving: str) -> None:
    """A ConflictError if `leaving` is the organization's last OWNER."""
    others = c.execute(
        "SELECT count(*) FROM org_members WHERE org_id = ? AND role = 'OWNER' AND email <> ?",
        (org_id, leaving),
    ).fetchone()[0]
    mine = c.execute(
        "SELECT role FROM org_members WHERE org_id = ? AND email = ?", (org_id, leaving)
    ).fetchone()
    if mine is not None and mine[0] == "OWNER" and not others:
        raise ConflictError(f"{leaving} is the organization's last OWNER")


def _check_member(email: str, role: str) -> None:
    if not isinstance(email, str) or "@" not in email:
        raise ValidationError("a member needs an email address")
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}, got {role!r}")


# -- API keys ---------------------------------------------------------------------------------


def insert_key(
    c: Conn, key: str, org_id: str, project_id: str, role: str, email: str,
    name: str | None, *, org_wide: bool = False,
) -> dict[str, Any]:  # fmt: skip
    row = {
        "id": "key_" + uuid.uuid4().hex[:20], "digest": digest(key), "hint": key[-4:],
        "org_id": org_id, "project_id": project_id, "role": role, "user_email": email,
        "name": name, "created_at": utc_now_iso(), "org_wide": int(org_wide),
    }  # fmt: skip
    c.execute(
        "INSERT INTO api_keys (id, digest, hint, org_id, project_id, role, user_email, name, "
        "created_at, org_wide) VALUES (:id, :digest, :hint, :org_id, :project_id, :role, "
        ":user_email, :name, :created_at, :org_wide)",
        row,
    )
    return {k: (bool(v) if k == "org_wide" else v) for k, v in row.items() if k != "digest"}


def create_key(
    c: Conn, org_id: str, project_id: str, email: str, name: str | None,
    *, org_wide: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """A new key for a member of the project, with the member's role; the key is in `key`,
    shown this once. `org_wide`: the key also carries its user's organization role (the caller
    checks that an organization OWNER asks for it)."""
    role = member_role(c, project_id, email)
    if (
        org_wide
        and c.execute(
            "SELECT 1 FROM org_members WHERE org_id = ? AND email = ?", (org_id, email)
        ).fetchone()
        is None
    ):
        raise ValidationError(f"{email} is no member of the organization: no organization key")
    key = new_key()
    made = insert_key(c, key, org_id, project_id, role, email, name, org_wide=org_wide)
    return {**made, "key": key}


def find_key(c: Conn, key_digest: str) -> Caller | None:
    """The caller with this key; on PostgreSQL with the primary's WAL position, which a read
    replica must have replayed before it answers the caller (every write it made is before)."""
    position = ", pg_current_wal_insert_lsn()::text" if c.postgres else ""
    row = c.execute(
        f"SELECT k.id, k.org_id, k.project_id, k.role, k.user_email, o.role{position} "
        "FROM api_keys k LEFT JOIN org_members o ON k.org_wide = 1 AND o.org_id = k.org_id "
        "AND o.email = k.user_email WHERE k.digest = ? AND k.revoked_at IS NULL",
        (key_digest,),
    ).fetchone()
    return None if row is None else Caller(*row)


def list_keys(c: Conn, project_id: str) -> list[dict[str, Any]]:
    found = rows(
        c,
        "SELECT id, hint, role, user_email, name, created_at, revoked_at, org_wide "
        "FROM api_keys WHERE project_id = ? ORDER BY created_at",
        (project_id,),
    )
    return [{**key, "org_wide": bool(key["org_wide"])} for key in found]


def revoke_key(c: Conn, project_id: str, key_id: str) -> None:
    changed = c.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND project_id = ? AND revoked_at IS NULL",
        (utc_now_iso(), key_id, project_id),
    ).rowcount
    if not changed:
        raise NotFoundError(f"API key {key_id} not found (or revoked already)")


def dashboard_secret(c: Conn) -> str:
    """The key that signs dashboard sessions: made once, shared by every server of the data
    directory or database (a session started on one is valid on all)."""
    c.execute(
        "INSERT INTO server_meta (key, value) VALUES ('dashboard_secret', ?) "
        "ON CONFLICT (key) DO NOTHING",
        (secrets.token_urlsafe(32),),
    )
    found = _meta(c, "dashboard_secret")
    assert found is not None
    return found
