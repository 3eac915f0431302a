"""The filter language: parsed once into a tree, then compiled per backend or evaluated in Python.

Grammar (mem0's, both library and Platform forms):

- `{"key": value}` equality; `{"key": "*"}` the key is present (not null);
- `{"key": {"eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin"|"contains"|"icontains": value}}`; several
  operators in one mapping all apply (`{"gte": 1, "lte": 5}`);
- `{"AND": [f, ...]}`, `{"OR": [f, ...]}`, `{"NOT": [f, ...]}` (none of them holds), nested freely;
  several keys in one mapping are ANDed;
- keys name a memory field (`user_id`, `agent_id`, `run_id`, `app_id`, `actor_id`, `role`, `id`,
  `hash`, `memory`, `memory_type`, `created_at`, `updated_at`, `expiration_date`), `categories`, or
  else a metadata key, also reachable as `{"metadata": {"key": ...}}`;
- the Platform's names are aliases that desugar into the above, so a backend compiles nothing new:
  `text` is `memory`; `timestamp` is `created_at` (the event time); `memory_ids: [...]` is
  `id in [...]`; `keywords` matches the memory's text (`contains` case-sensitive; `icontains`, or a
  bare string, case-insensitive);
- `categories` `contains` is a case-insensitive partial match of any category (the Platform's
  meaning); `eq`/`in` match whole categories;
- a bare date on a timestamp field (`{"created_at": "2024-01-15"}`) means that whole UTC day.

Comparison is JSON-typed: numbers compare with numbers, strings with strings, booleans only with
booleans; `ne` and `nin` are the exact negations of `eq` and `in` (a missing key is "not equal").
Timestamps accept ISO dates or datetimes and compare in UTC. Anything outside this grammar raises
`FilterError`; nothing is silently dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from engram.core.timeutil import next_day, normalize_date, normalize_timestamp
from engram.errors import FilterError, ValidationError

Scalar = str | int | float | bool | None
FieldKind = Literal["text", "timestamp", "date", "categories", "metadata"]

OPERATORS = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains", "exists"}
)
_ORDERED = frozenset({"gt", "gte", "lt", "lte"})
TEXT_FIELDS = frozenset(
    {"id", "hash", "memory", "user_id", "agent_id", "run_id", "app_id", "actor_id", "role"}
    | {"memory_type"}
)
SCOPE_FIELDS = ("user_id", "agent_id", "run_id")
_FIELD_KINDS: dict[str, FieldKind] = {
    **dict.fromkeys(TEXT_FIELDS, "text"),
    "created_at": "timestamp",
    "updated_at": "timestamp",
    "expiration_date": "date",
    "categories": "categories",
}
_LOGICAL = {"AND": "and", "$and": "and", "OR": "or", "$or": "or", "NOT": "not", "$not": "not"}
_ALIASES = {"text": "memory", "timestamp": "created_at"}  # the Platform's names for our fields
MAX_DEPTH = 32  # nested AND / OR / NOT levels (a deeper tree is no one's filter)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class Field:
    kind: FieldKind
    name: str


@dataclass(frozen=True, slots=True)
class Cond:
    field: Field
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Cond | And | Or | Not


def parse_filters(filters: Mapping[str, Any] | None) -> Node | None:
    """Parse a filter mapping into a tree; `None` or `{}` means no filter."""
    if filters is None:
        return None
    if not isinstance(filters, Mapping):
        raise FilterError(f"filters must be a mapping, got {type(filters).__name__}")
    if not filters:
        return None
    return _parse_mapping(filters, 0)


def check_size(node: Node | None, conditions: int, values: int) -> None:
    """At most `conditions` leaves in the tree and `values` values in its lists together."""
    leaves = listed = 0
    stack = [node] if node is not None else []
    while stack:
        item = stack.pop()
        if isinstance(item, Cond):
            leaves += 1
            listed += len(item.value) if isinstance(item.value, list | tuple) else 0
        elif isinstance(item, Not):
            stack.append(item.child)
        else:
            stack.extend(item.children)
    if leaves > conditions:
        raise FilterError(
            f"the filters hold {leaves:,} conditions; the most is {conditions:,} "
            "(limits.filter_conditions)"
        )
    if listed > values:
        raise FilterError(
            f"the filters hold {listed:,} values; the most is {values:,} (limits.filter_values)"
        )


def _parse_mapping(filters: Mapping[str, Any], depth: int) -> Node:
    if not isinstance(filters, Mapping) or not filters:
        raise FilterError(f"each filter must be a non-empty mapping, got {filters!r}")
    if depth > MAX_DEPTH:
        raise FilterError(f"filters nest at most {MAX_DEPTH} AND / OR / NOT levels deep")
    nodes = [_parse_entry(key, value, depth) for key, value in filters.items()]
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def _parse_entry(key: Any, value: Any, depth: int) -> Node:
    if not isinstance(key, str) or not key:
        raise FilterError(f"filter keys must be non-empty strings, got {key!r}")
    if key in _LOGICAL:
        return _parse_logical(_LOGICAL[key], key, value, depth)
    if key == "metadata":
        if not isinstance(value, Mapping) or not value:
            raise FilterError("'metadata' filter must be a non-empty mapping of metadata keys")
        conds = [_parse_field(Field("metadata", _metadata_key(k)), v) for k, v in value.items()]
        return conds[0] if len(conds) == 1 else And(tuple(conds))
    if key == "keywords":
        return _parse_keywords(value)
    if key == "memory_ids":
        return _parse_memory_ids(value)
    key = _ALIASES.get(key, key)
    kind = _FIELD_KINDS.get(key)
    field = Field(kind, key) if kind else Field("metadata", _metadata_key(key))
    return _parse_field(field, value)


def _parse_keywords(value: Any) -> Node:
    """The Platform's text match: `{"keywords": "x"}` or `{"icontains": "x"}` (any case),
    `{"contains": "x"}` (exact case)."""
    memory = Field("text", "memory")
    spec = {"icontains": value} if isinstance(value, str) else value
    if isinstance(spec, Mapping) and spec and set(spec) <= {"contains", "icontains"}:
        if not all(isinstance(v, str) and v.strip() for v in spec.values()):
            raise FilterError("'keywords' takes a non-empty text (an empty one matches everything)")
        conds = [_make_cond(memory, str(op), v) for op, v in spec.items()]
        return conds[0] if len(conds) == 1 else And(tuple(conds))
    raise FilterError("'keywords' takes a string, or {'contains': ...} / {'icontains': ...}")


def _parse_memory_ids(value: Any) -> Node:
    """`{"memory_ids": [...]}` (or `{"in": [...]}`): memories with any of these ids."""
    if isinstance(value, Mapping) and set(value) == {"in"}:
        value = value["in"]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise FilterError("'memory_ids' takes a list of memory ids")
    if not value:
        raise FilterError("'memory_ids' needs at least one memory id")
    return Cond(Field("text", "id"), "in", tuple(value))


def _parse_logical(kind: str, key: str, value: Any, depth: int) -> Node:
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise FilterError(f"'{key}' takes a non-empty list of filters")
    children = tuple(_parse_mapping(item, depth + 1) for item in value)
    if kind == "and":
        return And(children)
    if kind == "or":
        return Or(children)
    return Not(children[0] if len(children) == 1 else Or(children))


def _metadata_key(key: Any) -> str:
    if not isinstance(key, str) or not key or any(c in key for c in '"\\') or not key.isprintable():
        raise FilterError(f"invalid metadata key {key!r}")
    return key


def _parse_field(field: Field, spec: Any) -> Node:
    if isinstance(spec, Mapping):
        if not spec:
            raise FilterError(f"empty operator mapping for '{field.name}'")
        conds = [_make_cond(field, _op_name(field, op), value) for op, value in spec.items()]
        return conds[0] if len(conds) == 1 else And(tuple(conds))
    if spec == "*":
        return Cond(field, "exists", None)
    if isinstance(spec, list | tuple | set):
        raise FilterError(
            f"a list is not a value for '{field.name}'; use {{'in': [...]}} to match any of them"
        )
    return _make_cond(field, "eq", spec)


def _whole_day(field: Field, day: str) -> Node:
    """A bare date on a timestamp field: from that day's midnight (UTC) to the next one."""
    start = _check_value(field, "gte", day)
    try:
        following = next_day(day, what=f"filter on '{field.name}'")
    except ValidationError as exc:
        raise FilterError(str(exc)) from None
    return And((Cond(field, "gte", start), Cond(field, "lt", _check_value(field, "lt", following))))


def _op_name(field: Field, op: Any) -> str:
    name = op[1:] if isinstance(op, str) and op.startswith("$") else op
    if name not in OPERATORS or name == "exists":
        raise FilterError(
            f"unknown operator {op!r} for '{field.name}'; "
            f"supported: {', '.join(sorted(OPERATORS - {'exists'}))}"
        )
    return str(name)


def _make_cond(field: Field, op: str, value: Any) -> Node:
    day = value.strip() if field.kind == "timestamp" and isinstance(value, str) else ""
    if op == "eq" and _DAY.fullmatch(day):  # a date, bare or with eq: that whole day
        return _whole_day(field, day)
    if field.kind == "categories" and op == "contains":
        op = "icontains"  # the Platform's partial, case-insensitive category match
    if op in ("in", "nin"):
        if not isinstance(value, list | tuple) or isinstance(value, str):
            raise FilterError(f"'{op}' on '{field.name}' takes a list of values")
        items = tuple(_check_value(field, op, v) for v in value)
        return Cond(field, op, items)
    if op == "eq" and value == "*":
        return Cond(field, "exists", None)
    return Cond(field, op, _check_value(field, op, value))


def _check_value(field: Field, op: str, value: Any) -> Any:
    if not isinstance(value, Scalar):
        raise FilterError(f"'{field.name}' {op}: values must be strings, numbers, booleans or null")
    if isinstance(value, float) and math.isnan(value):
        raise FilterError(f"'{field.name}' {op}: NaN is not a comparable value")
    if op in ("contains", "icontains") and not isinstance(value, str):
        raise FilterError(f"'{op}' on '{field.name}' takes a string")
    if op in _ORDERED and (value is None or isinstance(value, bool)):
        raise FilterError(f"'{op}' on '{field.name}' takes a number or a string")
    if field.kind == "metadata":
        return value
    if field.kind == "categories":
        if not isinstance(value, str) or op in _ORDERED:
            raise FilterError("categories support eq, ne, in, nin and contains with string values")
        return value
    if value is None and op in ("eq", "ne", "in", "nin"):
        return None
    if not isinstance(value, str):
        raise FilterError(f"'{field.name}' takes string values, got {value!r}")
    try:
        if field.kind == "timestamp" and op not in ("contains", "icontains"):
            return normalize_timestamp(value, what=f"filter on '{field.name}'")
        if field.kind == "date" and op not in ("contains", "icontains"):
            return normalize_date(value, what=f"filter on '{field.name}'")
    except ValidationError as exc:
        raise FilterError(str(exc)) from exc
    return value


def scope_of(node: Node | None) -> dict[str, str]:
    """Top-level equality conditions on user_id / agent_id / run_id: the query's scope."""
    conds: list[Node] = []
    if isinstance(node, Cond):
        conds = [node]
    elif isinstance(node, And):
        conds = list(node.children)
    scope: dict[str, str] = {}
    for cond in conds:
        if (
            isinstance(cond, Cond)
            and cond.op == "eq"
            and cond.field.kind == "text"
            and cond.field.name in SCOPE_FIELDS
            and isinstance(cond.value, str)
        ):
            if scope.get(cond.field.name, cond.value) != cond.value:
                raise FilterError(f"conflicting values for '{cond.field.name}'")
            scope[cond.field.name] = cond.value
    return scope


def combine(*nodes: Node | None) -> Node | None:
    """AND of the given nodes, skipping `None`; an AND among them gives its children (so the
    scope's ids stay top-level conditions: `scope_of`)."""
    present: list[Node] = []
    for node in nodes:
        if isinstance(node, And):
            present.extend(node.children)
        elif node is not None:
            present.append(node)
    if not present:
        return None
    return present[0] if len(present) == 1 else And(tuple(present))
