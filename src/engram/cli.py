"""The `engram` command line: add, search, list, get, history, delete, export, import, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engram.config import EMBEDDERS, MemoryConfig
from engram.core.scope import resolve_filters
from engram.errors import EngramError
from engram.memory import AsyncMemory
from engram.transfer import export_lines, import_lines

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engram", description="Long-term memory for LLM apps.")
    parser.add_argument(
        "--data-dir", type=Path, help="data directory (default $ENGRAM_HOME or ~/.engram)"
    )
    parser.add_argument(
        "--embedder", choices=EMBEDDERS, default="minilm", help="embedding provider"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True)

    def scoped(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--user", dest="user_id")
        cmd.add_argument("--agent", dest="agent_id")
        cmd.add_argument("--run", dest="run_id")
        cmd.add_argument("--json", action="store_true", help="print JSON")
        return cmd

    add = scoped("add", "store a message (as facts, or verbatim with --no-infer)")
    add.add_argument("text")
    add.add_argument("--role", default="user", choices=["user", "assistant"])
    add.add_argument("--no-infer", dest="infer", action="store_false")
    add.add_argument("--metadata", type=json.loads, help="JSON object")
    search = scoped("search", "search memories")
    search.add_argument("query")
    search.add_argument("--top-k", type=int)
    search.add_argument("--threshold", type=float)
    search.add_argument("--filters", type=json.loads, help="JSON filter")
    listing = scoped("list", "list memories in a scope")
    listing.add_argument("--limit", type=int)
    listing.add_argument("--filters", type=json.loads, help="JSON filter")
    for name, text in (("get", "show one memory"), ("history", "show a memory's versions")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("memory_id")
        cmd.add_argument("--json", action="store_true", help="print JSON")
    delete = scoped("delete", "delete one memory, or --all in a scope")
    delete.add_argument("memory_id", nargs="?")
    delete.add_argument("--all", action="store_true")
    export = scoped("export", "write memories and history as JSON Lines")
    export.add_argument("--output", "-o", type=Path, help="file (default: standard output)")
    importing = sub.add_parser("import", help="read JSON Lines written by export")
    importing.add_argument("input", type=Path, help="file, or - for standard input")
    importing.add_argument("--json", action="store_true", help="print JSON")
    demo = sub.add_parser("demo", help="add a short conversation and search it")
    demo.add_argument("--json", action="store_true", help="print JSON")
    serve = sub.add_parser("serve", help="run the REST server (Mem0 Platform API)")
    serve.add_argument("--host", help="interface (default $ENGRAM_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default $ENGRAM_PORT or 8000)")
    serve.add_argument("--config", type=Path, help="mem0-style JSON config (llm, embedder)")
    serve.add_argument("--cors-origins", help="comma-separated origins allowed by CORS")
    serve.add_argument("--rate-limit", type=int, help="requests per minute per API key")
    serve.add_argument("--workers", type=int,
                       help="server processes (default $ENGRAM_WORKERS or 1; one per core "
                            "serves the most searches)")  # fmt: skip
    serve.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    return parser


def _serve(args: argparse.Namespace) -> int:
    """Start the server; settings from ENGRAM_* variables, then the flags."""
    try:
        import uvicorn

        from engram.server.app import create_app
        from engram.server.settings import Settings
    except ImportError as exc:
        print(f"error: the server needs its extra: pip install 'engram[server]' ({exc})",
              file=sys.stderr)  # fmt: skip
        return 2
    origins = None if args.cors_origins is None else tuple(args.cors_origins.split(","))
    settings = Settings.from_env(
        host=args.host, port=args.port, data_dir=args.data_dir, config=args.config,
        cors_origins=origins, rate_limit=args.rate_limit, workers=args.workers,
    )  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"Engram server on http://{settings.host}:{settings.port} "
          f"(API docs: http://{settings.host}:{settings.port}/docs), data in {settings.data_dir}",
          flush=True)  # fmt: skip
    if settings.workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                    log_level="warning")  # fmt: skip
        return 0
    # Worker processes start fresh and build the app from the environment.
    shutil.rmtree(settings.data_dir / "metrics", ignore_errors=True)  # this run's counters only
    os.environ.update(settings.to_env())
    uvicorn.run("engram.server.app:create_app", factory=True, host=settings.host,
                port=settings.port, workers=settings.workers, log_level="warning")  # fmt: skip
    return 0


def _scope(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k, None) for k in ("user_id", "agent_id", "run_id")}


async def _run(args: argparse.Namespace) -> Any:
    config = MemoryConfig(data_dir=args.data_dir, embedder_provider=args.embedder)
    async with AsyncMemory(config) as memory:
        command = args.command
        if command == "add":
            message = {"role": args.role, "content": args.text}
            return await memory.add(
                message, infer=args.infer, metadata=args.metadata, **_scope(args)
            )
        if command == "search":
            return await memory.search(
                args.query, top_k=args.top_k, threshold=args.threshold, filters=args.filters,
                **_scope(args),
            )  # fmt: skip
        if command == "list":
            return await memory.get_all(limit=args.limit, filters=args.filters, **_scope(args))
        if command == "get":
            return await memory.get(args.memory_id)
        if command == "history":
            return await memory.history(args.memory_id)
        if command == "delete":
            return await _delete(memory, args)
        if command == "export":
            return await _export(memory, args)
        if command == "import":
            handle = sys.stdin if str(args.input) == "-" else args.input.open(encoding="utf-8")
            with handle:
                return await import_lines(memory, handle)
        return await _demo(memory)


async def _delete(memory: AsyncMemory, args: argparse.Namespace) -> Any:
    if args.all == bool(args.memory_id):
        raise SystemExit("engram delete: give a memory id, or --all with --user/--agent/--run")
    if args.all:
        return await memory.delete_all(**_scope(args))
    return await memory.delete(args.memory_id)


async def _export(memory: AsyncMemory, args: argparse.Namespace) -> Any:
    scope = _scope(args)
    where = resolve_filters(None, require_scope=False, **scope)
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


async def _demo(memory: AsyncMemory) -> dict[str, Any]:
    await memory.delete_all(user_id=DEMO_USER)
    added = await memory.add(DEMO_CONVERSATION, user_id=DEMO_USER)
    answers = {}
    for question in DEMO_QUESTIONS:
        found = await memory.search(question, user_id=DEMO_USER, top_k=3)
        answers[question] = [(hit["memory"], hit["score"]) for hit in found["results"]]
    return {"added": [r["memory"] for r in added["results"]], "searches": answers}


def _print(command: str, result: Any) -> None:
    if result is None:
        return
    if command == "demo":
        print("Stored from the conversation:")
        for text in result["added"]:
            print(f"  + {text}")
        for question, hits in result["searches"].items():
            print(f"\n{question}")
            for text, score in hits:
                print(f"  {score:.3f}  {text}")
        return
    rows = result.get("results") if isinstance(result, dict) else result
    if isinstance(rows, list):
        for row in rows:
            score = f"{row['score']:.3f}  " if "score" in row else ""
            label = (
                row.get("memory")
                or f"{row.get('event')}: {row.get('new_memory') or row.get('old_memory')}"
            )
            print(f"{score}{row.get('id', '')}  {label}")
        if isinstance(result, dict) and "total" in result:
            print(f"({len(rows)} of {result['total']})")
        return
    print(json.dumps(result, indent=2, ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        try:
            return _serve(args)
        except EngramError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        result = asyncio.run(_run(args))
    except EngramError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json and result is not None:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print(args.command, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
