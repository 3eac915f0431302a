"""Dashboard sessions: a signed cookie, checked on every request, and a CSRF token.

The cookie holds the signed-in key's digest (the form it is stored in; never the key), a CSRF
token and an expiry, signed with HMAC-SHA256 under a secret kept in the control database (so any
server of a deployment accepts it). It is HttpOnly, SameSite=Strict and confined to /dashboard.
Every request looks the key up again: a revoked key ends its sessions at once. Every change (a
POST) must carry the session's CSRF token as the form field `csrf`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import Request, Response
from starlette.datastructures import FormData

from engram.errors import EngramError, PermissionDeniedError, UnauthenticatedError
from engram.server import control
from engram.server.control import Caller
from engram.server.state import State, state_of

COOKIE = "engram_session"
PATH = "/dashboard"
LIFETIME = 12 * 3600  # seconds


class SignedOutError(UnauthenticatedError):
    """No valid session: the dashboard sends the browser to its sign-in page."""

    code = "signed_out"


class CsrfError(PermissionDeniedError):
    """A change without the session's CSRF token."""

    code = "csrf_refused"


@dataclass(slots=True)
class Viewer:
    """A signed-in person: their key (as `Caller`, on the project they look at), its digest,
    the session's CSRF token, and (an organization key) the projects they may switch to."""

    who: Caller
    key_digest: str
    csrf: str
    project: str | None = None  # another project of the organization, chosen in the header
    projects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def can_write(self) -> bool:
        return self.who.can_write


async def _secret(state: State) -> bytes:
    if state.dashboard_secret is None:
        state.dashboard_secret = await state.db.run(control.dashboard_secret)
    return state.dashboard_secret.encode()


def _sign(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


async def start(
    request: Request, response: Response, key_digest: str, project: str | None = None,
    csrf: str | None = None,
) -> None:  # fmt: skip
    """Sign in (or switch project): set the session cookie for this key."""
    data: dict[str, Any] = {"k": key_digest, "c": csrf or secrets.token_urlsafe(24),
                            "e": int(time.time()) + LIFETIME, "p": project}  # fmt: skip
    payload = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    value = f"{payload}.{_sign(await _secret(state_of(request)), payload)}"
    response.set_cookie(
        COOKIE, value, max_age=LIFETIME, path=PATH, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


async def _payload(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(COOKIE, "")
    payload, _, signature = raw.partition(".")
    if not payload or not signature:
        return None
    expected = _sign(await _secret(state_of(request)), payload)
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    if not isinstance(data, dict) or int(data.get("e", 0)) < time.time():
        return None
    return data


async def viewer(request: Request) -> Viewer:
    """The signed-in viewer (a FastAPI dependency); `SignedOut` without a valid session."""
    data = await _payload(request)
    if data is None:
        raise SignedOutError("sign in with an API key")
    state = state_of(request)
    found = await state.db.run(control.find_key, str(data["k"]))
    if found is None:
        raise SignedOutError("this key was revoked: sign in again")
    await state.limiter.take(found.key_id)
    project = data.get("p")
    if isinstance(project, str) and project != found.project_id and found.org_role:
        try:
            await state.db.run(control.get_project, found.org_id, project)
        except EngramError:  # deleted since: back to the key's own project
            project = None
        else:
            found = replace(found, project_id=project, role=found.org_role)
    else:
        project = None
    return Viewer(found, str(data["k"]), str(data["c"]), project)


async def check_csrf(request: Request, seen: Viewer) -> FormData:
    """The posted form, after checking its CSRF token against the session's."""
    form = await request.form()
    token = form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(token, seen.csrf):
        raise CsrfError("this form is stale or did not come from the dashboard: reload it")
    return form
