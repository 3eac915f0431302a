"""Every filter example of mem0's documentation, through the library's search and get_all (the
same examples run through the official client in tests/server/test_filter_examples.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engram import Memory, ValidationError
from engram.providers.embedders.hashing import HashingEmbedder
from engram.store.base import Store
from engram.store.sqlite.store import SQLiteStore
from tests.filter_examples import QUERY, load, names_a_scope, with_ids

DATA = load()
EXAMPLES = DATA["examples"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    store: Store
    if request.param == "postgres":
        from engram.store.postgres.store import PostgresStore

        store = PostgresStore(request.getfixturevalue("pg_cluster").database(), project="docs")
    else:
        store = SQLiteStore(tmp_path_factory.mktemp("filters") / "engram.db")
    with Memory(embedder=HashingEmbedder(128), store=store) as memory:
        ids = {}
        for row in DATA["seed"]:
            added = memory.add(
                row["text"], infer=False, categories=row["categories"],
                metadata={"label": row["label"], **row["metadata"]}, timestamp=row["timestamp"],
                **row["scope"],
            )  # fmt: skip
            ids[row["label"]] = added["results"][0]["id"]
        yield memory, ids


def _labels(results: list[dict[str, Any]]) -> list[str]:
    return sorted(r["metadata"]["label"] for r in results)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["name"] for e in EXAMPLES])
def test_documented_filter(example: dict[str, Any], seeded: Any) -> None:
    memory, ids = seeded
    filters = with_ids(example["filters"], ids)
    if not names_a_scope(filters):  # the server's project is the scope; the library needs one
        with pytest.raises(ValidationError, match="user_id"):
            memory.get_all(filters=filters)
        return
    expect = sorted(example["expect"])
    assert _labels(memory.get_all(filters=filters)["results"]) == expect
    assert _labels(memory.search(QUERY, filters=filters, top_k=100)["results"]) == expect


def test_every_example_runs_somewhere() -> None:
    sources = {e["source"] for e in EXAMPLES}
    assert len(EXAMPLES) >= 40 and len(sources) >= 5
    assert sum(not names_a_scope(e["filters"]) for e in EXAMPLES) >= 3


def test_unscoped_reads_in_a_library_that_allows_them(tmp_path: Path) -> None:
    with Memory(
        embedder=HashingEmbedder(64), store=SQLiteStore(tmp_path / "x.db"), require_scope=False
    ) as memory:
        memory.add("Likes tea", user_id="a", infer=False, categories=["food"])
        memory.add("Likes rain", agent_id="b", infer=False)
        assert memory.get_all()["total"] == 2
        assert [r["memory"] for r in memory.get_all(filters={"categories": "food"})["results"]] == [
            "Likes tea"
        ]
        assert len(memory.search("likes")["results"]) == 2
        with pytest.raises(ValidationError, match="user_id"):
            memory.delete_all()  # deleting still names what to delete


def test_graph_relations_follow_a_filter_without_one_scope(tmp_path: Path) -> None:
    with Memory(embedder=HashingEmbedder(64), store=SQLiteStore(tmp_path / "g.db")) as memory:
        memory.add("I live in Lisbon.", user_id="ana", enable_graph=True)
        memory.add("I live in Porto.", user_id="bo", enable_graph=True)
        memory.add("I live in Oslo.", user_id="cy", enable_graph=True)
        either = {"OR": [{"user_id": "ana"}, {"user_id": "bo"}]}
        relations = memory.get_all(filters=either, enable_graph=True)["relations"]
        assert sorted(r["target"] for r in relations) == ["Lisbon", "Porto"]
        one = memory.get_all(user_id="cy", enable_graph=True)["relations"]
        assert [r["target"] for r in one] == ["Oslo"]
        found = memory.search("who lives in Porto or Oslo", filters=either, enable_graph=True)
        assert {r["destination"] for r in found["relations"]} == {"Porto"}


@pytest.mark.parametrize(
    "filters",
    [
        {"NOT": [{"user_id": "alice"}]},  # would remove everyone else's memories
        {"OR": [{"user_id": "alice"}, {"memory": {"contains": ""}}]},
        {"user_id": "*"},
        {"user_id": {"ne": "alice"}},
        {"user_id": {"nin": ["alice"]}},
        {"categories": "food"},
    ],
)
def test_a_delete_must_pin_whose_memories_go(filters: dict[str, Any], tmp_path: Path) -> None:
    with Memory(embedder=HashingEmbedder(64), store=SQLiteStore(tmp_path / "d.db")) as memory:
        memory.add("Likes tea", user_id="alice", infer=False, categories=["food"])
        memory.add("Likes rain", user_id="bob", infer=False, categories=["food"])
        with pytest.raises(ValidationError, match="delete must name"):
            memory.delete_all(filters=filters)
        assert memory.get_all(filters={"user_id": {"in": ["alice", "bob"]}})["total"] == 2
        either = {"OR": [{"user_id": "alice"}, {"user_id": {"in": ["bob"]}}]}
        narrowed = {"AND": [either, {"categories": "food"}]}
        assert memory.delete_all(filters=narrowed)["deleted_count"] == 2


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"user_id": "a", "keywords": ""}, "non-empty"),
        ({"user_id": "a", "keywords": {"icontains": " "}}, "non-empty"),
        ({"user_id": "a", "memory_ids": []}, "at least one"),
        ({"user_id": "a", "memory_ids": "x"}, "list of memory ids"),
        ({"user_id": "a", "created_at": "2024-02-30"}, "ISO 8601"),
    ],
)
def test_platform_fields_refuse_what_would_match_all_or_nothing(
    filters: dict[str, Any], message: str, seeded: Any
) -> None:
    memory, _ = seeded
    with pytest.raises(ValidationError, match=message):
        memory.get_all(filters=filters)


def test_a_date_with_eq_is_that_day_and_trees_have_a_depth_limit(seeded: Any) -> None:
    memory, _ = seeded
    day = memory.get_all(filters={"user_id": "alex", "created_at": {"eq": "2024-02-15"}})
    assert _labels(day["results"]) == ["m2"]
    deep: dict[str, Any] = {"user_id": "alex"}
    for _ in range(40):
        deep = {"AND": [deep]}
    with pytest.raises(ValidationError, match="nest at most"):
        memory.get_all(filters=deep)
