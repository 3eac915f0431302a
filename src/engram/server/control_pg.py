"""The control database on PostgreSQL: the same tables as `server.db` (organizations, projects,
members, keys, jobs, webhooks, deliveries, profiles, rate limits), in the database that holds every
project's memories, so that any number of servers share them (`schema.py`, migration 2).

`PgConn` runs `control.py`'s statements as they are written for SQLite: `?` and `:name`
parameters become psycopg's; each call of `PgControlDB.run` takes a connection of the pool (in
autocommit: `transaction()` makes one transaction of a block, as on SQLite).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from engram.errors import ConflictError, StoreError, ValidationError
from engram.server.control import ControlDB
from engram.store.postgres.schema import migrate_url

T = TypeVar("T")
logger = logging.getLogger("engram.server")
CONTROL_LOCK = 0x656E6772616D + 1  # serial control transactions (the schema's lock + 1)
THREADS = 4  # control statements of one server process running at once
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=512)
def translate(statement: str) -> str:
    """A statement with `?` / `:name` parameters in psycopg's `%s` / `%(name)s` (a literal `%`
    doubled). The control statements are this package's own: no `?` or `:` inside a literal."""
    out = statement.replace("%", "%%").replace("?", "%s")
    return _NAMED.sub(r"%(\1)s", out)


class PgConn:
    """A psycopg connection (autocommit) behind `control.Conn`."""

    postgres = True
    integrity_error: type[Exception] = psycopg.IntegrityError

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = (), /) -> Any:
        return self._conn.execute(translate(sql), params or None)

    @contextmanager
    def transaction(self, serial: bool = True) -> Iterator[None]:
        with self._conn.transaction():
            if serial:  # what SQLite's write lock does for server.db, across servers
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (CONTROL_LOCK,))
            yield


class PgControlDB(ControlDB):
    """The control database of a server on PostgreSQL: a small pool and `THREADS` threads."""

    postgres = True

    def __init__(self, url: str) -> None:
        self.url = url
        self._connections = ConnectionPool(
            url, min_size=1, max_size=THREADS, open=False, kwargs={"autocommit": True}
        )
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="engram-control")

    def open(self) -> None:
        try:
            self._connections.open(wait=True, timeout=30)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            with self._connections.connection() as conn:
                return fn(PgConn(conn), *args)
        except psycopg.DataError as exc:  # a value PostgreSQL cannot hold (a NUL character)
            raise ValidationError(f"PostgreSQL refused a value: {exc}") from exc
        except psycopg.IntegrityError as exc:  # one the function did not expect
            raise ConflictError(f"the change conflicts with stored data: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL error: {exc}") from exc

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        self._connections.close()


async def listen(url: str, wake: Mapping[str, Callable[[], None]]) -> None:
    """Call `wake[channel]()` for every notification on these channels (jobs or deliveries
    queued by any server), reconnecting after a lost connection."""
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                for channel in wake:
                    await conn.execute(f"LISTEN {channel}")
                for woken in wake.values():  # what was queued while not listening
                    woken()
                async for note in conn.notifies():
                    wake[note.channel]()
        except psycopg.Error as exc:
            logger.warning("listening for notifications failed (%s); again in 1 s", exc)
            await asyncio.sleep(1.0)


@contextmanager
def connect(url: str) -> Iterator[PgConn]:
    """One connection to the control tables (the CLI's `engram keys` / `engram projects`), the
    schema brought up to date first."""
    asyncio.run(migrate_url(url))
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=30)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    with conn:
        yield PgConn(conn)
