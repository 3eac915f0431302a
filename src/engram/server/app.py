"""`create_app(settings)`: the FastAPI application behind `engram serve`.

Around every request: a request id (`X-Request-ID`, taken from the caller or made), a body size
limit (413), one JSON log line (`engram.server.access`), and metrics. Errors are
`{"detail": ..., "code": ...}` with the status of `engram.errors.HTTP_STATUS`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException

from engram import __version__
from engram.errors import EngramError, TooManyRequestsError, ValidationError, http_status
from engram.server import exports, jobs, manage, oss, platform, profiles
from engram.server.control import ControlDB, bootstrap
from engram.server.metrics import Metrics
from engram.server.projects import ProjectMemories
from engram.server.settings import Settings
from engram.server.state import RateLimiter, State, state_of
from engram.server.webhooks import Deliverer

access_log = logging.getLogger("engram.server.access")
logger = logging.getLogger("engram.server")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await _start(settings)
        app.state.engram = state
        try:
            yield
        finally:
            await _stop(state)

    app = FastAPI(
        title="Engram", version=__version__, lifespan=lifespan,
        description="Long-term memory for LLM applications: the Mem0 Platform REST API.",
    )  # fmt: skip
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
            allow_headers=["*"],
        )  # fmt: skip
    app.middleware("http")(_around(settings))
    app.add_exception_handler(EngramError, _engram_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
    for router in (platform.router, manage.router, exports.router, profiles.router, oss.router):
        app.include_router(router)
    app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    return app


async def _start(settings: Settings) -> State:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = ControlDB(settings.data_dir / "server.db")
    first_key = await db.run(bootstrap, settings.admin_api_key)
    if first_key:
        print(
            f"Engram: first start. Admin API key (shown once, stored hashed): {first_key}",
            flush=True,
        )
    projects = ProjectMemories(settings.data_dir, settings.memory_config())
    state = State(settings, db, projects, Metrics(), RateLimiter(settings.rate_limit))
    state.workers = jobs.JobWorkers(
        db, lambda pid, kind, payload: _run_job(state, pid, kind, payload), settings.job_workers,
    )  # fmt: skip
    state.deliverer = Deliverer(db, settings.webhook_timeout)
    await state.workers.start()
    state.deliverer.start()
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
    if state.workers is not None:
        await state.workers.stop()
    if state.deliverer is not None:
        await state.deliverer.stop()
    await state.projects.close()
    state.db.close()


Handler = Callable[[Request], Awaitable[Response]]


def _around(settings: Settings) -> Callable[[Request, Handler], Awaitable[Response]]:
    async def middleware(request: Request, call_next: Handler) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = request_id
        start = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            response: Response = JSONResponse(
                {"detail": f"the request body is larger than {settings.max_body_bytes} bytes",
                 "code": "too_large"}, status_code=413,
            )  # fmt: skip
        else:
            response = await call_next(request)
        elapsed = time.perf_counter() - start
        response.headers["X-Request-ID"] = request_id
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        if hasattr(request.app.state, "engram"):
            state_of(request).metrics.observe(
                request.method, template, response.status_code, elapsed
            )
        who = getattr(request.state, "caller", None)
        access_log.info(json.dumps({
            "request_id": request_id, "method": request.method, "path": request.url.path,
            "status": response.status_code, "ms": round(elapsed * 1000, 2),
            "project_id": who.project_id if who else None,
        }))  # fmt: skip
        return response

    return middleware


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


async def _engram_error(request: Request, exc: EngramError) -> Response:
    headers = None
    if isinstance(exc, TooManyRequestsError):
        headers = {"Retry-After": str(int(exc.retry_after))}
    return _error(http_status(exc), exc.to_dict(), headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    return _error(422, {"detail": exc.errors(), "code": "invalid_request"})


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return _error(exc.status_code, {"detail": exc.detail, "code": "http_error"})


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(500, {"detail": "internal server error", "code": "internal_error"})


async def _healthz(request: Request) -> dict[str, Any]:
    state = state_of(request)
    depth = await state.db.run(jobs.pending_count)
    return {"status": "ok", "version": __version__, "queue_depth": depth}


async def _metrics(request: Request) -> Response:
    state = state_of(request)
    depth = await state.db.run(jobs.pending_count)
    return PlainTextResponse(state.metrics.render(depth), media_type="text/plain; version=0.0.4")
