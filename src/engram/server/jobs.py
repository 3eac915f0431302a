"""Async adds: a durable job queue in `server.db`, worked by a few tasks of the server.

A job is PENDING when accepted, RUNNING while a worker has it, then SUCCEEDED or FAILED. Jobs that
were RUNNING when the server stopped (even by kill -9) are PENDING again at the next start. The
job id is the add's idempotency key, claimed in the same transaction as the memories it writes,
so a job re-run after a crash writes nothing twice: it finds its claim and reports those results.

Of the processes serving one SQLite data directory (`engram serve --workers N`, or two servers
started on it), one runs the queue and the webhook deliveries: the holder of `QueueLock`. The
others queue work for it and take over when it dies.

On PostgreSQL every server runs workers: a worker claims a job with `FOR UPDATE SKIP LOCKED`, so
two servers never claim the same one, and holds it under a lease (`LEASE` seconds, renewed while
it runs). A job whose server died (its lease ran out) is claimed again by any other server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from engram.core.timeutil import utc_now_iso
from engram.errors import EngramError, NotFoundError, ProviderError, StoreError
from engram.server.control import Conn, ControlDB, rows, transaction

logger = logging.getLogger("engram.server.jobs")
MAX_ATTEMPTS = 3  # for failures that are not the request's fault (provider down, ...)
CHANNEL = "engram_jobs"  # PostgreSQL: notified when a job is queued (wakes every server)
LEASE = 60.0  # seconds a PostgreSQL worker holds a job without renewing it (ENGRAM_JOB_LEASE)

Runner = Callable[[str, str, dict[str, Any]], Awaitable[Any]]


def enqueue(c: Conn, project_id: str, kind: str, payload: dict[str, Any]) -> str:
    job_id = str(uuid.uuid4())
    now = utc_now_iso()
    c.execute(
        "INSERT INTO jobs (id, project_id, kind, payload, status, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, 'PENDING', ?, ?)",
        (job_id, project_id, kind, json.dumps(payload), now, now),
    )
    if c.postgres:  # sent when the transaction commits
        c.execute(f"NOTIFY {CHANNEL}")
    return job_id


def claim_next(c: Conn, lease: float = LEASE) -> dict[str, Any] | None:
    """The oldest PENDING job (on PostgreSQL, or one whose worker's lease ran out), now RUNNING."""

    def body() -> dict[str, Any] | None:
        if c.postgres:  # servers claim side by side: skip the rows another one is claiming
            found = rows(
                c,
                "SELECT id, project_id, kind, payload, attempts FROM jobs WHERE status = 'PENDING' "
                "OR (status = 'RUNNING' AND lease_until < now()) ORDER BY created_at LIMIT 1 "
                "FOR UPDATE SKIP LOCKED",
            )
        else:
            found = rows(
                c,
                "SELECT id, project_id, kind, payload, attempts FROM jobs WHERE status = 'PENDING' "
                "ORDER BY created_at LIMIT 1",
            )
        if not found:
            return None
        job = found[0]
        c.execute(
            "UPDATE jobs SET status = 'RUNNING', attempts = attempts + 1, updated_at = ? "
            "WHERE id = ?",
            (utc_now_iso(), job["id"]),
        )
        if c.postgres:
            renew(c, job["id"], lease)
        job["payload"] = json.loads(job["payload"])
        return job

    return transaction(c, body, serial=False)  # the row lock is enough


def finish(
    c: Conn, job_id: str, status: str, results: Any = None, error: str | None = None
) -> None:
    c.execute(
        "UPDATE jobs SET status = ?, results = ?, error = ?, updated_at = ? WHERE id = ?",
        (status, None if results is None else json.dumps(results), error, utc_now_iso(), job_id),
    )


def renew(c: Conn, job_id: str, lease: float = LEASE) -> None:
    """Extend the lease of a RUNNING job (PostgreSQL: the database's clock, which every server
    shares)."""
    c.execute(
        "UPDATE jobs SET lease_until = now() + make_interval(secs => ?) "
        "WHERE id = ? AND status = 'RUNNING'",
        (float(lease), job_id),
    )


def requeue_running(c: Conn) -> int:
    return int(
        c.execute(
            "UPDATE jobs SET status = 'PENDING', updated_at = ? WHERE status = 'RUNNING'",
            (utc_now_iso(),),
        ).rowcount
    )


def pending_count(c: Conn) -> int:
    return int(c.execute("SELECT count(*) FROM jobs WHERE status = 'PENDING'").fetchone()[0])


def _event(job: dict[str, Any]) -> dict[str, Any]:
    """A job as mem0's event: id, event_type, status, payload, results, timestamps."""
    return {
        "id": job["id"],
        "event_type": job["kind"],
        "status": job["status"],
        "payload": json.loads(job["payload"]),
        "results": json.loads(job["results"]) if job["results"] else [],
        "error": job["error"],
        "created_at": job["created_at"],
        "updated_at": job["updated_at"],
    }


def get_event(c: Conn, project_id: str, job_id: str) -> dict[str, Any]:
    found = get_job(c, project_id, job_id)
    if found is None:
        raise NotFoundError(f"event {job_id} not found")
    return _event(found)


def get_job(
    c: Conn, project_id: str, job_id: str, kind: str | None = None
) -> dict[str, Any] | None:
    """The project's job with this id (of this kind, when given), or None."""
    found = rows(c, "SELECT * FROM jobs WHERE id = ? AND project_id = ?", (job_id, project_id))
    return found[0] if found and kind in (None, found[0]["kind"]) else None


def newest_with_key(c: Conn, project_id: str, kind: str, key: str) -> dict[str, Any] | None:
    """The project's newest job of `kind` whose payload has this `key` (an export's canonical
    filters, a profile job's idempotency key), or None."""
    key_of, order = ("payload::jsonb ->> 'key'", "seq") if c.postgres else \
        ("json_extract(payload, '$.key')", "rowid")  # fmt: skip
    found = rows(
        c,
        f"SELECT * FROM jobs WHERE project_id = ? AND kind = ? AND {key_of} = ? "
        f"ORDER BY created_at DESC, {order} DESC LIMIT 1",
        (project_id, kind, key),
    )
    return found[0] if found else None


def list_events(
    c: Conn, project_id: str, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    total = c.execute("SELECT count(*) FROM jobs WHERE project_id = ?", (project_id,)).fetchone()
    found = rows(
        c,
        "SELECT * FROM jobs WHERE project_id = ? ORDER BY created_at DESC LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    )
    return [_event(j) for j in found], int(total[0])


class QueueLock:
    """An exclusive `flock` on a file of the data directory. Its holder alone runs the job queue
    and the webhook deliveries: it may then requeue the jobs left RUNNING, since no other process
    runs jobs. The OS releases the lock when the holder's process ends, by kill -9 too, and a
    waiting process takes it within `retry` seconds."""

    def __init__(self, path: Path, retry: float = 1.0) -> None:
        self._path, self._retry = path, retry
        self._fd: int | None = None

    def try_take(self) -> bool:
        if self._fd is not None:
            return True
        try:
            import fcntl
        except ImportError:  # no flock (Windows): one process per data directory
            self._fd = -1
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def wait_then(self, start: Callable[[], Awaitable[None]]) -> None:
        """Take the lock (trying every `retry` seconds), then run `start`."""
        while not self.try_take():
            await asyncio.sleep(self._retry)
        await start()

    def release(self) -> None:
        if self._fd is not None and self._fd >= 0:
            os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None


class JobWorkers:
    """`count` tasks that take PENDING jobs and run them through `runner(project_id, kind,
    payload_with_idempotency_key)`."""

    def __init__(
        self, db: ControlDB, runner: Runner, count: int, poll: float = 1.0, lease: float = LEASE
    ) -> None:
        self._db, self._runner, self._count, self._poll = db, runner, count, poll
        self._lease = lease
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if not self._db.postgres:  # the queue's only runner: what was RUNNING was interrupted
            requeued = await self._db.run(lambda c: transaction(c, lambda: requeue_running(c)))
            if requeued:
                logger.info("jobs interrupted by the last stop are pending again: %d", requeued)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._count)]

    def notify(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            job = await self._db.run(claim_next, self._lease)
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
                continue
            await self._run(job)

    async def _run(self, job: dict[str, Any]) -> None:
        if not self._db.postgres:
            await self._attempt(job)
            return
        lease = asyncio.create_task(self._renew(job["id"]))
        try:
            await self._attempt(job)
        finally:
            lease.cancel()
            await asyncio.gather(lease, return_exceptions=True)

    async def _renew(self, job_id: str) -> None:
        """Keep the job's lease while it runs (a third of the lease between renewals)."""
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                await self._db.run(renew, job_id, self._lease)
            except Exception:  # the next renewal may succeed; a lost lease only risks a rerun
                logger.warning("could not renew the lease of job %s", job_id, exc_info=True)

    async def _attempt(self, job: dict[str, Any]) -> None:
        payload = {**job["payload"], "idempotency_key": job["id"]}
        try:
            results = await self._runner(job["project_id"], job["kind"], payload)
        except EngramError as exc:  # the request's own problem, or a provider's: recorded
            retry = isinstance(exc, ProviderError | StoreError)
            if retry and job["attempts"] < MAX_ATTEMPTS:
                await self._db.run(finish, job["id"], "PENDING")
                return
            await self._db.run(finish, job["id"], "FAILED", None, f"{exc.code}: {exc.message}")
        except Exception as exc:
            logger.exception("job %s failed", job["id"])
            status = "PENDING" if job["attempts"] < MAX_ATTEMPTS else "FAILED"
            await self._db.run(finish, job["id"], status, None, f"internal error: {exc}")
        else:
            await self._db.run(finish, job["id"], "SUCCEEDED", results)
