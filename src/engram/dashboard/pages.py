"""The dashboard's pages. Each reads and changes memory through the REST API (`api.Api`) as the
signed-in key; a READER key sees every page without its change controls, and the API refuses
its changes anyway. Changes are POSTed forms carrying the session's CSRF token, answered with a
redirect (303) to the page to look at next, with a note of what happened."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from engram import __version__
from engram.dashboard import session
from engram.dashboard.api import Api, ApiError
from engram.dashboard.session import CsrfError, SignedOutError, Viewer
from engram.errors import EngramError, UnauthenticatedError, http_status
from engram.server import control, jobs
from engram.server.state import check_key, state_of

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["version"] = __version__
templates.env.filters["json"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False)

router = APIRouter(prefix="/dashboard", include_in_schema=False)
PAGE_SIZES = (25, 50, 100, 250)
SCOPE = ("user_id", "agent_id", "app_id", "run_id")

Handler = Callable[..., Awaitable[Response]]


def page(handler: Handler) -> Handler:
    """A dashboard route: the viewer signed in (else the sign-in page), and errors shown as a
    page with the API's status and message, never a JSON body."""

    async def run(request: Request, **kwargs: Any) -> Response:
        try:
            seen = await session.viewer(request)
            if request.method == "POST":
                await session.check_csrf(request, seen)
            elif seen.who.org_role:  # the header's project switcher
                org = seg(seen.who.org_id)
                listed = await Api(request, seen).get(f"/api/v1/orgs/organizations/{org}/projects/")
                seen.projects = listed if isinstance(listed, list) else listed.get("results", [])
            return await handler(request, seen, **kwargs)
        except SignedOutError as exc:
            if request.method == "GET":
                target = quote(str(request.url.path) + ("?" + request.url.query if
                                                        request.url.query else ""))  # fmt: skip
                return RedirectResponse(f"/dashboard/login?next={target}", status_code=303)
            return error_page(request, None, 401, str(exc))
        except ApiError as exc:
            return error_page(request, None, exc.status, exc.message)
        except EngramError as exc:
            status = 403 if isinstance(exc, CsrfError) else http_status(exc)
            return error_page(request, None, status, str(exc))

    # What FastAPI sees: the request and the path's parameters (strings), not `seen`.
    names = [n for n in inspect.signature(handler).parameters if n not in ("request", "seen")]
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)]
        + [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=str) for n in names]
    )
    run.__name__ = run.__qualname__ = handler.__name__
    return run


def render(request: Request, seen: Viewer | None, template: str, status: int = 200,
           **context: Any) -> HTMLResponse:  # fmt: skip
    context.update(viewer=seen, note=request.query_params.get("note"), page_sizes=PAGE_SIZES)
    return templates.TemplateResponse(request, template, context, status_code=status)


def error_page(request: Request, seen: Viewer | None, status: int, message: str) -> HTMLResponse:
    return render(request, seen, "error.html", status=status, status_code=status, message=message)


def seg(value: str) -> str:
    """A value as one path segment of an API route."""
    return quote(value, safe="")


def back(path: str, note: str) -> RedirectResponse:
    joiner = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{joiner}{urlencode({'note': note})}", status_code=303)


# -- sign in, out -------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request) -> Response:
    return render(request, None, "login.html", next=local_path(request.query_params.get("next")))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    key, target = str(form.get("api_key", "")).strip(), local_path(str(form.get("next", "")))
    try:
        if not key:
            raise UnauthenticatedError("enter an API key")
        await check_key(request, key)
    except EngramError as exc:
        context = {"next": target, "error": str(exc)}
        return render(request, None, "login.html", status=http_status(exc), **context)
    answer = RedirectResponse(target or "/dashboard", status_code=303)
    await session.start(request, answer, control.digest(key))
    return answer


@router.post("/project")
@page
async def switch_project(request: Request, seen: Viewer) -> Response:
    """An organization key: look at another project of the organization."""
    form = await request.form()
    wanted = str(form.get("project_id", ""))
    if not seen.who.org_role:
        raise ApiError(403, "permission_denied", "only an organization key switches projects")
    org = seg(seen.who.org_id)
    await Api(request, seen).get(f"/api/v1/orgs/organizations/{org}/projects/{seg(wanted)}/")
    answer = back("/dashboard", f"Now looking at project {wanted}")
    await session.start(request, answer, seen.key_digest, wanted, seen.csrf)
    return answer


@router.post("/logout")
@page
async def logout(request: Request, seen: Viewer) -> Response:
    answer = RedirectResponse("/dashboard/login?note=Signed+out", status_code=303)
    session.end(answer)
    return answer


def local_path(target: str | None) -> str:
    """A dashboard path to send the browser to (after signing in, after a change); anything
    else (another site, `..`) is dropped."""
    path = (target or "").split("?", 1)[0]
    if (path == "/dashboard" or path.startswith("/dashboard/")) and "//" not in path \
            and "\\" not in path and ".." not in path.split("/"):  # fmt: skip
        return target or ""
    return ""


# -- overview ---------------------------------------------------------------------------------


@router.get("")
@page
async def overview(request: Request, seen: Viewer) -> Response:
    api = Api(request, seen)
    entities = (await api.get("/v1/entities/"))["results"]
    memories = await api.post("/v3/memories/", {"page_size": 1})
    events = await api.get("/v1/events/", page_size=10)
    state = state_of(request)
    depth = await state.db.run(jobs.pending_count)
    metrics = state.metrics.merged_snapshot()
    routes = _route_table(metrics)
    by_kind: dict[str, int] = {}
    for entity in entities:
        by_kind[entity["type"]] = by_kind.get(entity["type"], 0) + 1
    return render(request, seen, "overview.html", entities=entities[:20], by_kind=by_kind,
                  total=memories["count"], events=events, depth=depth, routes=routes,
                  tokens=metrics.get("tokens", {}), activity=_activity(metrics))  # fmt: skip


def _activity(metrics: dict[str, Any]) -> dict[str, Any]:
    """Adds and searches in each of the last 24 hours, oldest first, and the largest count."""
    now = int(time.time() // 3600)
    hours = list(range(now - 23, now + 1))
    series = {
        kind: [int(metrics.get("hourly", {}).get(kind, {}).get(str(h), 0)) for h in hours]
        for kind in ("adds", "searches")
    }
    labels = [time.strftime("%H:00", time.gmtime(h * 3600)) for h in hours]
    peak = max([1, *series["adds"], *series["searches"]])
    return {"series": series, "labels": labels, "peak": peak}


def _route_table(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests and mean latency per route, busiest first, since the server started."""
    counts: dict[str, int] = {}
    errors: dict[str, int] = {}
    for method, route, status, n in metrics.get("requests", []):
        if route.startswith("/dashboard") or route == "unmatched":
            continue
        key = f"{method} {route}"
        counts[key] = counts.get(key, 0) + n
        if status >= 400:
            errors[key] = errors.get(key, 0) + n
    sums = metrics.get("latency_sum", {})
    table = []
    for key, n in counts.items():
        route = key.split(" ", 1)[1]
        total = sum(c for k, c in counts.items() if k.split(" ", 1)[1] == route)
        mean = 1000 * sums.get(route, 0.0) / total if total else 0.0
        table.append({"route": key, "requests": n, "errors": errors.get(key, 0), "mean_ms": mean})
    return sorted(table, key=lambda r: -int(r["requests"]))[:15]
