"""mem0's Memory API on the embedded store: shapes, both call styles, and what mem0 gets wrong."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from engram import (
    AsyncMemory,
    FilterError,
    ImmutableMemoryError,
    Memory,
    MemoryNotFoundError,
    NotFoundError,
    ValidationError,
)
from engram.providers.embedders.hashing import HashingEmbedder
from tests.conftest import Backend

CONVERSATION = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "I love hiking in the Alps.", "name": "alex"},
    {"role": "assistant", "content": "That sounds wonderful."},
]


def test_idempotency_key_applies_an_add_once(memory: Memory) -> None:
    first = memory.add("I like tea.", user_id="ik", infer=False, idempotency_key="req-1")
    again = memory.add("I like tea.", user_id="ik", infer=False, idempotency_key="req-1")
    assert again["replayed"] is True
    assert again["results"] == [{k: first["results"][0][k] for k in ("id", "memory", "event")}]
    assert memory.get_all(user_id="ik")["total"] == 1
    with pytest.raises(ValidationError):
        memory.add("x", user_id="ik", idempotency_key="")


def test_add_infer_false_stores_messages_verbatim(memory: Memory) -> None:
    result = memory.add(CONVERSATION, user_id="alex", infer=False, metadata={"src": "chat"})
    assert [(r["memory"], r["event"], r["role"], r["actor_id"]) for r in result["results"]] == [
        ("I love hiking in the Alps.", "ADD", "user", "alex"),
        ("That sounds wonderful.", "ADD", "assistant", None),
    ]
    item = memory.get(result["results"][0]["id"])
    assert item is not None
    assert item["user_id"] == "alex" and item["metadata"] == {"src": "chat"}
    assert item["actor_id"] == "alex" and item["role"] == "user"
    assert set(item) >= {"id", "memory", "hash", "metadata", "created_at", "updated_at"}


def test_add_infer_true_extracts_and_skips_duplicates(memory: Memory) -> None:
    text = "Hi there! I love sci-fi movies. What time is it? I work at Nimbus as an engineer."
    first = memory.add(text, user_id="alex")
    assert [r["memory"] for r in first["results"]] == [
        "Loves sci-fi movies",
        "Works at Nimbus",
        "Works as an engineer",
    ]
    again = memory.add("I love sci-fi movies!", user_id="alex")
    assert again["results"] == []
    assert memory.get_all(user_id="alex")["total"] == 3


def test_memory_ids_are_uuids_that_sort_by_creation(memory: Memory) -> None:
    """Ids are UUIDs of version 7 (the time first: a store's id indexes grow at their end),
    distinct, later ones sorting after earlier ones (a millisecond apart); history ids too."""
    import time
    import uuid

    first = memory.add([{"role": "user", "content": f"fact {i}"} for i in range(50)],
                       user_id="ids", infer=False)["results"]  # fmt: skip
    time.sleep(0.002)
    later = memory.add("one more fact", user_id="ids", infer=False)["results"][0]["id"]
    ids = [r["id"] for r in first]
    assert len(set(ids)) == 50 and all(uuid.UUID(i).version == 7 for i in [*ids, later])
    assert all(later > i for i in ids)
    assert uuid.UUID(memory.history(later)[0]["id"]).version == 7


def test_string_message_and_both_call_styles(memory: Memory) -> None:
    memory.add("My favourite city is Lisbon", user_id="alex", infer=False)
    memory.add("My favourite city is Paris", user_id="sam", infer=False)
    v1 = memory.search("favourite city", user_id="alex", limit=5)
    v2 = memory.search("favourite city", filters={"user_id": "alex"}, top_k=5)
    assert [r["memory"] for r in v1["results"]] == ["My favourite city is Lisbon"]
    assert v1["results"] == v2["results"]
    assert 0.0 <= v1["results"][0]["score"] <= 1.0
    assert memory.get_all(filters={"user_id": "sam"})["total"] == 1


def test_search_needs_scope_and_valid_arguments(memory: Memory) -> None:
    with pytest.raises(ValidationError, match="user_id"):
        memory.search("x")
    with pytest.raises(ValidationError):
        memory.search("x", user_id="a", limit=3, top_k=4)
    with pytest.raises(ValidationError):
        memory.search("x", user_id="a", threshold=2)
    with pytest.raises(FilterError):
        memory.search("x", user_id="a", filters={"k": {"regex": "."}})
    with pytest.raises(ValidationError):
        memory.search("", user_id="a")
    with pytest.raises(ValidationError, match="threshold"):
        memory.search("x", user_id="a", threshold="abc")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="past any store"):
        memory.get_all(user_id="a", page=10**18, page_size=100)


def test_booleans_are_booleans_and_times_are_times(memory: Memory) -> None:
    bad: list[tuple[str, Any]] = [("infer", "false"), ("immutable", "no"), ("infer", 0)]
    for name, value in bad:
        with pytest.raises(ValidationError, match=name):
            memory.add("I like tea", user_id="a", **{name: value})
    with pytest.raises(ValidationError, match="Unix time"):
        memory.add("I like tea", user_id="a", infer=False, timestamp=1e20)
    assert memory.get_all(user_id="a")["results"] == []


def test_threshold_and_explain(memory: Memory) -> None:
    memory.add("I play the violin", user_id="a", infer=False)
    memory.add("Quarterly revenue grew", user_id="a", infer=False)
    found = memory.search("violin", user_id="a", threshold=0.3, explain=True)
    assert [r["memory"] for r in found["results"]] == ["I play the violin"]
    explain = found["results"][0]["explain"]
    assert explain["recipe"] == "hybrid"
    assert explain["keyword"] == 1.0  # the only keyword hit
    assert 0 < explain["vector"] <= 1
    vector_only = memory.search("violin", user_id="a", recipe="vector", explain=True)["results"]
    assert vector_only[0]["score"] == vector_only[0]["explain"]["vector"]


def test_scope_ids_are_validated_and_metadata_cannot_change_scope(memory: Memory) -> None:
    with pytest.raises(ValidationError, match="user_id"):
        memory.add("hello there friend", infer=False)
    with pytest.raises(ValidationError, match="whitespace"):
        memory.add("hello there friend", user_id="a b", infer=False)
    with pytest.raises(ValidationError):
        memory.add("hello there friend", user_id="", infer=False)
    added = memory.add(
        "I like tea a lot", user_id="  alex ", infer=False, metadata={"user_id": "mallory"}
    )
    item = memory.get(added["results"][0]["id"])
    assert item is not None and item["user_id"] == "alex"
    assert item["metadata"] == {"user_id": "mallory"}
    assert memory.get_all(user_id="mallory")["total"] == 0


def test_get_all_has_no_hidden_cap_and_pages(memory: Memory) -> None:
    memory.add(
        [{"role": "user", "content": f"fact {i}"} for i in range(250)], user_id="u", infer=False
    )
    everything = memory.get_all(user_id="u")
    assert len(everything["results"]) == 250 and everything["total"] == 250
    limited = memory.get_all(user_id="u", limit=10)
    assert len(limited["results"]) == 10 and limited["total"] == 250
    pages: list[str] = []
    page: int | None = 1
    while page:
        chunk = memory.get_all(user_id="u", page=page, page_size=100)
        pages.extend(r["id"] for r in chunk["results"])
        page = chunk["next_page"]
    assert len(pages) == len(set(pages)) == 250
    # By position: the same order, every memory once, also when memories share a created_at
    # (one add writes them all at once) and when one is added between pages.
    walked: list[str] = []
    cursor: str | None = ""
    while cursor is not None:
        chunk = memory.get_all(user_id="u", limit=60, after=cursor)
        assert chunk["total"] >= 250
        walked.extend(r["id"] for r in chunk["results"])
        if len(walked) == 60:
            memory.add("added while paging", user_id="u", infer=False)
        cursor = chunk["next_cursor"]
    assert walked == pages
    assert memory.get_all(user_id="u", limit=60, after="")["results"][0]["memory"] == (
        "added while paging"
    )
    with pytest.raises(ValidationError, match="cursor"):
        memory.get_all(user_id="u", limit=5, after="bm90IGEgY3Vyc29y")
    with pytest.raises(ValidationError, match="either"):
        memory.get_all(user_id="u", page=1, after="")


def test_delete_all_deletes_everything_in_scope_and_counts(memory: Memory) -> None:
    memory.add(
        [{"role": "user", "content": f"fact {i}"} for i in range(130)], user_id="u", infer=False
    )
    memory.add("keep me please", user_id="other", infer=False)
    assert memory.delete_all(user_id="u")["deleted_count"] == 130
    assert memory.get_all(user_id="u")["total"] == 0
    assert memory.get_all(user_id="other")["total"] == 1
    with pytest.raises(ValidationError):
        memory.delete_all()


def test_update_delete_history_and_not_found(memory: Memory) -> None:
    mid = memory.add("Lives in Lisbon", user_id="a", infer=False)["results"][0]["id"]
    assert memory.update(mid, "Lives in Porto") == {"message": "Memory updated successfully!"}
    memory.update(mid, text="Lives in Faro", metadata={"moved": True})
    item = memory.get(mid)
    assert (
        item is not None
        and item["memory"] == "Lives in Faro"
        and item["metadata"] == {"moved": True}
    )
    assert memory.delete(mid) == {"message": "Memory deleted successfully!"}
    assert memory.get(mid) is None
    events = [(h["event"], h["old_memory"], h["new_memory"]) for h in memory.history(mid)]
    assert events == [
        ("ADD", None, "Lives in Lisbon"),
        ("UPDATE", "Lives in Lisbon", "Lives in Porto"),
        ("UPDATE", "Lives in Porto", "Lives in Faro"),
        ("DELETE", "Lives in Faro", None),
    ]
    assert memory.history(mid)[-1]["is_deleted"] is True
    missing = str(uuid.uuid4())
    calls: list[Callable[[], object]] = [
        lambda: memory.update(missing, "x"),
        lambda: memory.delete(missing),
    ]
    for call in calls:
        with pytest.raises(NotFoundError) as caught:
            call()
        assert isinstance(caught.value, LookupError | ValueError)
        assert isinstance(caught.value, MemoryNotFoundError)
    with pytest.raises(ValidationError, match="UUID"):
        memory.get("not-a-uuid")
    assert memory.get(missing) is None


def test_immutable_memories_cannot_be_updated(memory: Memory) -> None:
    mid = memory.add("Blood type is O+", user_id="a", infer=False, immutable=True)["results"][0][
        "id"
    ]
    with pytest.raises(ImmutableMemoryError):
        memory.update(mid, "Blood type is A")
    item = memory.get(mid)
    assert item is not None and item["memory"] == "Blood type is O+" and item["immutable"] is True


def test_batch_operations_are_atomic_and_bounded(memory: Memory) -> None:
    ids = [r["id"] for r in memory.add(
        [{"role": "user", "content": f"note {i}"} for i in range(3)], user_id="a", infer=False
    )["results"]]  # fmt: skip
    missing = str(uuid.uuid4())
    with pytest.raises(NotFoundError):
        memory.batch_update(
            [{"memory_id": ids[0], "text": "changed"}, {"memory_id": missing, "text": "x"}]
        )
    assert memory.get(ids[0])["memory"] == "note 0"  # type: ignore[index]
    with pytest.raises(NotFoundError):
        memory.batch_delete([{"memory_id": ids[1]}, {"memory_id": missing}])
    assert memory.get(ids[1]) is not None
    with pytest.raises(ValidationError, match="1000"):
        memory.batch_delete([{"memory_id": str(uuid.uuid4())} for _ in range(1001)])
    assert (
        memory.batch_update([{"memory_id": i, "text": f"new {i}"} for i in ids])["updated_count"]
        == 3
    )
    assert memory.batch_delete(ids)["deleted_count"] == 3
    assert memory.get_all(user_id="a")["total"] == 0


def test_bad_input_leaves_store_untouched(memory: Memory) -> None:
    memory.add("a first fact here", user_id="a", infer=False)
    bad_calls: list[Callable[[], object]] = [
        lambda: memory.add(
            [{"role": "user", "content": "ok"}, {"role": "robot", "content": "x"}], user_id="a"
        ),
        lambda: memory.add([{"role": "user", "content": "ok"}, {"role": "user"}], user_id="a"),
        lambda: memory.add("x y z", user_id="a", metadata={"bad": object()}),
        lambda: memory.add("x y z", user_id="a", memory_type="semantic"),
        lambda: memory.add("x y z", user_id="a", expiration_date="soon"),
        lambda: memory.add(42, user_id="a"),
    ]
    for call in bad_calls:
        with pytest.raises(ValidationError):
            call()
    assert memory.get_all(user_id="a")["total"] == 1


def test_expired_memories_are_hidden_unless_asked(backend: Backend) -> None:
    clock = lambda: datetime(2026, 3, 1, tzinfo=UTC)  # noqa: E731
    with Memory(embedder=HashingEmbedder(64), store=backend(), clock=clock) as m:
        m.add("Temporary parking pass", user_id="a", infer=False, expiration_date="2026-02-01")
        m.add("Permanent parking pass", user_id="a", infer=False, expiration_date="2026-03-01")
        assert [r["memory"] for r in m.search("parking pass", user_id="a")["results"]] == [
            "Permanent parking pass"
        ]
        assert len(m.search("parking pass", user_id="a", show_expired=True)["results"]) == 2
        assert m.get_all(user_id="a")["total"] == 1
        assert m.get_all(user_id="a", show_expired=True)["total"] == 2


def test_filters_on_metadata_categories_and_dates(memory: Memory) -> None:
    memory.add(
        "Flight to Rome",
        user_id="a",
        infer=False,
        metadata={"kind": "trip", "cost": 300},
        categories=["travel"],
    )
    memory.add(
        "Dinner in Rome",
        user_id="a",
        infer=False,
        metadata={"kind": "food", "cost": 40},
        categories=["food", "travel"],
    )
    memory.add("Gym membership", user_id="a", infer=False, metadata={"kind": "health", "cost": 30})

    def texts(filters: dict[str, object]) -> set[str]:
        return {r["memory"] for r in memory.get_all(filters={"user_id": "a", **filters})["results"]}

    assert texts({"kind": "trip"}) == {"Flight to Rome"}
    assert texts({"metadata": {"cost": {"lt": 100}}}) == {"Dinner in Rome", "Gym membership"}
    assert texts({"categories": {"contains": "travel"}}) == {"Flight to Rome", "Dinner in Rome"}
    assert texts({"NOT": [{"categories": {"in": ["food"]}}]}) == {
        "Flight to Rome",
        "Gym membership",
    }
    assert texts({"OR": [{"kind": "health"}, {"cost": {"gte": 300}}]}) == {
        "Gym membership",
        "Flight to Rome",
    }
    assert texts({"created_at": {"gte": "2000-01-01"}}) == {
        "Flight to Rome",
        "Dinner in Rome",
        "Gym membership",
    }
    assert texts({"memory": {"icontains": "ROME"}}) == {"Flight to Rome", "Dinner in Rome"}
    found = memory.search("Rome", filters={"user_id": "a", "kind": {"ne": "trip"}})
    assert {r["memory"] for r in found["results"]} == {"Dinner in Rome", "Gym membership"}


def test_procedural_memory_needs_agent(memory: Memory) -> None:
    with pytest.raises(ValidationError, match="agent_id"):
        memory.add(CONVERSATION, user_id="a", memory_type="procedural_memory")
    result = memory.add(CONVERSATION, agent_id="helper", memory_type="procedural_memory")
    (item,) = result["results"]
    stored = memory.get(item["id"])
    assert stored is not None and stored["memory_type"] == "procedural_memory"
    assert "hiking" in stored["memory"]


def test_reset_clears_everything(memory: Memory) -> None:
    mid = memory.add("something to forget", user_id="a", infer=False)["results"][0]["id"]
    memory.reset()
    assert memory.get(mid) is None and memory.history(mid) == []


async def test_async_memory_is_the_same_api(amemory: AsyncMemory) -> None:
    added = await amemory.add("I drink green tea every morning", user_id="a", infer=False)
    found = await amemory.search("tea", filters={"user_id": "a"})
    assert found["results"][0]["id"] == added["results"][0]["id"]


def test_from_config_with_mem0_keys(tmp_path: object) -> None:
    config = {
        "vector_store": {
            "provider": "sqlite",
            "config": {"path": str(tmp_path), "collection_name": "mem0"},
        },
        "embedder": {"provider": "hashing", "config": {"embedding_dims": 32}},
        "version": "v1.1",
    }
    with Memory.from_config(config) as m:
        m.add("stored through from_config", user_id="a", infer=False)
        assert m.get_all(user_id="a")["total"] == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"vector_store": {"provider": "qdrant"}}, "supported: sqlite"),
        ({"embedder": {"provider": "cohere"}}, "supported: minilm"),
        ({"embedder": {"provider": "huggingface", "config": {"model": "bge-large"}}}, "all-MiniLM"),
        ({"colour": "blue"}, "unknown config keys"),
    ],
)
def test_bad_config_is_a_clear_error(config: dict[str, object], message: str) -> None:
    from engram import ConfigurationError

    with pytest.raises(ConfigurationError, match=message):
        Memory.from_config(config)


async def test_async_from_config_can_be_awaited(tmp_path: object) -> None:
    config = {"data_dir": str(tmp_path), "embedder": {"provider": "hashing"}}
    memory = await AsyncMemory.from_config(config)
    await memory.add("awaited construction works", user_id="a", infer=False)
    assert (await memory.get_all(user_id="a"))["total"] == 1
    await memory.close()


def test_closed_memory_raises_clearly(memory: Memory) -> None:
    from engram import EngramError

    memory.close()
    with pytest.raises(EngramError, match="closed"):
        memory.get_all(user_id="a")


def test_history_records_what_made_each_version(memory: Memory) -> None:
    first = memory.add("Lives in Lisbon", user_id="c", infer=False)["results"][0]["id"]
    memory.update(first, "Lives in Porto")
    extracted = memory.add("I work at Acme", user_id="c")["results"][0]["id"]
    memory.batch_update([{"memory_id": extracted, "text": "Works at Acme Corp"}])
    memory.delete(first)
    memory.delete_all(user_id="c")
    assert [h["cause"] for h in memory.history(first)] == ["add", "update", "delete"]
    assert [h["cause"] for h in memory.history(extracted)] == [
        "add:extraction", "batch_update", "delete_all"]  # fmt: skip
