"""How the CLI shows results to a person (`--json` prints them as they are instead)."""

from __future__ import annotations

import json
import sys
from typing import Any


def show(command: str, result: Any) -> None:
    if command == "demo":
        _demo(result)
    elif command == "add":
        _add(result)
    elif command == "keys" and isinstance(result, dict) and "key" in result:
        print(f"{result['key']}\n(shown once: {result['role']} key {result['id']} of project "
              f"{result['project_id']}, for {result['user_email']})")  # fmt: skip
    elif isinstance(result, dict) and isinstance(result.get("results"), list):
        _rows(result["results"])
        if "total" in result:
            print(f"({len(result['results'])} of {result['total']})")
        _warnings(result)
    elif isinstance(result, list):
        _rows(result)
    else:
        print(json.dumps(result, indent=2, ensure_ascii=False))


def _add(result: dict[str, Any]) -> None:
    """Each event of the add, the text it replaced for an UPDATE, and why nothing was stored."""
    for row in result["results"]:
        line = f"{row['event']:<7} {row['id']}  {row['memory']}"
        if row.get("previous_memory") is not None:
            line += f"  (was: {row['previous_memory']})"
        print(line)
    if not result["results"] and not result.get("warnings"):
        print("nothing stored")
    _warnings(result)


def _warnings(result: dict[str, Any]) -> None:
    for warning in result.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)


def _rows(rows: list[Any]) -> None:
    for row in rows:
        if not isinstance(row, dict):
            print(row)
        elif "memory" in row:
            score = f"{row['score']:.3f}  " if "score" in row else ""
            print(f"{score}{row.get('id', '')}  {row['memory']}")
        elif "event" in row:  # a history row
            text = row.get("new_memory") or row.get("old_memory")
            print(f"{row['created_at']}  {row['event']:<7} {text}")
        else:
            print("  ".join(str(v) for v in row.values()))


def _demo(result: dict[str, Any]) -> None:
    print("Stored from the conversation:")
    for text in result["added"]:
        print(f"  + {text}")
    for question, hits in result["searches"].items():
        print(f"\n{question}")
        for text, score in hits:
            print(f"  {score:.3f}  {text}")
