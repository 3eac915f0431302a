"""What the routes share: settings, the control database, the projects' memories, the workers,
and the per-key rate limiter; plus the request dependencies (the caller, the caller's memory)."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import math
import secrets
import sqlite3
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request

from engram.errors import PermissionDeniedError, TooManyRequestsError, UnauthenticatedError
from engram.memory import AsyncMemory
from engram.server import jobs, webhooks
from engram.server.control import (
    Caller,
    Conn,
    ControlDB,
    SQLiteConn,
    digest,
    find_key,
    get_project,
    project_allows_private,
    transaction,
)
from engram.server.metrics import Metrics
from engram.server.projects import ProjectMemories
from engram.server.settings import Settings


class RateLimiter:
    """A token bucket per API key: `per_minute` requests, refilled continuously."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, key: str, per_minute: int | None = None) -> None:
        rate = self.per_minute if per_minute is None else per_minute
        if rate <= 0:
            return
        tokens, last = self._buckets.get(key, (float(rate), time.monotonic()))
        self._buckets[key] = _take(rate, tokens, last, time.monotonic())

    def close(self) -> None:
        return None


class SharedRateLimiter:
    """The same token buckets, kept in a database that every server process shares, so a key's
    limit holds across them: a small SQLite file of the data directory for the processes of one
    server (`--workers N`), written without fsync since losing it loses nothing that matters (the
    buckets refill); or the PostgreSQL database that servers on several machines share. The
    database work runs on a thread, never on the event loop."""

    def __init__(self, per_minute: int, db: ControlDB | None = None, path: Path | None = None):
        self.per_minute = per_minute
        self._db = db  # PostgreSQL: the control database's pool and threads
        self._path = path
        self._conn: SQLiteConn | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="engram-ratelimit")

    def _connection(self) -> SQLiteConn:
        if self._conn is None:  # only ever on the limiter's thread
            assert self._path is not None
            conn = sqlite3.connect(self._path, timeout=10, isolation_level=None, factory=SQLiteConn)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS rate_buckets "
                "(key TEXT PRIMARY KEY, tokens REAL NOT NULL, at REAL NOT NULL)"
            )
            self._conn = conn
        return self._conn

    async def take(self, key: str, per_minute: int | None = None) -> None:
        rate = self.per_minute if per_minute is None else per_minute
        if rate <= 0:
            return
        if self._db is not None:
            await self._db.run(take_token, key, rate)
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, lambda: take_token(self._connection(), key, rate))

    def close(self) -> None:
        def close_connection() -> None:
            if self._conn is not None:
                self._conn.close()

        self._thread.submit(close_connection).result()
        self._thread.shutdown(wait=True)


def take_token(c: Conn, key: str, per_minute: int) -> None:
    """One request of `key` against its bucket in `rate_buckets`, or TooManyRequestsError."""

    def body() -> None:
        now = time.time()  # one clock for every process (NTP keeps machines within ms)
        row = c.execute(
            "SELECT tokens, at FROM rate_buckets WHERE key = ?"
            + (" FOR UPDATE" if c.postgres else ""),
            (key,),
        ).fetchone()
        tokens, last = row if row else (float(per_minute), now)
        c.execute(
            "INSERT INTO rate_buckets (key, tokens, at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
            (key, *_take(per_minute, tokens, last, now)),
        )

    transaction(c, body, serial=False)  # the bucket's row lock is enough


def _take(per_minute: int, tokens: float, last: float, now: float) -> tuple[float, float]:
    """The bucket after one request at `now` (tokens, time), or TooManyRequestsError."""
    rate = per_minute / 60.0
    tokens = min(float(per_minute), tokens + max(0.0, now - last) * rate)
    if tokens < 1.0:
        raise TooManyRequestsError(
            f"rate limit of {per_minute} requests per minute reached",
            retry_after=math.ceil((1.0 - tokens) / rate),
        )
    return tokens - 1.0, now


@dataclass
class State:
    settings: Settings
    db: ControlDB
    projects: ProjectMemories
    metrics: Metrics
    limiter: RateLimiter | SharedRateLimiter
    workers: jobs.JobWorkers | None = None
    deliverer: webhooks.Deliverer | None = None
    queue_lock: jobs.QueueLock | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)
    http: httpx.AsyncClient | None = None  # the chat proxy's connections to its upstream
    # Proves a request comes from this process (the dashboard calling the API in-process, on
    # behalf of a signed-in key): random per process, never sent over a network.
    internal_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    dashboard_secret: str | None = None  # signs dashboard sessions (control.dashboard_secret)

    async def notify(self, project_id: str, results: Sequence[Mapping[str, Any]]) -> None:
        """Queue webhook deliveries for memory events (ADD / UPDATE / DELETE results)."""
        if not results:
            return
        queued = await self.db.run(
            lambda c: transaction(c, lambda: webhooks.enqueue(c, project_id, results))
        )
        if queued and self.deliverer is not None:
            self.deliverer.notify()


def state_of(request: Request) -> State:
    found: State = request.app.state.engram
    return found


def api_key_of(request: Request) -> str | None:
    """`Authorization: Token <key>` (Platform clients), `Bearer <key>`, or `X-API-Key`."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or None


async def caller(request: Request) -> Caller:
    """The request's API key, checked, rate-limited; the key's project confines everything."""
    found = await _chosen_project(request, await authenticate(request))
    await state_of(request).limiter.take(found.key_id)
    request.state.caller = found
    return found


INTERNAL_HEADER = "x-engram-internal"


def internal_headers(state: State, key_digest: str) -> dict[str, str]:
    """Headers that make an in-process request act as the key with this digest."""
    return {INTERNAL_HEADER: f"{state.internal_secret}:{key_digest}"}


async def authenticate(request: Request) -> Caller:
    """The request's API key, checked (a failure counts toward the address's limit)."""
    state = state_of(request)
    internal = request.headers.get(INTERNAL_HEADER)
    if internal is not None:
        secret, _, key_digest = internal.partition(":")
        if hmac.compare_digest(secret.encode(), state.internal_secret.encode()):
            found = await state.db.run(find_key, key_digest)
            if found is not None:
                return found
        await _failed_authentication(request, state)
        raise UnauthenticatedError("invalid or revoked API key")
    key = api_key_of(request)
    if key is None:
        await _failed_authentication(request, state)
        raise UnauthenticatedError(
            "an API key is required: send 'Authorization: Token <key>' or 'X-API-Key: <key>'"
        )
    return await check_key(request, key)


async def check_key(request: Request, key: str) -> Caller:
    """The caller with this API key; a wrong key counts toward the address's limit."""
    state = state_of(request)
    found = await state.db.run(find_key, digest(key))
    if found is None:
        await _failed_authentication(request, state)
        raise UnauthenticatedError("invalid or revoked API key")
    return found


async def _failed_authentication(request: Request, state: State) -> None:
    """Counted per client address (`auth_failures_per_minute`): past the limit, a 429 instead
    of the 401, so keys cannot be guessed at speed. A valid key is never held back by it."""
    address = request.client.host if request.client else "unknown"
    await state.limiter.take(f"auth-failures:{address}", state.settings.auth_failures_per_minute)


async def _chosen_project(request: Request, who: Caller) -> Caller:
    """Clients send org_id / project_id in the query. A project key's must be its own; an
    organization key (`org_role`) may name any project of its organization, and acts there
    with its organization role, as a Platform user's key picks the project it works on."""
    org_id = request.query_params.get("org_id")
    if org_id and org_id != who.org_id:
        raise PermissionDeniedError("this API key belongs to another organization")
    project_id = request.query_params.get("project_id")
    if not project_id or project_id == who.project_id:
        return who
    if who.org_role is None:
        raise PermissionDeniedError("this API key belongs to another project")
    await state_of(request).db.run(get_project, who.org_id, project_id)  # 404 if not there
    return dataclasses.replace(who, project_id=project_id, role=who.org_role)


async def writer(request: Request) -> Caller:
    who = await caller(request)
    if not who.can_write:
        raise PermissionDeniedError("this API key is read-only (role READER)")
    return who


Reader = Annotated[Caller, Depends(caller)]  # any valid key of the project
Writer = Annotated[Caller, Depends(writer)]  # an OWNER key


async def private_urls_allowed(state: State, project_id: str) -> bool:
    """Whether the project's webhooks and documents may reach private addresses: the server's
    setting, or the project's own (which only an organization OWNER changes)."""
    if state.settings.allow_private_urls:
        return True
    return bool(await state.db.run(project_allows_private, project_id))


async def memory_for(request: Request, who: Caller) -> AsyncMemory:
    """The caller's project's memory. With read replicas, the request's reads from here on see
    every write committed before it arrived (the primary's WAL position at the key check)."""
    state = state_of(request)
    if who.lsn is not None and state.projects.database is not None:
        from engram.store.postgres.database import read_after

        read_after(who.lsn)
    return await state.projects.get(who.project_id)
