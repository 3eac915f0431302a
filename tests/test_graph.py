"""Graph memory with temporal validity, entity resolution, and profile facts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import pytest

from engram import AsyncMemory, Memory
from engram.providers._http import RetryPolicy
from engram.providers.embedders.hashing import HashingEmbedder
from engram.providers.llm.openai import OpenAILLM
from tests.conftest import Backend
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def gmem(backend: Backend) -> Iterator[Memory]:
    with Memory({"graph_store": {"provider": "sqlite"}, "embedder": {"provider": "hashing"}},
                store=backend()) as memory:  # fmt: skip
        yield memory


def triples(relations: Sequence[Mapping[str, Any]]) -> set[tuple[str, str, str | None]]:
    return {
        (r["source"], r["relationship"], r.get("target", r.get("destination"))) for r in relations
    }


def test_relations_are_stored_with_the_memories(gmem: Memory) -> None:
    result = gmem.add(
        "I live in Porto. I work at Nimbus. My sister Maria is a doctor.", user_id="alex"
    )
    assert triples(result["relations"]["added_entities"]) == {
        ("alex", "lives_in", "Porto"), ("alex", "works_at", "Nimbus"), ("alex", "has_sister", "Maria"),
    }  # fmt: skip
    assert triples(gmem.get_all(user_id="alex")["relations"]) == triples(
        result["relations"]["added_entities"]
    )
    assert gmem.get_profile(user_id="alex")["profile"] == {
        "lives_in": "Porto",
        "works_at": "Nimbus",
    }
    assert "relations" not in gmem.get_all(user_id="alex", enable_graph=False)


def test_contradicted_relations_end_instead_of_vanishing(gmem: Memory) -> None:
    gmem.add("I live in Porto.", user_id="alex", timestamp="2025-01-01T00:00:00Z")
    moved = gmem.add("I moved to Lisbon.", user_id="alex", timestamp="2025-06-01T00:00:00Z")
    assert [r["event"] for r in moved["results"]] == ["UPDATE"]
    assert triples(moved["relations"]["deleted_entities"]) == {("alex", "lives_in", "Porto")}
    assert triples(moved["relations"]["added_entities"]) == {("alex", "lives_in", "Lisbon")}
    store = gmem.async_memory.store
    everything = gmem._loop.run(store.relations({"user_id": "alex"}, include_ended=True))
    porto = next(r for r in everything if r["target"] == "Porto")
    assert porto["valid_at"].startswith("2025-01-01")
    assert porto["invalid_at"].startswith("2025-06-01")
    profile = gmem.get_profile(user_id="alex", include_history=True)
    assert profile["profile"] == {"lives_in": "Lisbon"}
    assert [(h["old_value"], h["new_value"]) for h in profile["history"]] == [
        (None, "Porto"),
        ("Porto", "Lisbon"),
    ]
    gone = gmem.add("I don't live in Lisbon anymore.", user_id="alex")
    assert [r["event"] for r in gone["results"]] == ["DELETE"]
    assert triples(gone["relations"]["deleted_entities"]) == {("alex", "lives_in", "Lisbon")}
    assert gmem.get_profile(user_id="alex")["profile"] == {}
    assert len(gmem._loop.run(store.relations({"user_id": "alex"}, include_ended=True))) == 2


def test_explicit_deletes_remove_what_only_they_supported(gmem: Memory) -> None:
    added = gmem.add("I live in Oslo. I have a dog named Rex.", user_id="alex")
    oslo = next(r["id"] for r in added["results"] if "Oslo" in r["memory"])
    gmem.delete(oslo)
    assert triples(gmem.get_all(user_id="alex")["relations"]) == {("alex", "has_dog", "Rex")}
    assert gmem.get_profile(user_id="alex")["profile"] == {}
    gmem.delete_all(user_id="alex")
    assert gmem.get_all(user_id="alex")["relations"] == []
    store = gmem.async_memory.store
    assert gmem._loop.run(store.relations({"user_id": "alex"}, include_ended=True)) == []


def test_search_uses_and_returns_the_graph(gmem: Memory) -> None:
    gmem.add("My sister Maria is a doctor.", user_id="alex")
    gmem.add("I have a cat named Luna.", user_id="alex")
    for i in range(20):
        gmem.add(f"Note number {i} about nothing much", user_id="alex", infer=False)
    found = gmem.search("Maria", user_id="alex", explain=True)
    assert found["results"][0]["explain"]["recipe"] == "hybrid_graph"
    assert ("alex", "has_sister", "Maria") in triples(found["relations"])
    linked = [r for r in found["results"] if r["explain"]["graph"] == 1.0]
    assert {r["memory"] for r in linked} == {"Has a sister named Maria"}
    plain = gmem.search("Maria", user_id="alex", enable_graph=False)
    assert "relations" not in plain


@pytest.fixture
async def llm_graph(fake_openai: FakeOpenAI, backend: Backend) -> AsyncIterator[AsyncMemory]:
    llm = OpenAILLM(
        base_url=fake_openai.base_url, api_key="test-key", retry=RetryPolicy(max_retries=0)
    )
    memory = AsyncMemory({"graph_store": {"provider": "sqlite"}}, embedder=HashingEmbedder(128),
                         store=backend(), llm=llm)  # fmt: skip
    yield memory
    await memory.close()


def fact(
    text: str, *relations: tuple[str, str, str], event: str = "ADD", id: int | None = None
) -> dict[str, Any]:
    return {"text": text, "event": event, "id": id,
            "relations": [{"source": s, "relationship": r, "target": t} for s, r, t in relations]}  # fmt: skip


async def test_entities_resolve_by_name_and_acronym(
    fake_openai: FakeOpenAI, llm_graph: AsyncMemory
) -> None:
    fake_openai.reply(
        {"facts": [fact("Lives in New York City", ("user", "lives_in", "New York City"))]},
        {
            "facts": [
                fact("Loves the NYC subway", ("user", "likes", "subway")),
                fact("Subway is in NYC", ("subway", "located_in", "NYC")),
            ]
        },
        {
            "facts": [
                fact("Visited the new york city museum", ("User", "visited", "the New York City"))
            ]
        },
    )
    for text in ("I live in New York City", "I love the NYC subway", "Visited a museum"):
        await llm_graph.add(text, user_id="kim")
    relations = (await llm_graph.get_all(user_id="kim"))["relations"]
    assert {
        r["target"] for r in relations if r["relationship"] in ("located_in", "visited", "lives_in")
    } == {"New York City"}
    assert {r["source"] for r in relations if r["relationship"] == "visited"} == {"kim"}


async def test_single_valued_relationships_end_the_previous_value(
    fake_openai: FakeOpenAI, llm_graph: AsyncMemory
) -> None:
    fake_openai.reply(
        {"facts": [fact("Works at Shopify", ("user", "works_at", "Shopify"))]},
        {"facts": [fact("Joined Stripe in May", ("user", "works_at", "Stripe"))]},
    )
    await llm_graph.add("I work at Shopify", user_id="kim")
    result = await llm_graph.add("I joined Stripe in May", user_id="kim")
    assert triples(result["relations"]["deleted_entities"]) == {("kim", "works_at", "Shopify")}
    assert (await llm_graph.get_profile(user_id="kim"))["profile"] == {"works_at": "Stripe"}
    prompt = fake_openai.chat_requests[-1]["json"]["messages"][0]["content"]
    assert "Relations: for each fact" in prompt
