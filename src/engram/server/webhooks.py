"""Webhooks: per-project subscriptions, a durable outbox of deliveries, and the task that sends
them.

Each delivery is a POST of JSON to the webhook's URL, signed with HMAC-SHA256 of the exact body
under the webhook's secret: header `X-Engram-Signature: sha256=<hex>` (also `X-Engram-Event`,
`X-Engram-Delivery`). A 2xx answer delivers it; anything else is retried with exponential
backoff (1 s, 2 s, 4 s, ... capped at 10 min) up to `MAX_ATTEMPTS`, and every attempt's outcome is
recorded. Deliveries live in the control database, so they survive restarts: at least once.
A sender claims the deliveries it sends for a while (`next_at` moves past the attempt's timeout;
on PostgreSQL with `FOR UPDATE SKIP LOCKED`), so servers sharing one database send each delivery
once, and one whose sender died is sent again when that claim runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from engram.core.timeutil import format_timestamp, utc_now_iso
from engram.errors import NetworkError, NotFoundError, ValidationError
from engram.providers._net import check_url, target
from engram.server.control import Conn, ControlDB, rows, transaction

logger = logging.getLogger("engram.server.webhooks")
EVENT_TYPES = ("memory_add", "memory_update", "memory_delete")
EVENTS = {"ADD": "memory_add", "UPDATE": "memory_update", "DELETE": "memory_delete"}
MAX_ATTEMPTS = 8
SIGNATURE_HEADER = "X-Engram-Signature"
CHANNEL = "engram_deliveries"  # PostgreSQL: notified when deliveries are queued


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _check(url: Any, name: Any, event_types: Any, allow_private: bool) -> None:
    if not isinstance(url, str):
        raise ValidationError("url must be an http:// or https:// URL")
    check_url(url, allow_private=allow_private)  # the scheme, and the addresses it resolves to
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name must be a non-empty string")
    if (
        not isinstance(event_types, list)
        or not event_types
        or any(e not in EVENT_TYPES for e in event_types)
    ):
        raise ValidationError(f"event_types must be a non-empty list of {', '.join(EVENT_TYPES)}")


def _webhook(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "webhook_id": row["id"], "id": row["id"], "name": row["name"], "url": row["url"],
        "event_types": json.loads(row["event_types"]), "project": row["project_id"],
        "secret": row["secret"], "is_active": bool(row["is_active"]),
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }  # fmt: skip


def create(
    c: Conn, project_id: str, url: Any, name: Any, event_types: Any, *, allow_private: bool
) -> dict[str, Any]:
    _check(url, name, event_types, allow_private)
    now = utc_now_iso()
    cursor = c.execute(
        "INSERT INTO webhooks (project_id, name, url, event_types, secret, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)" + (" RETURNING id" if c.postgres else ""),
        (project_id, name, url, json.dumps(event_types), secrets.token_hex(32), now, now),
    )
    webhook_id = cursor.fetchone()[0] if c.postgres else cursor.lastrowid
    return get(c, project_id, int(webhook_id or 0))


def get(c: Conn, project_id: str, webhook_id: int) -> dict[str, Any]:
    found = rows(
        c, "SELECT * FROM webhooks WHERE id = ? AND project_id = ?", (webhook_id, project_id)
    )
    if not found:
        raise NotFoundError(f"webhook {webhook_id} not found")
    return _webhook(found[0])


def list_for(c: Conn, project_id: str) -> list[dict[str, Any]]:
    found = rows(c, "SELECT * FROM webhooks WHERE project_id = ? ORDER BY id", (project_id,))
    return [_webhook(r) for r in found]


def update(
    c: Conn, project_id: str, webhook_id: int, changes: dict[str, Any], *, allow_private: bool
) -> dict[str, Any]:
    current = get(c, project_id, webhook_id)
    unknown = set(changes) - {"name", "url", "event_types", "is_active"}
    if unknown:
        raise ValidationError(f"unknown webhook fields: {', '.join(sorted(unknown))}")
    merged = {**current, **{k: v for k, v in changes.items() if v is not None}}
    # A URL kept as it was is not resolved again here: it is checked when it is sent to.
    unchanged = "url" not in changes
    _check(merged["url"], merged["name"], merged["event_types"], allow_private or unchanged)
    c.execute(
        "UPDATE webhooks SET name = ?, url = ?, event_types = ?, is_active = ?, updated_at = ? "
        "WHERE id = ?",
        (merged["name"], merged["url"], json.dumps(merged["event_types"]),
         int(bool(merged["is_active"])), utc_now_iso(), webhook_id),
    )  # fmt: skip
    return get(c, project_id, webhook_id)


def delete(c: Conn, project_id: str, webhook_id: int) -> None:
    get(c, project_id, webhook_id)
    c.execute("DELETE FROM deliveries WHERE webhook_id = ?", (webhook_id,))
    c.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))


def enqueue(c: Conn, project_id: str, results: Sequence[Mapping[str, Any]]) -> int:
    """Queue one delivery per (memory event, subscribed active webhook); return how many."""
    hooks = [h for h in list_for(c, project_id) if h["is_active"]]
    now = utc_now_iso()
    count = 0
    for result in results:
        event_type = EVENTS.get(str(result.get("event")))
        for hook in hooks:
            if event_type not in hook["event_types"]:
                continue
            body = {
                "event_type": event_type,
                "webhook_id": hook["id"],
                "project_id": project_id,
                "event_details": {
                    "id": result.get("id"),
                    "event": result.get("event"),
                    "data": {k: v for k, v in result.items() if k not in ("id", "event")},
                },
                "created_at": now,
            }
            c.execute(
                "INSERT INTO deliveries (webhook_id, event_type, body, status, next_at, "
                "created_at, updated_at) VALUES (?, ?, ?, 'PENDING', ?, ?, ?)",
                (hook["id"], event_type, json.dumps(body), now, now, now),
            )
            count += 1
    if count and c.postgres:  # sent when the transaction commits
        c.execute(f"NOTIFY {CHANNEL}")
    return count


def _claim_due(c: Conn, limit: int, hold: float) -> list[dict[str, Any]]:
    """Up to `limit` due deliveries, claimed for `hold` seconds (their `next_at` moves on)."""

    def body() -> list[dict[str, Any]]:
        due = rows(
            c,
            "SELECT d.id, d.body, d.event_type, d.attempts, w.url, w.secret, "
            "p.allow_private_urls FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id "
            "LEFT JOIN projects p ON p.id = w.project_id WHERE d.status = 'PENDING' "
            "AND d.next_at <= ? ORDER BY d.next_at LIMIT ?"
            + (" FOR UPDATE OF d SKIP LOCKED" if c.postgres else ""),
            (utc_now_iso(), limit),
        )
        until = format_timestamp(datetime.now(UTC) + timedelta(seconds=hold))
        for delivery in due:
            c.execute("UPDATE deliveries SET next_at = ? WHERE id = ?", (until, delivery["id"]))
        return due

    return transaction(c, body, serial=False)  # the row locks are enough


def _record(
    c: Conn, delivery_id: int, attempts: int, status: int | None, error: str | None
) -> None:
    delivered = status is not None and 200 <= status < 300
    if delivered:
        state, next_at = "DELIVERED", utc_now_iso()
    else:
        state = "FAILED" if attempts >= MAX_ATTEMPTS else "PENDING"
        delay = min(600.0, 2.0 ** (attempts - 1))
        next_at = format_timestamp(datetime.now(UTC) + timedelta(seconds=delay))
    c.execute(
        "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, last_status = ?, "
        "last_error = ?, updated_at = ? WHERE id = ?",
        (state, attempts, next_at, status, error, utc_now_iso(), delivery_id),
    )


def redeliver(c: Conn, project_id: str, webhook_id: int, delivery_id: int) -> dict[str, Any]:
    """Queue a delivery's body again, as a new delivery (the old one stays in the log)."""
    get(c, project_id, webhook_id)
    found = rows(c, "SELECT event_type, body FROM deliveries WHERE id = ? AND webhook_id = ?",
                 (delivery_id, webhook_id))  # fmt: skip
    if not found:
        raise NotFoundError(f"delivery {delivery_id} of webhook {webhook_id} not found")
    now = utc_now_iso()
    c.execute(
        "INSERT INTO deliveries (webhook_id, event_type, body, status, next_at, created_at, "
        "updated_at) VALUES (?, ?, ?, 'PENDING', ?, ?, ?)",
        (webhook_id, found[0]["event_type"], found[0]["body"], now, now, now),
    )
    if c.postgres:
        c.execute(f"NOTIFY {CHANNEL}")
    return {"message": "Delivery queued again."}


def deliveries(c: Conn, project_id: str, webhook_id: int) -> list[dict[str, Any]]:
    get(c, project_id, webhook_id)
    found = rows(
        c,
        "SELECT id, event_type, body, status, attempts, last_status, last_error, created_at, "
        "updated_at FROM deliveries WHERE webhook_id = ? ORDER BY id",
        (webhook_id,),
    )
    for row in found:
        row["body"] = json.loads(row["body"])
    return found


class Deliverer:
    """Sends due deliveries; woken when new ones are queued, else polls every `poll` seconds."""

    def __init__(
        self, db: ControlDB, timeout: float, poll: float = 1.0, *, allow_private: bool = False
    ) -> None:
        self._db, self._poll, self._allow_private = db, poll, allow_private
        self._hold = 2 * timeout + 30  # a claim outlives any attempt of its sender
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def notify(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()

    async def _loop(self) -> None:
        while True:
            due = await self._db.run(_claim_due, 50, self._hold)
            if due:
                await asyncio.gather(*(self._send(d) for d in due))
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)

    async def _send(self, delivery: dict[str, Any]) -> None:
        body = delivery["body"].encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(delivery["secret"], body),
            "X-Engram-Event": delivery["event_type"],
            "X-Engram-Delivery": str(delivery["id"]),
        }
        status: int | None = None
        error: str | None = None
        try:  # checked again at sending time (DNS can change) and sent to that address
            allowed = self._allow_private or bool(delivery["allow_private_urls"])
            where = await target(delivery["url"], allow_private=allowed)
            response = await self._client.post(
                where.url, content=body, headers={**headers, **where.headers},
                extensions=where.extensions,
            )  # fmt: skip
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except (ValidationError, NetworkError) as exc:
            error = f"refused: {exc}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error:
            logger.warning("webhook delivery %s failed: %s", delivery["id"], error)
        await self._db.run(_record, delivery["id"], delivery["attempts"] + 1, status, error)
