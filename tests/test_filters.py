"""The filter language: parsing errors, and SQL results equal to the Python reference evaluator."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engram.core.filter_eval import matches
from engram.core.filters import And, Cond, Not, Or, parse_filters, scope_of
from engram.errors import FilterError
from engram.store.postgres.compile import compile_where as pg_compile_where
from engram.store.sqlite.compile import compile_where
from engram.store.sqlite.rows import icontains
from engram.store.sqlite.schema import migrate
from tests.pg import Cluster

# -- parsing ------------------------------------------------------------------------------------


def test_equality_and_implicit_and() -> None:
    node = parse_filters({"user_id": "alex", "topic": "travel"})
    assert isinstance(node, And)
    assert scope_of(node) == {"user_id": "alex"}


def test_operators_and_logic_nest() -> None:
    node = parse_filters(
        {"OR": [{"score": {"gte": 1, "lte": 5}}, {"NOT": [{"categories": {"contains": "food"}}]}]}
    )
    assert isinstance(node, Or)
    assert isinstance(node.children[0], And)
    assert isinstance(node.children[1], Not)


def test_metadata_namespace_and_wildcard() -> None:
    node = parse_filters({"metadata": {"user_id": "x"}, "run_id": "*"})
    assert isinstance(node, And)
    first, second = node.children
    assert isinstance(first, Cond) and first.field.kind == "metadata"
    assert isinstance(second, Cond) and second.op == "exists"
    assert scope_of(node) == {}  # a metadata key named user_id is not the scope


def test_dates_are_normalized() -> None:
    node = parse_filters({"created_at": {"gte": "2024-01-02"}})
    assert isinstance(node, Cond)
    assert node.value == "2024-01-02T00:00:00.000000+00:00"


@pytest.mark.parametrize(
    "bad",
    [
        {"k": {"like": "x"}},
        {"k": {}},
        {"AND": []},
        {"AND": "x"},
        {"k": ["a", "b"]},
        {"k": {"in": "abc"}},
        {"k": {"gt": True}},
        {"k": {"contains": 3}},
        {"k": {"eq": {"nested": 1}}},
        {"categories": {"gt": "a"}},
        {"created_at": {"gte": "yesterday"}},
        {"user_id": {"gt": 3}},
        {"": 1},
        {'bad"key': 1},
        {"metadata": "x"},
        {"k": float("nan")},
    ],
)
def test_malformed_filters_raise(bad: dict[str, Any]) -> None:
    with pytest.raises(FilterError):
        parse_filters(bad)


def test_filter_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="unknown operator"):
        parse_filters({"k": {"regex": "x"}})


# -- property: SQL == Python --------------------------------------------------------------------

USERS = ["u1", "u2", "u3"]
TEXTS = ["alpha", "Beta", "gamma ray", "ÄPFEL", "äpfel"]
META_KEYS = ["color", "n", "flag", "tags"]
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 2)),
    st.sampled_from(TEXTS),
    st.lists(st.sampled_from(TEXTS), max_size=3),
)
records = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from([*USERS, None]),
        "agent_id": st.sampled_from(["a1", None]),
        "memory": st.sampled_from(TEXTS),
        "created_at": st.sampled_from(
            [f"2024-0{m}-0{d}T00:00:00.000000+00:00" for m in range(1, 4) for d in range(1, 4)]
        ),
        "expiration_date": st.sampled_from([None, "2024-01-01", "2025-06-30"]),
        "categories": st.lists(st.sampled_from(["food", "travel", "Music"]), max_size=2),
        "metadata": st.dictionaries(st.sampled_from(META_KEYS), json_values, max_size=3),
    }
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([*TEXTS, "alp", "ÄP", "1.5"])
)


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    meta = st.builds(
        lambda k, op, v: {k: {op: v}},
        st.sampled_from(META_KEYS),
        st.sampled_from(["eq", "ne"]),
        scalars,
    )
    ordered = st.builds(
        lambda k, op, v: {k: {op: v}},
        st.sampled_from(META_KEYS),
        st.sampled_from(["gt", "gte", "lt", "lte"]),
        st.one_of(st.integers(-5, 5), st.sampled_from(TEXTS)),
    )
    member = st.builds(
        lambda k, op, v: {k: {op: v}},
        st.sampled_from(META_KEYS),
        st.sampled_from(["in", "nin"]),
        st.lists(scalars, max_size=3),
    )
    contains = st.builds(
        lambda k, op, v: {k: {op: v}},
        st.sampled_from([*META_KEYS, "memory", "user_id"]),
        st.sampled_from(["contains", "icontains"]),
        st.sampled_from(["a", "ä", "Ä", "ray", "B"]),
    )
    columns = st.one_of(
        st.builds(lambda v: {"user_id": v}, st.sampled_from(USERS)),
        st.builds(lambda v: {"agent_id": {"ne": v}}, st.sampled_from(["a1", None])),
        st.builds(lambda v: {"user_id": {"in": v}}, st.lists(st.sampled_from([*USERS, None]))),
        st.builds(lambda v: {"user_id": {"nin": v}}, st.lists(st.sampled_from([*USERS, None]))),
        st.builds(lambda k: {k: "*"}, st.sampled_from(["agent_id", "color", "categories"])),
        st.builds(
            lambda op, v: {"created_at": {op: v}},
            st.sampled_from(["gt", "gte", "lt", "lte", "eq"]),
            st.sampled_from(["2024-02-02", "2024-01-01T00:00:00Z", "2024-03-03T12:00:00+02:00"]),
        ),
        st.builds(
            lambda op, v: {"expiration_date": {op: v}},
            st.sampled_from(["gt", "lte", "eq", "ne"]),
            st.sampled_from(["2024-01-01", "2025-01-01"]),
        ),
        st.builds(
            lambda op, v: {"categories": {op: v}},
            st.sampled_from(["contains", "icontains", "eq", "ne"]),
            st.sampled_from(["food", "music", "Music"]),
        ),
        st.builds(
            lambda op, v: {"categories": {op: v}},
            st.sampled_from(["in", "nin"]),
            st.lists(st.sampled_from(["food", "travel", "x"]), max_size=2),
        ),
        st.builds(lambda k, v: {"metadata": {k: v}}, st.sampled_from(META_KEYS), scalars),
    )
    return st.one_of(meta, ordered, member, contains, columns)


filters = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"AND": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"OR": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"NOT": xs}, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def conn() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    connection.create_function("engram_icontains", 2, icontains, deterministic=True)
    migrate(connection)
    return connection


def _load(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute("DELETE FROM memories")
    for i, r in enumerate(rows):
        conn.execute(
            "INSERT INTO memories (rid, id, memory, hash, user_id, agent_id, metadata, categories,"
            " expiration_date, created_at, updated_at, embedding) "
            "VALUES (?, ?, ?, 'h', ?, ?, ?, ?, ?, ?, ?, x'00')",
            (
                i, f"id{i}", r["memory"], r["user_id"], r["agent_id"], json.dumps(r["metadata"]),
                json.dumps(r["categories"]), r["expiration_date"], r["created_at"], r["created_at"],
            ),
        )  # fmt: skip


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(records, min_size=1, max_size=12), spec=filters)
def test_sql_matches_python_evaluator(
    conn: sqlite3.Connection, rows: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    node = parse_filters(spec)
    _load(conn, rows)
    sql, params = compile_where(node)
    got = {r[0] for r in conn.execute(f"SELECT rid FROM memories m WHERE {sql}", params)}
    want = {i for i, r in enumerate(rows) if matches(node, r)}
    assert got == want, (spec, sql, params)


@pytest.fixture(scope="module")
def pg_conn(pg_cluster: Cluster) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(pg_cluster.database(), autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE memories (rid int PRIMARY KEY, id text, memory text, user_id text, "
            "agent_id text, run_id text, app_id text, actor_id text, role text, hash text, "
            "memory_type text, metadata jsonb, categories jsonb, expiration_date text, "
            "created_at text, updated_at text)"
        )
        yield connection


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(records, min_size=1, max_size=12), spec=filters)
def test_postgres_sql_matches_python_evaluator(
    pg_conn: Any, rows: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    node = parse_filters(spec)
    pg_conn.execute("DELETE FROM memories")
    with pg_conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO memories (rid, id, memory, user_id, agent_id, metadata, categories, "
            "expiration_date, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s::jsonb, "
            "%s::jsonb, %s, %s, %s)",
            [
                (i, f"id{i}", r["memory"], r["user_id"], r["agent_id"], json.dumps(r["metadata"]),
                 json.dumps(r["categories"]), r["expiration_date"], r["created_at"],
                 r["created_at"])
                for i, r in enumerate(rows)
            ],
        )  # fmt: skip
    sql, params = pg_compile_where(node)
    got = {r[0] for r in pg_conn.execute(f"SELECT rid FROM memories m WHERE {sql}", params)}
    want = {i for i, r in enumerate(rows) if matches(node, r)}
    assert got == want, (spec, sql, params)
