"""A plain-Python evaluator of filter trees: the reference semantics every backend compiler matches.

A record is a mapping with the memory's fields (`user_id`, `created_at`, ...), `categories` (a list)
and `metadata` (a JSON-like mapping). Timestamps in records are in the store's canonical form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engram.core.filters import And, Cond, Node, Not, Or

_MISSING = object()


def matches(node: Node | None, record: Mapping[str, Any]) -> bool:
    """True when the record satisfies the filter tree (`None` matches everything)."""
    if node is None:
        return True
    if isinstance(node, And):
        return all(matches(child, record) for child in node.children)
    if isinstance(node, Or):
        return any(matches(child, record) for child in node.children)
    if isinstance(node, Not):
        return not matches(node.child, record)
    return _cond(node, record)


def _cond(cond: Cond, record: Mapping[str, Any]) -> bool:
    kind = cond.field.kind
    if kind == "categories":
        return _categories(cond, list(record.get("categories") or []))
    if kind == "metadata":
        metadata = record.get("metadata") or {}
        return _json_value(cond, metadata.get(cond.field.name, _MISSING))
    return _column(cond, record.get(cond.field.name))


def _categories(cond: Cond, categories: list[str]) -> bool:
    op, value = cond.op, cond.value
    if op == "exists":
        return bool(categories)
    if op == "eq":
        return value in categories
    if op == "icontains":
        return any(value.casefold() in c.casefold() for c in categories)
    if op == "ne":
        return value not in categories
    if op == "in":
        return any(v in categories for v in value)
    return not any(v in categories for v in value)  # nin


def _column(cond: Cond, actual: str | None) -> bool:
    op, value = cond.op, cond.value
    if op == "exists":
        return actual is not None
    if op == "eq":
        return bool(actual == value)
    if op == "ne":
        return bool(actual != value)
    if op == "in":
        return actual in value
    if op == "nin":
        return actual not in value
    if actual is None:
        return False
    if op == "contains":
        return value in actual
    if op == "icontains":
        return value.casefold() in actual.casefold()
    if not isinstance(value, str):
        return False
    return _ordered(op, actual, value)


def _json_value(cond: Cond, actual: Any) -> bool:
    op, value = cond.op, cond.value
    if op == "exists":
        return actual is not _MISSING and actual is not None
    if op == "eq":
        return _json_eq(actual, value)
    if op == "ne":
        return not _json_eq(actual, value)
    if op == "in":
        return any(_json_eq(actual, v) for v in value)
    if op == "nin":
        return not any(_json_eq(actual, v) for v in value)
    if op in ("contains", "icontains"):
        return _json_contains(actual, value, fold=op == "icontains")
    if _is_number(value) and _is_number(actual):
        return _ordered(op, actual, value)
    if isinstance(value, str) and isinstance(actual, str):
        return _ordered(op, actual, value)
    return False


def _json_eq(actual: Any, value: Any) -> bool:
    if value is None:
        return actual is _MISSING or actual is None
    if isinstance(value, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(value, bool) and actual == value
    if _is_number(value):
        return _is_number(actual) and actual == value
    return isinstance(actual, str) and actual == value


def _json_contains(actual: Any, needle: str, *, fold: bool) -> bool:
    if isinstance(actual, str):
        return needle.casefold() in actual.casefold() if fold else needle in actual
    if isinstance(actual, list):
        if fold:
            return any(isinstance(a, str) and needle.casefold() in a.casefold() for a in actual)
        return any(isinstance(a, str) and a == needle for a in actual)
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ordered(op: str, actual: Any, value: Any) -> bool:
    if op == "gt":
        result = actual > value
    elif op == "gte":
        result = actual >= value
    elif op == "lt":
        result = actual < value
    else:
        result = actual <= value
    return bool(result)
