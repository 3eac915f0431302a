"""The filter examples of mem0's documentation (tests/data/mem0_filter_examples.json), shared by
the library test and the official-client test: the seed, and each example's expected labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "mem0_filter_examples.json"
SCOPE_KEYS = ("user_id", "agent_id", "run_id")
QUERY = "invoice budget hotels pizza flight dinner note"


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text())
    return data


def with_ids(filters: Any, ids: dict[str, str]) -> Any:
    """The example with "$m1"-style placeholders replaced by the seeded memories' ids."""
    if isinstance(filters, dict):
        return {k: with_ids(v, ids) for k, v in filters.items()}
    if isinstance(filters, list):
        return [with_ids(v, ids) for v in filters]
    if isinstance(filters, str) and filters.startswith("$"):
        return ids[filters[1:]]
    return filters


def names_a_scope(filters: Any) -> bool:
    """A user_id, agent_id or run_id condition anywhere in the tree (what the library needs)."""
    if isinstance(filters, dict):
        return any(k in SCOPE_KEYS or names_a_scope(v) for k, v in filters.items())
    if isinstance(filters, list):
        return any(names_a_scope(v) for v in filters)
    return False
