"""The REST API, called in-process for the dashboard as the signed-in key: the same routes,
checks, permissions, webhooks and rate limit as any client's request."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request

from engram.dashboard.session import Viewer
from engram.server.state import internal_headers, state_of


class ApiError(Exception):
    """An error answer of the API: its status, code and message, shown on the page."""

    def __init__(self, status: int, code: str, detail: Any) -> None:
        message = detail if isinstance(detail, str) else _readable(detail)
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _readable(detail: Any) -> str:
    if isinstance(detail, list):  # a validation error: each field and what is wrong
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
            for d in detail
            if isinstance(d, dict)
        )
    return str(detail)


class Api:
    def __init__(self, request: Request, seen: Viewer) -> None:
        app = request.app
        if not hasattr(app.state, "dashboard_client"):
            app.state.dashboard_client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://engram.internal",
                timeout=httpx.Timeout(None),
            )  # fmt: skip
        self.client: httpx.AsyncClient = app.state.dashboard_client
        self.headers = internal_headers(state_of(request), seen.key_digest)
        # An organization key looking at another project names it, as clients do.
        self.params = {"project_id": seen.project} if seen.project else {}
        self._pong: dict[str, Any] | None = None

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs["params"] = {**self.params, **(kwargs.get("params") or {})}
        answer = await self.client.request(method, path, headers=self.headers, **kwargs)
        try:
            body = answer.json()
        except ValueError:
            body = {"detail": answer.text}
        if answer.status_code >= 400:
            detail = body.get("detail", body) if isinstance(body, dict) else body
            code = body.get("code", "error") if isinstance(body, dict) else "error"
            raise ApiError(answer.status_code, code, detail)
        return body

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params={k: v for k, v in params.items() if v})

    async def post(self, path: str, body: Any) -> Any:
        return await self.call("POST", path, json=body)

    async def put(self, path: str, body: Any) -> Any:
        return await self.call("PUT", path, json=body)

    async def delete(self, path: str, **params: Any) -> Any:
        return await self.call("DELETE", path, params=params or None)

    async def ping(self) -> dict[str, Any]:
        """`/v1/ping/`: the organization, project and role the pages act as (asked once)."""
        if self._pong is None:
            self._pong = await self.get("/v1/ping/")
        return self._pong

    async def project_path(self) -> str:
        """The API path of that project (its settings, members, keys)."""
        pong = await self.ping()
        org, project = quote(pong["org_id"], safe=""), quote(pong["project_id"], safe="")
        return f"/api/v1/orgs/organizations/{org}/projects/{project}"
