"""The memory commands of the CLI, on one store: the data directory's own, or a server project's."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engram.config import MemoryConfig, PostgresConfig, default_data_dir, read_config_file
from engram.core.scope import resolve_filters
from engram.errors import ConfigurationError, NotFoundError, ValidationError
from engram.memory import AsyncMemory
from engram.transfer import export_lines, import_lines

Command = Callable[[Any, str, str], argparse.ArgumentParser]

DEMO_USER = "demo-alex"
DEMO_CONVERSATION = [
    {"role": "user", "content": "Hi! I'm Alex. I just moved to Lisbon for a job at Nimbus "
     "Robotics."},
    {"role": "assistant", "content": "Welcome to Lisbon! How are you settling in?"},
    {"role": "user", "content": "I love the food here, especially grilled sardines. "
     "I'm allergic to peanuts though. My sister Maria visits next month."},
    {"role": "user", "content": "I prefer sci-fi movies over thrillers."},
]  # fmt: skip
DEMO_QUESTIONS = [
    "Which city does the user live in?",
    "What food should I avoid serving?",
    "Who is Maria?",
]


def add_commands(sub: Any, command: Command) -> None:
    def scoped(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = command(sub, name, help_text)
        cmd.add_argument("--user", dest="user_id")
        cmd.add_argument("--agent", dest="agent_id")
        cmd.add_argument("--run", dest="run_id")
        return cmd

    add = scoped("add", "store a message (as facts, or verbatim with --no-infer)")
    add.add_argument("text")
    add.add_argument("--role", default="user", choices=["user", "assistant"])
    add.add_argument("--no-infer", dest="infer", action="store_false")
    add.add_argument("--metadata", type=_json_object, help="JSON object")
    search = scoped("search", "search memories")
    search.add_argument("query")
    search.add_argument("--top-k", type=int)
    search.add_argument("--threshold", type=float)
    search.add_argument("--filters", type=_json_object, help="JSON filter")
    listing = scoped("list", "list memories in a scope")
    listing.add_argument("--limit", type=int)
    listing.add_argument("--filters", type=_json_object, help="JSON filter")
    for name, text in (("get", "show one memory"), ("history", "show a memory's versions")):
        command(sub, name, text).add_argument("memory_id")
    delete = scoped("delete", "delete one memory, or --all in a scope")
    delete.add_argument("memory_id", nargs="?")
    delete.add_argument("--all", action="store_true")
    export = scoped("export", "write memories and history as JSON Lines")
    export.add_argument("--output", "-o", type=Path, help="file (default: standard output)")
    importing = command(sub, "import", "read JSON Lines written by export")
    importing.add_argument("input", type=Path, help="file, or - for standard input")
    command(sub, "demo", "add a short conversation and search it")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


async def run(args: argparse.Namespace) -> Any:
    if args.command == "import" and str(args.input) != "-" and not args.input.is_file():
        raise ValidationError(f"no such file to import: {args.input}")
    embeds = args.command in ("add", "search", "import", "demo")  # the others never embed
    async with AsyncMemory(memory_config(args), warm=embeds) as memory:
        return await _COMMANDS[args.command](memory, args)


def memory_config(args: argparse.Namespace) -> MemoryConfig:
    """The store and providers of a memory command: `--config` (or $ENGRAM_CONFIG), then the
    data directory (or `--project`'s store in it) and `--embedder`."""
    config = provider_config(args)
    from_config = config.data_dir is not None or config.db_path is not None
    on_server_database = bool(getattr(args, "database_url", None)
                              or os.environ.get("ENGRAM_DATABASE_URL"))  # fmt: skip
    if (
        args.data_dir or (args.project and not on_server_database) or not from_config
    ):  # the config's own path comes next
        data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
        usable_data_dir(data_dir)
        if args.project and not on_server_database:
            from engram.cli.admin import project_store

            data_dir = project_store(data_dir, args.project)
        config.data_dir, config.db_path = data_dir, None
    usable_data_dir(config.resolved_data_dir())
    from engram.cli.admin import database_url, project_in_database

    url = database_url(args)
    if url is not None:  # a server's PostgreSQL database: the project's store there
        config.postgres = PostgresConfig(url, project=project_in_database(url, args.project))
    return config


def provider_config(args: argparse.Namespace) -> MemoryConfig:
    """`--config` (or $ENGRAM_CONFIG), then `--embedder`: the providers, with the config's store."""
    source = args.config or os.environ.get("ENGRAM_CONFIG")
    config = MemoryConfig.from_dict(read_config_file(source)) if source else MemoryConfig()
    if args.embedder:
        config.embedder_provider, config.embedder_config = args.embedder, {}
    return config


def usable_data_dir(path: Path) -> None:
    """A clear error for a data directory the store cannot use (before SQLite says it less
    clearly): a file in its place, or no right to write there (SQLite's journal lives beside
    the database, so even reading needs it)."""
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise ConfigurationError(f"the data directory {path} cannot be used: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"the data directory {existing} is not writable: Engram's SQLite store writes its "
            "journal there even to read (choose another with --data-dir or $ENGRAM_HOME)"
        )


def _scope(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k, None) for k in ("user_id", "agent_id", "run_id")}


async def _add(memory: AsyncMemory, args: argparse.Namespace) -> Any:
    message = {"role": args.role, "content": args.text}
    return await memory.add(message, infer=args.infer, metadata=args.metadata, **_scope(args))


async def _search(memory: AsyncMemory, args: argparse.Namespace) -> Any:
    return await memory.search(
        args.query, top_k=args.top_k, threshold=args.threshold, filters=args.filters,
        **_scope(args),
    )  # fmt: skip


async def _list(memory: AsyncMemory, args: argparse.Namespace) -> Any:
    return await memory.get_all(limit=args.limit, filters=args.filters, **_scope(args))


async def _get(memory: AsyncMemory, args: argparse.Namespace) -> Any:
    found = await memory.get(args.memory_id)
    if found is None:
        raise NotFoundError(f"no memory {args.memory_id}")
    return found


async def _history(memory: AsyncMemory, args: argparse.Namespace) -> Any:
    found = await memory.history(args.memory_id)
    if not found:  # every memory that ever existed has its ADD row
        raise NotFoundError(f"no memory {args.memory_id} (and none ever had that id)")
    return found


async def _delete(memory: AsyncMemory, args: argparse.Namespace) -> Any:
    if args.all == bool(args.memory_id):
        raise ValidationError("engram delete: give a memory id, or --all with --user/--agent/--run")
    if args.all:
        return await memory.delete_all(**_scope(args))
    return await memory.delete(args.memory_id)


async def _export(memory: AsyncMemory, args: argparse.Namespace) -> Any:
    where = resolve_filters(None, require_scope=False, **_scope(args))
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    count = 0
    try:
        async for line in export_lines(memory, where):
            out.write(line + "\n")
            count += 1
    finally:
        if args.output:
            out.close()
    return {"exported_lines": count} if args.output else None


async def _import(memory: AsyncMemory, args: argparse.Namespace) -> Any:
    handle = sys.stdin if str(args.input) == "-" else args.input.open(encoding="utf-8")
    with handle:
        return await import_lines(memory, handle)


async def _demo(memory: AsyncMemory, args: argparse.Namespace) -> dict[str, Any]:
    await memory.delete_all(user_id=DEMO_USER)
    added = await memory.add(DEMO_CONVERSATION, user_id=DEMO_USER)
    answers = {}
    for question in DEMO_QUESTIONS:
        found = await memory.search(question, user_id=DEMO_USER, top_k=3)
        answers[question] = [(hit["memory"], hit["score"]) for hit in found["results"]]
    return {"added": [r["memory"] for r in added["results"]], "searches": answers}


_COMMANDS = {
    "add": _add, "search": _search, "list": _list, "get": _get, "history": _history,
    "delete": _delete, "export": _export, "import": _import, "demo": _demo,
}  # fmt: skip
