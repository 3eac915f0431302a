"""The MCP tools: the hosted Mem0 MCP server's (`mem0_tools`) and OpenMemory's
(`openmemory_tools`), with their names and arguments, over a `Backend`.

A tool finds what it acts on through `resolve(ctx)`: a fixed `Session` over stdio, the caller's
project (and, for OpenMemory, the user and client named in the path) over HTTP. A failure is the
tool's error result, `"<code>: <message>"`, never a crash of the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from engram import __version__
from engram.errors import EngramError, ValidationError
from engram.mcp.backends import SCOPE, Backend, BackendError

DEFAULT_USER_ID = "mem0-mcp"  # the hosted server's, so memories written through either match


@dataclass
class Session:
    """What a call acts on: the backend, the user when a call names none, and (OpenMemory) the
    user and client of the connection."""

    backend: Backend
    default_user_id: str = DEFAULT_USER_ID
    user_id: str | None = None
    client_name: str | None = None


Resolve = Callable[[Context], Awaitable[Session]]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant", "system"]
    content: str
    name: str | None = None


async def _run(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except BackendError as exc:
        raise ToolError(str(exc)) from None
    except EngramError as exc:
        raise ToolError(f"{exc.code}: {exc}") from None


READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTROY = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

UserId = Annotated[str | None, Field(description="The user the memories are about.")]
AgentId = Annotated[str | None, Field(description="The agent (assistant) the memories belong to.")]
AppId = Annotated[str | None, Field(description="The application the memories belong to.")]
RunId = Annotated[str | None, Field(description="One conversation or session.")]
MemoryId = Annotated[str, Field(description="The memory's id, as returned by a search or list.")]
Filters = Annotated[
    dict[str, Any] | None,
    Field(description=(
        'A filter over user_id, agent_id, app_id, run_id, created_at, updated_at, categories '
        'and metadata keys; combine with AND / OR / NOT; operators in, nin, eq, ne, gt, gte, '
        'lt, lte, contains, icontains, and "*" for any value. Examples: {"user_id": "alice"}; '
        '{"AND": [{"user_id": "alice"}, {"created_at": {"gte": "2025-01-01"}}]}; '
        '{"OR": [{"user_id": "alice"}, {"agent_id": "travel-bot"}]}. With no user, agent, app '
        "or run named, the default user's memories are meant."
    )),
]  # fmt: skip
Limit = Annotated[int | None, Field(ge=1, description="How many results at most (default 10).")]
Threshold = Annotated[float | None, Field(ge=0, le=1, description="Only results scoring this.")]
Page = Annotated[int, Field(ge=1, description="Page number, from 1.")]
EnableGraph = Annotated[
    bool | None,
    Field(description="Also use graph memory (entities and their relations) for this call."),
]


def _ids(**given: str | None) -> dict[str, str]:
    return {k: v for k, v in given.items() if v is not None}


def _names_scope(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k in SCOPE or _names_scope(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_names_scope(v) for v in value)
    return False


def _scoped(filters: dict[str, Any] | None, default_user_id: str) -> dict[str, Any]:
    """The filters, ANDed with the default user when they name no user, agent, app or run."""
    if filters is not None and not isinstance(filters, dict):
        raise ToolError("validation_error: filters must be an object")
    if filters and _names_scope(filters):
        return filters
    default = {"user_id": {"in": [default_user_id]}}
    return {"AND": [default, filters]} if filters else default


def _options(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


def mem0_tools(resolve: Resolve, *, name: str = "engram") -> MCPServer:
    """The hosted Mem0 MCP server's tools."""
    server: MCPServer = MCPServer(
        name, version=__version__, log_level="WARNING",
        instructions=(
            "Long-term memory. Search it (search_memories) before answering anything that may "
            "depend on what you were told before; store durable facts, preferences and decisions "
            "(add_memory) as they come up. Memories belong to a user, agent, app or run; with "
            "none named, the default user's are used."
        ),
    )  # fmt: skip

    @server.tool(annotations=WRITE)
    async def add_memory(
        ctx: Context,
        text: Annotated[
            str | None,
            Field(description="What to remember, as a plain sentence (or give messages)."),
        ] = None,
        messages: Annotated[
            list[Message] | None,
            Field(description="A conversation to remember from, as role/content turns."),
        ] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        app_id: AppId = None,
        run_id: RunId = None,
        metadata: Annotated[
            dict[str, Any] | None,
            Field(description="Any JSON object to store with the memory and filter on later."),
        ] = None,
        infer: Annotated[
            bool,
            Field(
                description="true: extract the facts worth keeping and reconcile them with what is "
                "known; false: store the text as given."
            ),
        ] = True,
        async_mode: Annotated[
            bool,
            Field(
                description="On a server: queue the add and return its event_id at once (check it "
                "with get_event_status); false waits for the stored memories. The embedded store "
                "always stores at once."
            ),
        ] = True,
        enable_graph: EnableGraph = None,
    ) -> dict[str, Any]:
        """Store a fact, preference, decision or conversation snippet worth remembering later.
        Requires text or messages; stored for the given user/agent/app/run, or the default
        user when none is named."""
        session = await resolve(ctx)
        if messages:
            turns = [m.model_dump(exclude_none=True) for m in messages]
        elif text and text.strip():
            turns = [{"role": "user", "content": text}]
        else:
            raise ToolError("validation_error: give text or messages to remember")
        ids = _ids(user_id=user_id, agent_id=agent_id, app_id=app_id, run_id=run_id)
        if not ids.keys() & {"user_id", "agent_id", "run_id"}:
            ids["user_id"] = session.default_user_id
        options = _options(metadata=metadata, infer=infer, enable_graph=enable_graph)
        found: dict[str, Any] = await _run(
            session.backend.add(turns, ids, options, wait=not async_mode)
        )
        return found

    _read_tools(server, resolve)
    _change_tools(server, resolve)
    _entity_tools(server, resolve)
    return server


def _read_tools(server: MCPServer, resolve: Resolve) -> None:
    @server.tool(annotations=READ)
    async def search_memories(
        ctx: Context,
        query: Annotated[str, Field(description="What to find, in natural language.")],
        filters: Filters = None,
        limit: Limit = None,
        threshold: Threshold = None,
        enable_graph: EnableGraph = None,
    ) -> dict[str, Any]:
        """Search stored memories by meaning and keywords, best match first. Use it before
        answering a question that may depend on what the user said before."""
        session = await resolve(ctx)
        options = _options(top_k=limit or 10, threshold=threshold, enable_graph=enable_graph)
        where = _scoped(filters, session.default_user_id)
        found: dict[str, Any] = await _run(session.backend.search(query, where, options))
        return found

    @server.tool(annotations=READ)
    async def get_memories(
        ctx: Context,
        filters: Filters = None,
        page: Page = 1,
        page_size: Annotated[int, Field(ge=1, le=1000, description="Memories per page.")] = 50,
        enable_graph: EnableGraph = None,
    ) -> dict[str, Any]:
        """List memories that match filters, newest first, a page at a time (`count` is the
        total; `next` is the next page's number, or null on the last page)."""
        session = await resolve(ctx)
        where = _scoped(filters, session.default_user_id)
        options = _options(enable_graph=enable_graph)
        found: dict[str, Any] = await _run(
            session.backend.list_memories(where, page, page_size, options)
        )
        return found

    @server.tool(annotations=READ)
    async def get_memory(ctx: Context, memory_id: MemoryId) -> dict[str, Any]:
        """One memory by its id: its text, scope, metadata, categories and dates."""
        session = await resolve(ctx)
        found: dict[str, Any] = await _run(session.backend.get(memory_id))
        return found


def _change_tools(server: MCPServer, resolve: Resolve) -> None:
    @server.tool(annotations=WRITE)
    async def update_memory(
        ctx: Context, memory_id: MemoryId,
        text: Annotated[str, Field(description="The memory's new text.")],
    ) -> dict[str, Any]:  # fmt: skip
        """Replace a memory's text (the old text stays in its history). Returns the memory."""
        session = await resolve(ctx)
        found: dict[str, Any] = await _run(session.backend.update(memory_id, text))
        return found

    @server.tool(annotations=DESTROY)
    async def delete_memory(ctx: Context, memory_id: MemoryId) -> dict[str, Any]:
        """Delete one memory by its id, once the user has confirmed which one."""
        session = await resolve(ctx)
        found: dict[str, Any] = await _run(session.backend.delete(memory_id))
        return found

    @server.tool(annotations=DESTROY)
    async def delete_all_memories(
        ctx: Context, user_id: UserId = None, agent_id: AgentId = None, app_id: AppId = None,
        run_id: RunId = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Delete every memory of a user, agent, app or run (all of those named must match);
        the default user's when none is named. Ask the user to confirm first."""
        session = await resolve(ctx)
        ids = _ids(user_id=user_id, agent_id=agent_id, app_id=app_id, run_id=run_id)
        found: dict[str, Any] = await _run(
            session.backend.delete_all(ids or {"user_id": session.default_user_id})
        )
        return found


def _entity_tools(server: MCPServer, resolve: Resolve) -> None:
    @server.tool(annotations=DESTROY)
    async def delete_entities(
        ctx: Context, user_id: UserId = None, agent_id: AgentId = None, app_id: AppId = None,
        run_id: RunId = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Remove users, agents, apps or runs entirely, with all of their memories (each one
        named is removed). Ask the user to confirm first."""
        session = await resolve(ctx)
        ids = _ids(user_id=user_id, agent_id=agent_id, app_id=app_id, run_id=run_id)
        if not ids:
            raise ToolError("validation_error: name a user_id, agent_id, app_id or run_id")
        deleted = {}
        for key, value in ids.items():
            answer = await _run(session.backend.delete_entity(key.removesuffix("_id"), value))
            deleted[key] = {"id": value, "deleted_count": answer.get("deleted_count", 0)}
        return {"message": "Entities deleted successfully.", "deleted": deleted}

    @server.tool(annotations=READ)
    async def list_entities(ctx: Context) -> dict[str, Any]:
        """Which users, agents, apps and runs hold memories, with their counts."""
        session = await resolve(ctx)
        found: dict[str, Any] = await _run(session.backend.entities())
        return found

    @server.tool(annotations=READ)
    async def list_events(
        ctx: Context,
        page: Page = 1,
        page_size: Annotated[int, Field(ge=1, le=1000, description="Events per page.")] = 50,
    ) -> dict[str, Any]:
        """Recent add operations, newest first, with their status (PENDING, RUNNING,
        SUCCEEDED, FAILED), input and results."""
        session = await resolve(ctx)
        found: dict[str, Any] = await _run(session.backend.events(page, page_size))
        return found

    @server.tool(annotations=READ)
    async def get_event_status(
        ctx: Context,
        event_id: Annotated[str, Field(description="The event_id an add returned.")],
    ) -> dict[str, Any]:
        """The status of a queued add (PENDING, RUNNING, SUCCEEDED, FAILED) and, once done,
        the memories it stored or its error."""
        session = await resolve(ctx)
        found: dict[str, Any] = await _run(session.backend.event(event_id))
        return found


def openmemory_tools(resolve: Resolve, *, name: str = "engram-openmemory") -> MCPServer:
    """OpenMemory's tools: one user's memories, named by the connection (its path over HTTP),
    and stored with the client's name in their metadata (`mcp_client`)."""
    server: MCPServer = MCPServer(name, version=__version__, log_level="WARNING")

    async def user_session(ctx: Context) -> tuple[Session, str]:
        session = await resolve(ctx)
        if not session.user_id:
            raise ToolError("validation_error: this connection names no user")
        return session, session.user_id

    @server.tool(annotations=WRITE)
    async def add_memories(
        ctx: Context,
        text: Annotated[str, Field(description="What to remember, in the user's words.")],
        infer: Annotated[bool, Field(description="true: keep the facts worth keeping and "
                                     "reconcile them; false: store the text as given.")] = True,
    ) -> dict[str, Any]:  # fmt: skip
        """Add a new memory. Call it every time the user tells anything about themselves,
        their preferences, plans or work that could help in a later conversation, and when
        they ask you to remember something."""
        session, user = await user_session(ctx)
        if not text.strip():
            raise ToolError("validation_error: text is empty")
        metadata = {"mcp_client": session.client_name} if session.client_name else None
        options = _options(metadata=metadata, infer=infer)
        found: dict[str, Any] = await _run(session.backend.add(
            [{"role": "user", "content": text}], {"user_id": user}, options, wait=True
        ))  # fmt: skip
        return found

    @server.tool(annotations=READ)
    async def search_memory(
        ctx: Context,
        query: Annotated[str, Field(description="What to find, in natural language.")],
        limit: Annotated[int, Field(ge=1, description="How many results at most.")] = 10,
    ) -> dict[str, Any]:
        """Search the user's memories, best match first. Call it every time the user asks
        anything, to answer with what they told you before."""
        session, user = await user_session(ctx)
        found: dict[str, Any] = await _run(session.backend.search(
            query, {"user_id": {"in": [user]}}, {"top_k": limit}
        ))  # fmt: skip
        return found

    @server.tool(annotations=READ)
    async def list_memories(
        ctx: Context,
        page: Page = 1,
        page_size: Annotated[int, Field(ge=1, le=1000, description="Memories per page.")] = 100,
    ) -> dict[str, Any]:
        """List the user's memories, newest first, a page at a time (`count` is the total)."""
        session, user = await user_session(ctx)
        found: dict[str, Any] = await _run(
            session.backend.list_memories({"user_id": {"in": [user]}}, page, page_size, {})
        )
        return found

    @server.tool(annotations=DESTROY)
    async def delete_memories(
        ctx: Context,
        memory_ids: Annotated[list[str], Field(min_length=1, description="The ids to delete.")],
    ) -> dict[str, Any]:
        """Delete the user's memories with these ids. Nothing is deleted unless every id is
        one of the user's memories."""
        session, user = await user_session(ctx)
        for memory_id in memory_ids:  # all checked before any is deleted
            found = await _run(session.backend.get(memory_id))
            if found.get("user_id") != user:
                raise ToolError(f"not_found: memory {memory_id} is not one of {user}'s")
        for memory_id in dict.fromkeys(memory_ids):
            await _run(session.backend.delete(memory_id))
        return {"message": f"Deleted {len(set(memory_ids))} memories.",
                "deleted": list(dict.fromkeys(memory_ids))}  # fmt: skip

    @server.tool(annotations=DESTROY)
    async def delete_all_memories(ctx: Context) -> dict[str, Any]:
        """Delete all of the user's memories. Ask the user to confirm first."""
        session, user = await user_session(ctx)
        found: dict[str, Any] = await _run(session.backend.delete_all({"user_id": user}))
        return found

    return server


def check_id(value: str, what: str) -> str:
    """An id named by a connection (path, flag): non-empty, no surrounding spaces."""
    if not value or value != value.strip():
        raise ValidationError(f"{what} must be a non-empty id without surrounding spaces")
    return value
