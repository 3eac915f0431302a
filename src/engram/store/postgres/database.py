"""`Database`: one PostgreSQL database as the stores of any number of projects share it: its
schema (migrated once, on a connection of its own, before any pool connects), a pool of
connections to the primary, and a pool per read replica.

Transactions set `engram.project`, which the Row-Level Security policies of the data tables
compare with each row's project (`schema.py`): a connection that is not the tables' owner sees
only the rows of the project its transaction names, whatever its queries forget.

Read replicas (streaming-replication standbys) answer reads when they have replayed the write-
ahead log up to the reader's mark: this process's last write, and, in the server, the primary's
position when the request arrived (`reads_after`), so a client reads its own writes through any
server. A replica that stays behind for `replica_wait` seconds is passed over for the primary.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from engram.errors import StoreError
from engram.store.postgres.schema import migrate_url

_read_after: ContextVar[int] = ContextVar("engram_read_after", default=0)
_primary_only: ContextVar[bool] = ContextVar("engram_primary_only", default=False)
EF_SEARCH = 400  # HNSW candidates per scan step (pgvector's default is 40): see store.py
# Every read: one snapshot; vector searches keep scanning the HNSW index until the filters have
# let k rows through, in exact distance order (pgvector >= 0.8).
READ_BEGIN = (
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; "
    f"SET LOCAL hnsw.ef_search = {EF_SEARCH}; SET LOCAL hnsw.iterative_scan = strict_order"
)


def lsn_value(lsn: str | None) -> int:
    """A WAL position (`16/B374D848`) as a number, for comparisons (None: 0)."""
    if not lsn:
        return 0
    high, _, low = str(lsn).partition("/")
    return (int(high, 16) << 32) | int(low, 16)


@contextmanager
def primary_reads() -> Iterator[None]:
    """Within this block, reads go to the primary: those that decide a write (an add's
    reconciliation against what is stored) must see everything, not a replica's past."""
    token = _primary_only.set(True)
    try:
        yield
    finally:
        _primary_only.reset(token)


def read_after(lsn: str | None) -> None:
    """From now on in this context (a server's request: its task), reads see at least what the
    primary had at `lsn`."""
    _read_after.set(max(_read_after.get(), lsn_value(lsn)))


@contextmanager
def reads_after(lsn: str | None) -> Iterator[None]:
    """Within this block, reads see at least what the primary had at `lsn` (a replica that has
    not replayed that far waits, or the primary answers)."""
    token = _read_after.set(max(_read_after.get(), lsn_value(lsn)))
    try:
        yield
    finally:
        _read_after.reset(token)


class Database:
    """The pools of one database (`url`, the primary) and its read replicas (`read_urls`)."""

    def __init__(
        self, url: str, *, read_urls: Sequence[str] = (), min_size: int = 1,
        max_size: int = 10, replica_wait: float = 0.1,
    ) -> None:  # fmt: skip
        self.url = url
        self.replica_wait = replica_wait
        self._primary = _pool(url, min_size, max_size)
        self._replicas = [_pool(u, min_size, max_size) for u in read_urls]
        self._turn = itertools.cycle(range(len(self._replicas)))
        self._written = 0  # WAL position after this process's last write (with replicas)
        self._opened = False
        self._lock = asyncio.Lock()

    @property
    def has_replicas(self) -> bool:
        return bool(self._replicas)

    async def open(self) -> None:
        async with self._lock:
            if self._opened:
                return
            await migrate_url(self.url)
            try:
                for pool in (self._primary, *self._replicas):
                    await pool.open(wait=True, timeout=30)
            except psycopg.Error as exc:
                raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
            self._opened = True

    async def close(self) -> None:
        async with self._lock:
            if self._opened:
                self._opened = False
                for pool in (self._primary, *self._replicas):
                    await pool.close()

    @asynccontextmanager
    async def writing(self, project: str) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection to the primary in a transaction of `project`: all of it commits, or
        none of it."""
        async with self._primary.connection() as conn:
            async with conn.transaction():
                await conn.execute(_set_project(project))
                yield conn
            if self._replicas:
                row = await (
                    await conn.execute("SELECT pg_current_wal_insert_lsn()::text")
                ).fetchone()
                self._written = max(self._written, lsn_value(row[0] if row else None))

    @asynccontextmanager
    async def reading(self, project: str) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection in a read-only snapshot of `project`: a replica's when one has caught
        up with the reader's mark, else the primary's."""
        begin = READ_BEGIN + "; " + _set_project(project).as_string(None)
        mark = max(_read_after.get(), self._written)
        if self._replicas and not _primary_only.get():
            pool = self._replicas[next(self._turn)]
            async with pool.connection() as conn:
                if await _caught_up(conn, mark, self.replica_wait):
                    async with conn.transaction():
                        await conn.execute(begin)
                        yield conn
                    return
        async with self._primary.connection() as conn, conn.transaction():
            await conn.execute(begin)
            yield conn


async def _caught_up(conn: AsyncConnection[Any], mark: int, wait: float) -> bool:
    """Whether the standby behind `conn` has replayed the WAL up to `mark` (waiting up to `wait`
    seconds for it). A server that is not in recovery (a promoted standby) has everything."""
    if mark == 0:
        return True
    give_up = time.monotonic() + wait
    delay = 0.001
    while True:
        row = await (await conn.execute("SELECT pg_last_wal_replay_lsn()::text")).fetchone()
        await conn.rollback()
        replayed = row[0] if row else None
        if replayed is None or lsn_value(replayed) >= mark:
            return True
        if time.monotonic() >= give_up:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)


def _set_project(project: str) -> sql.Composed:
    """The transaction's project (for Row-Level Security), and plans made for each statement's
    own values: psycopg prepares a statement run often, and PostgreSQL then switches to one
    generic plan, which cannot know how many rows the bound scope holds (an exact scan through
    the scope's B-tree suits ten memories, the HNSW index a hundred thousand): a search of a 10k
    scope took 28 ms on a generic plan, 17 ms replanned (bench/postgres_scale.py)."""
    return sql.SQL(
        "SET LOCAL engram.project = {}; SET LOCAL plan_cache_mode = force_custom_plan"
    ).format(sql.Literal(project))


def _pool(url: str, min_size: int, max_size: int) -> AsyncConnectionPool[Any]:
    return AsyncConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, configure=_configure,
        kwargs={"autocommit": False},
    )  # fmt: skip


async def _configure(conn: AsyncConnection[Any]) -> None:
    await register_vector_async(conn)
    await conn.commit()
