"""Resolve a call's scope from mem0's two styles: top-level ids (1.x) and `filters` (2.x)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engram.core.filters import (
    SCOPE_FIELDS,
    And,
    Cond,
    Field,
    Node,
    Not,
    Or,
    check_size,
    combine,
    parse_filters,
)
from engram.core.ids import clean_scope_id
from engram.errors import ValidationError
from engram.limits import Limits

SCOPE_REQUIRED = "at least one of 'user_id', 'agent_id' or 'run_id' is required"
DELETE_SCOPE_REQUIRED = (
    "a delete must name whose memories it removes: a user_id, agent_id, run_id or app_id equal "
    "to (or 'in') given values, in every branch of an OR, not under NOT, not '*'"
)
_PINNING = (*SCOPE_FIELDS, "app_id")


def scope_ids(**ids: Any) -> dict[str, str]:
    """Validated, trimmed scope ids; `None` values are left out."""
    cleaned = {name: clean_scope_id(name, value) for name, value in ids.items()}
    return {name: value for name, value in cleaned.items() if value is not None}


def resolve_filters(
    filters: Mapping[str, Any] | None,
    *,
    require_scope: bool = True,
    limits: Limits | None = None,
    **ids: Any,
) -> Node | None:
    """One filter tree from top-level ids and `filters` (within the `limits`' size when given:
    `Memory` checks its own); a scope id somewhere in it is required unless told not to."""
    top = scope_ids(**ids)
    node = parse_filters(filters)
    if limits is not None:
        check_size(node, limits.filter_conditions, limits.filter_values)
    conds = [Cond(Field("text", name), "eq", value) for name, value in top.items()]
    merged = combine(*conds, node)
    if require_scope and not _has_scope(merged):
        raise ValidationError(SCOPE_REQUIRED)
    return merged


def resolve_delete(
    filters: Mapping[str, Any] | None, *, limits: Limits | None = None, **ids: Any
) -> Node:
    """The filter tree of a delete: it must pin whose memories go (`pins_scope`). A read may
    name a scope anywhere (`{"NOT": {"user_id": "a"}}` reads everyone but a); a delete that
    did so would remove everyone else's memories."""
    node = resolve_filters(filters, require_scope=False, limits=limits, **ids)
    if node is None or not pins_scope(node):
        raise ValidationError(DELETE_SCOPE_REQUIRED)
    return node


def pins_scope(node: Node) -> bool:
    """Every memory the tree matches has one of a few given user/agent/run/app ids: an `eq` or a
    non-empty `in` of concrete ids in an AND, or in every branch of an OR; never under NOT."""
    if isinstance(node, And):
        return any(pins_scope(child) for child in node.children)
    if isinstance(node, Or):
        return all(pins_scope(child) for child in node.children)
    if isinstance(node, Cond) and node.field.kind == "text" and node.field.name in _PINNING:
        if node.op == "eq":
            return isinstance(node.value, str)
        return node.op == "in" and bool(node.value) and None not in node.value
    return False


def _has_scope(node: Node | None) -> bool:
    """A condition on user_id, agent_id or run_id anywhere in the tree (mem0's documented
    filters put them inside AND / OR / NOT, and `"*"` counts)."""
    if isinstance(node, And | Or):
        return any(_has_scope(child) for child in node.children)
    if isinstance(node, Not):
        return _has_scope(node.child)
    return isinstance(node, Cond) and node.field.kind == "text" and node.field.name in SCOPE_FIELDS
