"""`create_app(settings)`: the FastAPI application behind `engram serve`.

Around every request: a request id (`X-Request-ID`, taken from the caller or made), a body size
limit (413), one JSON log line (`engram.server.access`), and metrics. Errors are
`{"detail": ..., "code": ...}` with the status of `engram.errors.HTTP_STATUS`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from engram import __version__
from engram.dashboard import routes as dashboard
from engram.errors import (
    EngramError,
    PermissionDeniedError,
    TooManyRequestsError,
    ValidationError,
    http_status,
)
from engram.mcp.http import McpMount
from engram.server import exports, jobs, manage, oss, platform, profiles, proxy, webhooks
from engram.server.control import ControlDB, bootstrap, default_store
from engram.server.metrics import Metrics
from engram.server.projects import ProjectMemories
from engram.server.settings import Settings
from engram.server.state import RateLimiter, SharedRateLimiter, State, caller, state_of
from engram.server.webhooks import Deliverer

access_log = logging.getLogger("engram.server.access")
logger = logging.getLogger("engram.server")


SWITCH_INTERVAL = 0.001  # seconds


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    # The event loop answers everyone while worker threads tokenize, extract and parse: it waits
    # for the GIL at most this long when it wakes (Python's default is 5 ms per hand-over).
    sys.setswitchinterval(SWITCH_INTERVAL)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await _start(settings)
        app.state.engram = state
        try:
            async with mcp.running():
                yield
        finally:
            dashboard_client = getattr(app.state, "dashboard_client", None)
            if dashboard_client is not None:  # the dashboard's in-process API client
                await dashboard_client.aclose()
            await _stop(state)

    # /docs and /redoc load Swagger UI and ReDoc from the package, never from a CDN.
    app = FastAPIOffline(
        title="Engram", version=__version__, lifespan=lifespan,
        description="Long-term memory for LLM applications: the Mem0 Platform REST API.",
        static_url="/docs-assets",
    )  # fmt: skip
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
            allow_headers=["*"],
        )  # fmt: skip
    app.add_middleware(Around, settings=settings)
    app.add_exception_handler(EngramError, _engram_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
    for router in (platform.router, manage.router, exports.router, profiles.router, oss.router):
        app.include_router(router, responses=ERRORS)
    # OpenAI's API, not the Platform's: documented in docs/server.md, not in /docs.
    app.include_router(proxy.router, include_in_schema=False)
    app.mount("/dashboard/static", dashboard.static(), name="dashboard-static")
    app.include_router(dashboard.router)
    mcp = McpMount(app, settings.host)  # MCP over streamable HTTP: /mcp (see engram.mcp.http)
    app.router.routes.extend(mcp.routes())
    app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    return app


async def _start(settings: Settings) -> State:
    # One BLAS thread: the vector search's matrix-vector product gains little from a second one,
    # and OpenBLAS's idle threads spin after each call, taking a core from the other requests
    # (measured: 12 -> 7 ms of CPU per search).
    threadpool_limits(1, user_api="blas")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The configuration is checked (providers built) before anything is written: a failed start
    # must not have used up the one-time admin key.
    db: ControlDB
    if settings.database_url:  # PostgreSQL: every project, key, job ... in one database
        from engram.server.control_pg import PgControlDB
        from engram.store.postgres.database import Database

        database = Database(settings.database_url, read_urls=settings.database_read_urls,
                            max_size=settings.database_pool)  # fmt: skip
        projects = ProjectMemories(settings.data_dir, settings.memory_config(), database)
        await database.open()  # migrates the schema, once for servers starting together
        db = PgControlDB(settings.database_url)
        await asyncio.to_thread(db.open)
    else:
        projects = ProjectMemories(settings.data_dir, settings.memory_config())
        db = ControlDB(settings.data_dir / "server.db")
    first_key = await db.run(bootstrap, settings.admin_api_key)
    if first_key:
        print(
            f"Engram: no admin key yet. Admin API key (shown once, stored hashed): {first_key}\n"
            "(a new one, any time: engram keys create --admin)",
            flush=True,
        )
    projects.default = await db.run(default_store)
    several = settings.workers > 1
    limiter: RateLimiter | SharedRateLimiter = RateLimiter(settings.rate_limit)
    if db.postgres:
        limiter = SharedRateLimiter(settings.rate_limit, db=db)
    elif several:
        limiter = SharedRateLimiter(settings.rate_limit, path=settings.data_dir / "ratelimit.db")
    metrics = Metrics(settings.data_dir / "metrics" if several else None)
    state = State(settings, db, projects, metrics, limiter)
    # Jobs queued by a sibling process are seen by polling: more often when there are siblings
    # (on PostgreSQL, a notification wakes every server at once; polling is the fallback).
    poll = 0.25 if several and not db.postgres else 1.0
    workers = jobs.JobWorkers(
        db, lambda pid, kind, payload: _run_job(state, pid, kind, payload), settings.job_workers,
        poll, settings.job_lease,
    )  # fmt: skip
    deliverer = Deliverer(
        db, settings.webhook_timeout, poll, allow_private=settings.allow_private_urls
    )
    state.workers, state.deliverer = workers, deliverer

    async def run_queue() -> None:
        await workers.start()
        deliverer.start()

    if db.postgres and settings.database_url:  # every server works the queue, side by side
        from engram.server.control_pg import listen

        await run_queue()
        wake = {jobs.CHANNEL: workers.notify, webhooks.CHANNEL: deliverer.notify}
        state.background.append(asyncio.create_task(listen(settings.database_url, wake)))
    else:
        state.queue_lock = jobs.QueueLock(settings.data_dir / "queue.lock")
        if state.queue_lock.try_take():
            await run_queue()
        else:  # a sibling runs the queue; take over if it stops
            state.background.append(asyncio.create_task(state.queue_lock.wait_then(run_queue)))
    if several:
        state.background.append(asyncio.create_task(metrics.publish_every(1.0)))
    return state


async def _run_job(state: State, project_id: str, kind: str, payload: dict[str, Any]) -> Any:
    """What a queued job does (see `jobs.JobWorkers`): an async add, an export, a profile."""
    if kind == "ADD":
        return (await platform.run_add(state, project_id, payload))["results"]
    if kind == "EXPORT":
        return await exports.run_export(state, project_id, payload)
    if kind == "PROFILE":
        return await profiles.run_profile_job(state, project_id, payload)
    raise ValidationError(f"unknown job kind {kind!r}")


async def _stop(state: State) -> None:
    for task in state.background:
        task.cancel()
    await asyncio.gather(*state.background, return_exceptions=True)
    if state.workers is not None:
        await state.workers.stop()
    if state.deliverer is not None:
        await state.deliverer.stop()
    if state.queue_lock is not None:
        state.queue_lock.release()
    state.metrics.publish()
    await state.projects.close()
    state.limiter.close()
    state.db.close()
    if state.http is not None:
        await state.http.aclose()


class ErrorBody(BaseModel):
    """Every error answer: the message, a code a client can tell errors apart by (`errors.py`),
    and any details."""

    model_config = ConfigDict(extra="allow")
    detail: Any
    code: str


# What any route of the API may answer besides its success, documented in the OpenAPI schema.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Bad input: a malformed value or an unknown parameter; nothing was written"),
        (401, "No valid API key"),
        (403, "The key may not do this (a READER key writing, another project)"),
        (404, "No such memory, event, project, key or webhook"),
        (409, "The request contradicts stored state (an immutable memory, a project name)"),
        (413, "The body is over ENGRAM_MAX_BODY_BYTES"),
        (422, "A value of the wrong type or out of range"),
        (429, "A rate limit (the key's, or failed authentications); see Retry-After"),
        (502, "A configured provider (LLM, embedder) failed"),
        (503, "The database is unavailable"),
    )
}


class Around:
    """Pure ASGI middleware (Starlette's `BaseHTTPMiddleware` costs a task and a stream per
    request): the request id, the body size limit, the access log line and the metrics."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500  # unless the app answers: an unhandled error is answered further out

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode("latin-1"))]  # fmt: skip
            await send(message)

        limit = self.settings.max_body_bytes
        length = headers.get(b"content-length", b"")
        received = 0

        async def counted() -> Message:
            """The body as it streams, counted whatever its encoding (a chunked body has no
            length up front): past the limit, reading stops with a 413."""
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, detail=_too_large(limit))
            return message

        try:
            if length.isdigit() and int(length) > limit:
                too_large = JSONResponse(
                    {"detail": _too_large(limit), "code": "too_large"}, status_code=413
                )
                await too_large(scope, receive, answer)
            else:
                await self.app(scope, counted, answer)
        finally:
            self._record(scope, status, time.perf_counter() - start, request_id)

    def _record(self, scope: Scope, status: int, elapsed: float, request_id: str) -> None:
        app_state = scope["app"].state if "app" in scope else None
        route = getattr(scope.get("route"), "path", "unmatched")
        if app_state is not None and hasattr(app_state, "engram"):
            app_state.engram.metrics.observe(scope["method"], route, status, elapsed)
        who = scope.get("state", {}).get("caller")
        access_log.info(json.dumps({
            "request_id": request_id, "method": scope["method"], "path": scope["path"],
            "status": status, "ms": round(elapsed * 1000, 2),
            "project_id": who.project_id if who else None,
        }))  # fmt: skip


def _error(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """The error answer: `{"detail", "code"}`, or OpenAI's shape on the chat proxy's routes
    (which OpenAI clients read the message from)."""
    if request.url.path in proxy.PATHS:
        body = proxy.openai_error(body)
    return JSONResponse(body, status_code=status, headers=headers)


# An absolute file path in a message (a store's file, a model's directory): not for clients.
_FILE_PATH = re.compile(r"(?<![\w:/.])/(?:[\w.@+-]+/)+[\w.@+-]*")


async def _engram_error(request: Request, exc: EngramError) -> Response:
    headers = None
    if isinstance(exc, TooManyRequestsError):
        headers = {"Retry-After": str(int(exc.retry_after))}
    status, body = http_status(exc), exc.to_dict()
    if status >= 500:  # the server's own trouble: logged whole, answered without its files
        logger.warning("%s on %s %s: %s", body["code"], request.method, request.url.path, exc)
        body["detail"] = _FILE_PATH.sub("<path>", str(body["detail"]))
    return _error(request, status, body, headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    return _error(request, 422, {"detail": exc.errors(), "code": "invalid_request"})


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


async def _http_error(request: Request, exc: HTTPException) -> Response:
    code = "too_large" if exc.status_code == 413 else "http_error"
    headers = dict(exc.headers) if exc.headers else None  # 405's Allow, 401's WWW-Authenticate
    return _error(request, exc.status_code, {"detail": exc.detail, "code": code}, headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(request, 500, {"detail": "internal server error", "code": "internal_error"})


async def _healthz(request: Request) -> dict[str, Any]:
    state = state_of(request)
    depth = await state.db.run(jobs.pending_count)
    return {"status": "ok", "version": __version__, "queue_depth": depth}


async def _metrics(request: Request) -> Response:
    """Prometheus' text format; for an organization OWNER's key (`Authorization: Bearer`, as a
    scrape config's `authorization` sends it) unless ENGRAM_PUBLIC_METRICS is true."""
    state = state_of(request)
    if not state.settings.public_metrics and not (await caller(request)).org_owner:
        raise PermissionDeniedError("/metrics needs an organization OWNER's key")
    depth = await state.db.run(jobs.pending_count)
    return PlainTextResponse(state.metrics.render(depth), media_type="text/plain; version=0.0.4")
