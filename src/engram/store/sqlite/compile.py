"""Compile a filter tree into a SQLite `WHERE` expression with bound parameters.

Every expression is two-valued (wrapped in `coalesce(..., 0)`), so `NOT` behaves exactly like the
Python reference evaluator in `engram.core.filter_eval`.
"""

from __future__ import annotations

from typing import Any

from engram.core.filters import And, Cond, Node, Not, Or, scope_of

_ORDERED_SQL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def compile_where(node: Node | None) -> tuple[str, list[Any]]:
    if node is None:
        return "1", []
    params: list[Any] = []
    return _node(node, params), params


def _node(node: Node, params: list[Any]) -> str:
    if isinstance(node, And):
        return "(" + " AND ".join(_node(c, params) for c in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(_node(c, params) for c in node.children) + ")"
    if isinstance(node, Not):
        return f"(NOT {_node(node.child, params)})"
    if node.field.kind == "categories":
        sql = _categories(node, params)
    elif node.field.kind == "metadata":
        sql = _metadata(node, params)
    else:
        sql = _column(node, params)
    return f"coalesce({sql}, 0)"


def _placeholders(values: tuple[Any, ...], params: list[Any]) -> str:
    params.extend(values)
    return ", ".join("?" for _ in values)


def _column(cond: Cond, params: list[Any]) -> str:
    col, op, value = f"m.{cond.field.name}", cond.op, cond.value
    if op == "exists":
        return f"{col} IS NOT NULL"
    if op == "eq":
        params.append(value)
        return f"{col} IS ?"
    if op == "ne":
        params.append(value)
        return f"{col} IS NOT ?"
    if op in ("in", "nin"):
        present = tuple(v for v in value if v is not None)
        sql = f"(coalesce({col} IN ({_placeholders(present, params)}), 0)"
        sql += f" OR {col} IS NULL)" if None in value else ")"
        return sql if op == "in" else f"NOT {sql}"
    params.append(value)
    if op == "contains":
        return f"instr({col}, ?) > 0"
    if op == "icontains":
        return f"engram_icontains({col}, ?)"
    return f"{col} {_ORDERED_SQL[op]} ?"


def _categories(cond: Cond, params: list[Any]) -> str:
    op, value = cond.op, cond.value
    each = "SELECT 1 FROM json_each(m.categories) AS c WHERE "
    if op == "exists":
        return "json_array_length(m.categories) > 0"
    if op == "icontains":
        params.append(value)
        return f"EXISTS ({each}engram_icontains(c.value, ?))"
    if op in ("in", "nin"):
        sql = f"EXISTS ({each}c.value IN ({_placeholders(value, params)}))"
        return sql if op == "in" else f"NOT {sql}"
    params.append(value)
    sql = f"EXISTS ({each}c.value = ?)"
    return f"NOT {sql}" if op == "ne" else sql


def _metadata(cond: Cond, params: list[Any]) -> str:
    path = '$."' + cond.field.name + '"'
    op, value = cond.op, cond.value
    if op == "exists":
        params.append(path)
        return "coalesce(json_type(m.metadata, ?), 'null') != 'null'"
    if op in ("eq", "ne"):
        sql = _json_eq(path, value, params)
        return sql if op == "eq" else f"NOT {sql}"
    if op in ("in", "nin"):
        sql = "(" + " OR ".join(_json_eq(path, v, params) for v in value) + ")" if value else "0"
        return sql if op == "in" else f"NOT {sql}"
    if op in ("contains", "icontains"):
        return _json_contains(path, value, params, fold=op == "icontains")
    kinds = "'integer', 'real'" if isinstance(value, int | float) else "'text'"
    params.extend([path, path, value])
    compare = _ORDERED_SQL[op]
    return f"(json_type(m.metadata, ?) IN ({kinds}) AND json_extract(m.metadata, ?) {compare} ?)"


def _json_eq(path: str, value: Any, params: list[Any]) -> str:
    """Typed equality of one metadata value (always 0 or 1)."""
    if value is None:
        params.append(path)
        return "coalesce(json_type(m.metadata, ?), 'null') = 'null'"
    if isinstance(value, bool):
        params.append(path)
        return f"coalesce(json_type(m.metadata, ?) = '{'true' if value else 'false'}', 0)"
    kinds = "'integer', 'real'" if isinstance(value, int | float) else "'text'"
    params.extend([path, path, value])
    return f"coalesce(json_type(m.metadata, ?) IN ({kinds}) AND json_extract(m.metadata, ?) = ?, 0)"


def _json_contains(path: str, value: str, params: list[Any], *, fold: bool) -> str:
    test = "engram_icontains({}, ?)" if fold else "{} = ?"
    text_test = (
        "engram_icontains(json_extract(m.metadata, ?), ?)"
        if fold
        else ("instr(json_extract(m.metadata, ?), ?) > 0")
    )
    params.extend([path, path, value, path, value])
    return (
        "CASE json_type(m.metadata, ?) "
        f"WHEN 'text' THEN {text_test} "
        "WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(m.metadata, ?) AS e "
        f"WHERE e.type = 'text' AND {test.format('e.value')}) "
        "ELSE 0 END"
    )


def compile_live(node: Node | None, today: str, show_expired: bool) -> tuple[str, list[Any]]:
    """`compile_where`, and unless `show_expired`, only memories not expired before `today`."""
    sql, params = compile_where(node)
    if show_expired:
        return sql, params
    return f"{sql} AND (m.expiration_date IS NULL OR m.expiration_date >= ?)", [*params, today]


def is_pure_scope(node: Node | None) -> bool:
    """True when the filter is only equality on scope ids (the vector index applies it itself)."""
    if node is None:
        return True
    conds = node.children if isinstance(node, And) else (node,)
    return all(isinstance(c, Cond) for c in conds) and len(conds) == len(scope_of(node))
