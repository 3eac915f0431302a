"""The `engram` command line.

Memory commands (`add`, `search`, `list`, `get`, `history`, `delete`, `export`, `import`, `demo`)
work on the data directory's own store: the one `Memory()` uses, and the one the server's default
project uses, so the CLI and `engram serve` see the same memories. `--project` picks another
project of the server. `serve` runs the REST server, `mcp` the MCP tools over stdio; `keys` and
`projects` manage the server's API keys and projects from the machine itself. With
`--database-url` (or $ENGRAM_DATABASE_URL) all of these work on a server's PostgreSQL database
instead of the data directory.

Every failure is one line on standard error and a non-zero exit: 1 when what was asked for does
not exist, 2 for anything else (bad input, configuration, an unusable data directory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engram.cli import admin, database, mcp_stdio, memories, output
from engram.config import EMBEDDERS
from engram.errors import EngramError, NotFoundError

NOT_FOUND, FAILED = 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engram", description="Long-term memory for LLM apps.")
    parser.add_argument(
        "--data-dir", type=Path, help="data directory (default $ENGRAM_HOME or ~/.engram)"
    )
    parser.add_argument(
        "--config", type=Path,
        help="mem0-style JSON config (llm, embedder, ...; default $ENGRAM_CONFIG)",
    )  # fmt: skip
    parser.add_argument(
        "--embedder",
        choices=EMBEDDERS,
        help="embedding provider (default: the config's, else minilm)",
    )
    parser.add_argument(
        "--project", help="a server project (id or name) instead of the data directory's own store"
    )
    parser.add_argument(
        "--database-url",
        help="a server's PostgreSQL database (default $ENGRAM_DATABASE_URL) instead of the data "
        "directory: its projects, keys and memories",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    memories.add_commands(sub, _command)
    admin.add_commands(sub, _command)
    database.add_commands(sub, _command)
    mcp_stdio.add_commands(sub, _command)
    return parser


def _command(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand; its `--json` and `--database-url` may also come before the subcommand
    (`engram --json list`)."""
    cmd: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    cmd.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    cmd.add_argument("--database-url", default=argparse.SUPPRESS,
                     help="a server's PostgreSQL database (as before the command)")  # fmt: skip
    return cmd


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in admin.COMMANDS:
            result = admin.run(args)
        elif args.command in database.COMMANDS:
            result = database.run(args)
        elif args.command in mcp_stdio.COMMANDS:
            result = mcp_stdio.run(args)
        else:
            result = asyncio.run(memories.run(args))
    except NotFoundError as exc:
        return _fail(str(exc), NOT_FOUND)
    except EngramError as exc:
        return _fail(str(exc), FAILED)
    except OSError as exc:
        return _fail(_os_error(exc), FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", FAILED)
    if result is None:
        return 0
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        output.show(args.command, result)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


if __name__ == "__main__":
    raise SystemExit(main())
