"""Compile a filter tree into a PostgreSQL `WHERE` expression with bound parameters (`%s`).

The semantics are those of the Python reference evaluator (`engram.core.filter_eval`), as for
SQLite: every expression is two-valued (`coalesce(..., false)`), so `NOT` is exact; metadata
comparison is JSON-typed (`jsonb` values compared with typed parameters); strings compare by code
point (`COLLATE "C"`). The memories table is aliased `m`; `metadata` and `categories` are `jsonb`.

Each placeholder is written by `Params.bind`, which appends its value at the same moment, so the
parameters are in the order of the placeholders however the SQL is nested (f-strings evaluate left
to right).

Case-insensitive matching uses `lower()`, where Python uses Unicode case folding: the two differ
only for the few characters whose folding is not a lowercase letter (German ß folds to "ss").
"""

from __future__ import annotations

from typing import Any

from engram.core.filters import And, Cond, Node, Not, Or

_ORDERED_SQL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class Params(list[Any]):
    """The query's parameters; `bind(value)` appends one and returns its placeholder."""

    def bind(self, value: Any, cast: str = "") -> str:
        self.append(value)
        return f"%s{cast}"


def compile_where(node: Node | None, params: Params | None = None) -> tuple[str, Params]:
    params = Params() if params is None else params
    if node is None:
        return "true", params
    return _node(node, params), params


def compile_live(
    node: Node | None, today: str, show_expired: bool, params: Params | None = None
) -> tuple[str, Params]:
    """`compile_where`, and unless `show_expired`, only memories not expired before `today`."""
    sql, params = compile_where(node, params)
    if show_expired:
        return sql, params
    live = f'(m.expiration_date IS NULL OR m.expiration_date COLLATE "C" >= {params.bind(today)})'
    return f"{sql} AND {live}", params


def _node(node: Node, p: Params) -> str:
    if isinstance(node, And):
        return "(" + " AND ".join(_node(c, p) for c in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(_node(c, p) for c in node.children) + ")"
    if isinstance(node, Not):
        return f"(NOT {_node(node.child, p)})"
    if node.field.kind == "categories":
        sql = _categories(node, p)
    elif node.field.kind == "metadata":
        sql = _metadata(node, p)
    else:
        indexable = _indexable(node, p)
        if indexable is not None:
            return indexable
        sql = _column(node, p)
    return f"coalesce({sql}, false)"


def _indexable(cond: Cond, p: Params) -> str | None:
    """Equality with a column (a scope id, `id`, ...) in a form its B-tree index answers, and
    two-valued without `coalesce` (`x = v AND x IS NOT NULL` is false, not null, for a null x);
    text equality needs no `COLLATE "C"`: it compares bytes under any deterministic collation.
    None for the other conditions."""
    name, op, value = f"m.{cond.field.name}", cond.op, cond.value
    if op == "eq" and value is None:
        return f"({name} IS NULL)"
    if op == "eq":
        return f"({name} = {p.bind(value, '::text')} AND {name} IS NOT NULL)"
    if op == "in" and None not in value:
        return f"({name} = ANY({p.bind(list(value), '::text[]')}) AND {name} IS NOT NULL)"
    return None


def _column(cond: Cond, p: Params) -> str:
    name, op, value = f"m.{cond.field.name}", cond.op, cond.value
    col = f'{name} COLLATE "C"'
    if op == "exists":
        return f"{name} IS NOT NULL"
    if op == "eq":
        return f"{col} IS NOT DISTINCT FROM {p.bind(value, '::text')}"
    if op == "ne":
        return f"{col} IS DISTINCT FROM {p.bind(value, '::text')}"
    if op in ("in", "nin"):
        present = [v for v in value if v is not None]
        sql = f"(coalesce({col} = ANY({p.bind(present, '::text[]')}), false)"
        sql += f" OR {name} IS NULL)" if None in value else ")"
        return sql if op == "in" else f"NOT {sql}"
    if op == "contains":
        return f"strpos({name}, {p.bind(value, '::text')}) > 0"
    if op == "icontains":
        return f"strpos(lower({name}), lower({p.bind(value, '::text')})) > 0"
    return f"{col} {_ORDERED_SQL[op]} {p.bind(value, '::text')}"


def _categories(cond: Cond, p: Params) -> str:
    op, value = cond.op, cond.value
    each = "SELECT 1 FROM jsonb_array_elements_text(m.categories) AS c(v) WHERE "
    if op == "exists":
        return "jsonb_array_length(m.categories) > 0"
    if op == "icontains":
        return f"EXISTS ({each}strpos(lower(c.v), lower({p.bind(value, '::text')})) > 0)"
    if op in ("in", "nin"):
        sql = f'EXISTS ({each}c.v COLLATE "C" = ANY({p.bind(list(value), "::text[]")}))'
        return sql if op == "in" else f"NOT {sql}"
    sql = f'EXISTS ({each}c.v COLLATE "C" = {p.bind(value, "::text")})'
    return f"NOT {sql}" if op == "ne" else sql


def _metadata(cond: Cond, p: Params) -> str:
    op, value, key = cond.op, cond.value, cond.field.name

    def item() -> str:
        return f"(m.metadata -> {p.bind(key, '::text')})"

    if op == "exists":
        return f"coalesce(jsonb_typeof({item()}), 'null') <> 'null'"
    if op in ("eq", "ne"):
        sql = _json_eq(item, value, p)
        return sql if op == "eq" else f"NOT {sql}"
    if op in ("in", "nin"):
        sql = "(" + " OR ".join(_json_eq(item, v, p) for v in value) + ")" if value else "false"
        return sql if op == "in" else f"NOT {sql}"
    if op in ("contains", "icontains"):
        return _json_contains(item, value, p, fold=op == "icontains")
    compare = _ORDERED_SQL[op]
    if isinstance(value, int | float):
        return (
            f"(jsonb_typeof({item()}) = 'number' "
            f"AND ({item()} #>> '{{}}')::numeric {compare} {p.bind(value, '::numeric')})"
        )
    return (
        f"(jsonb_typeof({item()}) = 'string' "
        f"AND ({item()} #>> '{{}}') COLLATE \"C\" {compare} {p.bind(value, '::text')})"
    )


def _json_eq(item: Any, value: Any, p: Params) -> str:
    """Typed equality of one metadata value (always true or false)."""
    if value is None:
        return f"coalesce(jsonb_typeof({item()}), 'null') = 'null'"
    if isinstance(value, bool):
        return f"coalesce({item()} = {p.bind('true' if value else 'false', '::jsonb')}, false)"
    if isinstance(value, int | float):
        return (
            f"coalesce(jsonb_typeof({item()}) = 'number' "
            f"AND {item()} = to_jsonb({p.bind(value, '::numeric')}), false)"
        )
    return f"coalesce({item()} = to_jsonb({p.bind(value, '::text')}), false)"


def _json_contains(item: Any, value: str, p: Params, *, fold: bool) -> str:
    """A string value contains the text; an array holds the string (with `fold`: holds one that
    contains it, in any case). Written in the order of its placeholders."""
    sql = f"CASE jsonb_typeof({item()}) WHEN 'string' THEN "
    if fold:
        sql += f"strpos(lower({item()} #>> '{{}}'), lower({p.bind(value, '::text')})) > 0"
    else:
        sql += f"strpos({item()} #>> '{{}}', {p.bind(value, '::text')}) > 0"
    sql += (
        f" WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements({item()}) AS a(j), "
        "LATERAL (SELECT a.j #>> '{}' AS v) AS e WHERE jsonb_typeof(a.j) = 'string' AND "
    )
    if fold:
        sql += f"strpos(lower(e.v), lower({p.bind(value, '::text')})) > 0"
    else:
        sql += f'e.v COLLATE "C" = {p.bind(value, "::text")}'
    return sql + ") ELSE false END"
