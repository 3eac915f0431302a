"""`engram mcp`: the MCP tools over stdio, for desktop assistants and IDEs (see docs/mcp.md).

On the data directory's own store (the one `Memory()` and `engram serve`'s default project use;
`--project`, `--config` and `--database-url` as for the other memory commands), or with `--url`
on a running server's REST API with `--api-key`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from engram.cli.memories import Command, memory_config
from engram.errors import ValidationError

COMMANDS = frozenset({"mcp"})


def add_commands(sub: Any, command: Command) -> None:
    mcp = command(sub, "mcp", "serve the MCP tools over stdio (Mem0's, or OpenMemory's)")
    mcp.add_argument("--tools", choices=("mem0", "openmemory"), default="mem0",
                     help="Mem0's MCP tools (add_memory, search_memories, ...; the default) or "
                          "OpenMemory's (add_memories, search_memory, ...)")  # fmt: skip
    mcp.add_argument("--user-id", help="mem0 tools: the user meant when a call names none "
                     "(default $MEM0_DEFAULT_USER_ID or mem0-mcp); openmemory tools: the user "
                     "(required)")  # fmt: skip
    mcp.add_argument(
        "--client-name",
        default="engram-mcp",
        help="openmemory tools: the client's name, kept in each memory's metadata",
    )
    mcp.add_argument("--url", help="a running engram serve (or Mem0 Platform) to work on, "
                     "instead of the data directory's store")  # fmt: skip
    mcp.add_argument("--api-key", help="the API key for --url (default $ENGRAM_API_KEY or "
                     "$MEM0_API_KEY)")  # fmt: skip


def run(args: argparse.Namespace) -> Any:
    from engram.mcp.tools import DEFAULT_USER_ID, check_id

    if args.tools == "openmemory" and not args.user_id:
        raise ValidationError("engram mcp --tools openmemory needs --user-id")
    user = check_id(args.user_id, "--user-id") if args.user_id else None
    default_user = user or os.environ.get("MEM0_DEFAULT_USER_ID") or DEFAULT_USER_ID
    check_id(args.client_name, "--client-name")
    if args.url:
        local = {n for n in ("project", "config", "embedder", "database_url", "data_dir")
                 if getattr(args, n, None)}  # fmt: skip
        if local:
            flags = ", ".join(f"--{n.replace('_', '-')}" for n in sorted(local))
            raise ValidationError(f"--url works on the server's store: drop {flags}")
    asyncio.run(_serve(args, user, default_user))


async def _serve(args: argparse.Namespace, user: str | None, default_user: str) -> None:
    from engram.mcp.tools import Session

    if args.url:
        import httpx

        from engram.mcp.backends import RestBackend

        key = args.api_key or os.environ.get("ENGRAM_API_KEY") or os.environ.get("MEM0_API_KEY")
        if not key:
            raise ValidationError("--url needs --api-key (or $ENGRAM_API_KEY)")
        headers = {"Authorization": f"Token {key}"}
        async with httpx.AsyncClient(base_url=args.url.rstrip("/"), timeout=60) as client:
            await _run_stdio(args, Session(RestBackend(client, headers), default_user, user,
                                           args.client_name))  # fmt: skip
        return
    from engram.mcp.backends import LocalBackend
    from engram.memory import AsyncMemory

    if args.api_key:
        raise ValidationError("--api-key goes with --url")
    async with AsyncMemory(memory_config(args), warm=True) as memory:
        session = Session(LocalBackend(memory), default_user, user, args.client_name)
        await _run_stdio(args, session)


async def _run_stdio(args: argparse.Namespace, session: Any) -> None:
    from engram.mcp.tools import mem0_tools, openmemory_tools

    async def resolve(_: Any) -> Any:
        return session

    build = openmemory_tools if args.tools == "openmemory" else mem0_tools
    await build(resolve).run_stdio_async()
