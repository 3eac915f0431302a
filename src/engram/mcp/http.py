"""MCP over streamable HTTP inside `engram serve`.

- `/mcp`: the hosted Mem0 MCP server's tools, on the project of the caller's API key
  (`Authorization: Token <key>`, `Bearer <key>` or `X-API-Key`). `?user_id=` names the user meant
  when a call names none (default `mem0-mcp`).
- `/mcp/{client_name}/http/{user_id}`: OpenMemory's tools, on that user's memories in the key's
  project, stored with the client's name.

Each tool call goes through the server's own REST API, in-process, with the caller's key: the
same validation, permissions (a READER key cannot write), rate limit, webhooks and read-after-
write on replicas as any client's call. The transport is stateless (every request stands alone),
so any of several servers can answer any request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from engram.errors import EngramError, http_status
from engram.mcp.backends import RestBackend
from engram.mcp.tools import DEFAULT_USER_ID, Session, mem0_tools, openmemory_tools
from engram.server.state import api_key_of, authenticate

SESSION_KEY = "engram_mcp_session"


async def _resolve(ctx: Context) -> Session:
    request = ctx.request_context.request
    session = getattr(request, "scope", {}).get("state", {}).get(SESSION_KEY)
    if not isinstance(session, Session):  # not reached through McpMount
        raise ToolError("unauthenticated: no API key was checked for this request")
    return session


class McpMount:
    """The ASGI app mounted at `/mcp`: checks the key, then hands the request to the tools'
    session manager, with the caller's `Session` in the request's state."""

    def __init__(self, api: ASGIApp, host: str) -> None:
        self.mem0 = mem0_tools(_resolve)
        self.openmemory = openmemory_tools(_resolve)
        self._apps: list[MCPServer] = [self.mem0, self.openmemory]
        for server in self._apps:  # builds each server's session manager
            server.streamable_http_app(stateless_http=True, json_response=True, host=host)
        # The REST API, called in-process: no socket, the same middleware and routes.
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://engram.internal",
            timeout=httpx.Timeout(None),
        )  # fmt: skip

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for server in self._apps:
                await stack.enter_async_context(server.session_manager.run())
            stack.push_async_callback(self.client.aclose)
            yield

    def routes(self) -> list[Route]:
        openmemory = _Endpoint(self, self.openmemory)
        return [Route("/mcp", _Endpoint(self, self.mem0)),
                Route("/mcp/{client_name}/http/{user_id}", openmemory)]  # fmt: skip


class _Endpoint:
    """One MCP path (an ASGI app, so Starlette hands it every method)."""

    def __init__(self, mount: McpMount, server: MCPServer) -> None:
        self.mount, self.server = mount, server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            who = await authenticate(request)
        except EngramError as exc:
            error = JSONResponse(exc.to_dict(), status_code=http_status(exc))
            await error(scope, receive, send)
            return
        backend = RestBackend(
            self.mount.client, headers={"Authorization": f"Token {api_key_of(request)}"}
        )
        params = scope.get("path_params", {})
        if self.server is self.mount.openmemory:
            session = Session(backend, user_id=params["user_id"],
                              client_name=params["client_name"])  # fmt: skip
        else:
            default_user = request.query_params.get("user_id") or DEFAULT_USER_ID
            session = Session(backend, default_user_id=default_user)
        scope.setdefault("state", {})[SESSION_KEY] = session
        scope["state"]["caller"] = who
        await self.server.session_manager.handle_request(scope, receive, send)
