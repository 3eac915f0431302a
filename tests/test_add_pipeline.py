"""add(infer=True) with an LLM (the fake server over real HTTP): one call, reconciliation, safety."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from engram import AsyncMemory, LLMError
from engram.providers._http import RetryPolicy
from engram.providers.embedders.hashing import HashingEmbedder
from engram.providers.llm.openai import OpenAILLM
from tests.conftest import Backend
from tests.fakes.openai_server import FakeOpenAI

FAST = RetryPolicy(max_retries=1, backoff=0.01)


def fact(text: str, event: str = "ADD", id: int | None = None, **kw: Any) -> dict[str, Any]:
    return {"text": text, "event": event, "id": id, **kw}


@pytest.fixture
async def mem(fake_openai: FakeOpenAI, backend: Backend) -> AsyncIterator[AsyncMemory]:
    llm = OpenAILLM(model="gpt-test", base_url=fake_openai.base_url, api_key="test-key", retry=FAST)
    clock = lambda: datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # noqa: E731
    memory = AsyncMemory(embedder=HashingEmbedder(256), store=backend(), llm=llm, clock=clock)
    yield memory
    await memory.close()


def user_prompt(fake: FakeOpenAI, index: int = -1) -> str:
    return str(fake.chat_requests[index]["json"]["messages"][1]["content"])


async def test_one_call_extracts_and_reports_usage(
    fake_openai: FakeOpenAI, mem: AsyncMemory
) -> None:
    fake_openai.reply(
        {"facts": [fact("Dislikes thriller movies", categories=["entertainment"]), fact("Loves sci-fi movies")]},
        prompt_tokens=800, completion_tokens=60,
    )  # fmt: skip
    result = await mem.add("I'm not a big fan of thriller movies but I love sci-fi", user_id="alex")
    assert [(r["memory"], r["event"]) for r in result["results"]] == [
        ("Dislikes thriller movies", "ADD"),
        ("Loves sci-fi movies", "ADD"),
    ]
    usage = result["usage"]
    assert (usage["llm_calls"], usage["prompt_tokens"], usage["completion_tokens"]) == (1, 800, 60)
    assert usage["embedding_calls"] == 2
    assert usage["extractor"] == "llm:gpt-test"
    stored = (await mem.get_all(user_id="alex"))["results"]
    assert {r["memory"]: r["categories"] for r in stored}["Dislikes thriller movies"] == [
        "entertainment"
    ]
    assert "Today: 2026-03-10" in user_prompt(fake_openai)


async def test_update_and_delete_keep_history(fake_openai: FakeOpenAI, mem: AsyncMemory) -> None:
    fake_openai.reply({"facts": [fact("Loves chicken dishes"), fact("Lives in Porto")]})
    first = await mem.add("I love chicken dishes. I live in Porto.", user_id="alex")
    ids = {r["memory"]: r["id"] for r in first["results"]}
    fake_openai.reply(
        {"facts": [fact("Is vegetarian", "UPDATE", 0), fact("Lives in Porto", "DELETE", 1)]}
    )
    second = await mem.add("I've turned vegetarian and I moved out of Porto.", user_id="alex")
    prompt = user_prompt(fake_openai)
    assert "0: " in prompt and "1: " in prompt
    assert ids["Loves chicken dishes"] not in prompt  # short integer ids, never UUIDs
    shown = [line.split(": ", 1)[1] for line in prompt.splitlines() if line[:3] in ("0: ", "1: ")]
    events = {r["event"]: r for r in second["results"]}
    updated_id = ids[shown[0]]
    assert events["UPDATE"]["id"] == updated_id
    assert events["UPDATE"]["previous_memory"] == shown[0]
    assert events["DELETE"]["id"] == ids[shown[1]]
    history = await mem.history(updated_id)
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in history][-1] == (
        "UPDATE", shown[0], "Is vegetarian",
    )  # fmt: skip
    assert [h["event"] for h in await mem.history(ids[shown[1]])] == ["ADD", "DELETE"]


async def test_an_update_takes_the_adds_metadata_and_keeps_the_rest(
    fake_openai: FakeOpenAI, mem: AsyncMemory
) -> None:
    fake_openai.reply({"facts": [fact("Lives in Leeds")]})
    first = await mem.add(
        "I live in Leeds", user_id="priya", metadata={"turn": 3, "source": "chat"}
    )
    fake_openai.reply({"facts": [fact("Lives in York", "UPDATE", 0)]})
    await mem.add("I moved to York", user_id="priya", metadata={"turn": 4, "session": "b"})
    updated = await mem.get(first["results"][0]["id"])
    assert updated is not None and updated["memory"] == "Lives in York"
    # mem0 replaces the metadata with the add's, losing "source"; here it is kept
    assert updated["metadata"] == {"turn": 4, "source": "chat", "session": "b"}
    fake_openai.reply({"facts": [fact("Lives in Bath", "UPDATE", 0)]})
    await mem.add("Actually I moved to Bath", user_id="priya")  # no metadata: all kept
    again = await mem.get(first["results"][0]["id"])
    assert again is not None and again["metadata"] == updated["metadata"]


async def test_immutable_memories_are_never_changed(
    fake_openai: FakeOpenAI, mem: AsyncMemory
) -> None:
    await mem.add("Blood type is O+", user_id="alex", infer=False, immutable=True)
    fake_openai.reply({"facts": [fact("Blood type is A+", "UPDATE", 0), fact("x", "DELETE", 0)]})
    result = await mem.add("My blood type is A+ now", user_id="alex")
    assert [r["event"] for r in result["results"]] == ["ADD"]
    assert any("immutable" in w for w in result["warnings"])
    texts = {r["memory"] for r in (await mem.get_all(user_id="alex"))["results"]}
    assert texts == {"Blood type is O+", "Blood type is A+"}


async def test_bad_output_or_failing_provider_writes_nothing(
    fake_openai: FakeOpenAI, mem: AsyncMemory
) -> None:
    await mem.add("Seed memory", user_id="alex", infer=False)
    fake_openai.reply("not json", '{"facts": [{"text": "x", "event": "SOMETIMES"}]}')
    with pytest.raises(LLMError):
        await mem.add("I moved to Rome", user_id="alex")
    fake_openai.fail(500, times=2)
    with pytest.raises(LLMError):
        await mem.add("I moved to Rome", user_id="alex")
    assert (await mem.get_all(user_id="alex"))["total"] == 1
    fake_openai.reply({"facts": [fact("Lives in Rome")]})
    await mem.add("I moved to Rome", user_id="alex")
    earlier = user_prompt(fake_openai).split("NEW messages:")[0]
    assert "user: Seed memory" in earlier
    assert "I moved to Rome" not in earlier  # the failed adds kept no messages


async def test_parallel_adds_of_one_fact_store_it_once(
    fake_openai: FakeOpenAI, mem: AsyncMemory
) -> None:
    fake_openai.responder = lambda body: (
        '{"facts": [{"text": "Owns a cat named Miso", "event": "ADD"}]}'
    )
    await asyncio.gather(*(mem.add("I have a cat named Miso", user_id="alex") for _ in range(6)))
    assert (await mem.get_all(user_id="alex"))["total"] == 1
    fake_openai.responder = lambda body: (
        '{"facts": [{"text": "owns a cat named Miso.", "event": "ADD"}]}'
    )
    result = await mem.add("My cat is called Miso", user_id="alex")
    assert result["results"] == []  # near-duplicate of the stored fact
    assert (await mem.get_all(user_id="alex"))["total"] == 1


async def test_user_and_agent_facts_belong_to_each(
    fake_openai: FakeOpenAI, mem: AsyncMemory
) -> None:
    fake_openai.reply({"facts": [fact("Likes hiking"), fact("Is called Ada", about="agent")]})
    await mem.add(
        [{"role": "user", "content": "I like hiking"}, {"role": "assistant", "content": "I'm Ada"}],
        user_id="alex", agent_id="ada",
    )  # fmt: skip
    assert "about the agent" in fake_openai.chat_requests[-1]["json"]["messages"][0]["content"]
    user = (await mem.get_all(user_id="alex"))["results"]
    agent = (await mem.get_all(agent_id="ada"))["results"]
    assert [(r["memory"], r.get("agent_id")) for r in user] == [("Likes hiking", None)]
    assert [(r["memory"], r.get("user_id")) for r in agent] == [("Is called Ada", None)]


async def test_options_shape_the_prompt(fake_openai: FakeOpenAI, mem: AsyncMemory) -> None:
    fake_openai.reply(
        {"facts": [fact("Plans a trip to Japan in April 2025", categories=["trips", "food"])]}
    )
    result = await mem.add(
        "I'm going to Japan next month",
        user_id="alex",
        timestamp="2025-03-15T09:00:00Z",
        custom_categories=[{"trips": "travel plans"}],
        includes="travel",
        excludes="health",
        custom_instructions="Write facts in English.",
        prompt="Focus on dates.",
        metadata={"source": "chat"},
    )
    system = fake_openai.chat_requests[-1]["json"]["messages"][0]["content"]
    assert "Categories, any that fit: trips." in system
    for text in ("Only remember facts about: travel", "Never remember facts about: health",
                 "Write facts in English.", "Focus on dates.", "2025-03-15"):  # fmt: skip
        assert text in system
    item = await mem.get(result["results"][0]["id"])
    assert item is not None
    assert item["categories"] == ["trips"]  # unknown categories dropped
    assert item["created_at"].startswith("2025-03-15T09:00:00")
    assert item["metadata"] == {"source": "chat"}


async def test_recent_messages_are_context_for_the_next_add(
    fake_openai: FakeOpenAI, mem: AsyncMemory
) -> None:
    fake_openai.reply({"facts": []}, {"facts": []})
    await mem.add([{"role": "user", "content": "My sister is Maria"}], user_id="alex")
    await mem.add([{"role": "user", "content": "She visits in May"}], user_id="alex")
    prompt = user_prompt(fake_openai)
    context, new = prompt.split("NEW messages:")
    assert "user: My sister is Maria" in context
    assert "She visits in May" in new


async def test_procedural_memory_is_one_llm_summary(
    fake_openai: FakeOpenAI, mem: AsyncMemory
) -> None:
    fake_openai.reply({"summary": "Task: book a flight. 1. Searched flights: found LH123."})
    steps = [
        {"role": "user", "content": "Book me a flight"},
        {"role": "assistant", "content": "Found LH123"},
    ]
    result = await mem.add(steps, agent_id="travel-bot", memory_type="procedural_memory")
    (item,) = result["results"]
    stored = await mem.get(item["id"])
    assert stored is not None
    assert stored["memory"].startswith("Task: book a flight")
    assert stored["memory_type"] == "procedural_memory"
    assert result["usage"]["llm_calls"] == 1


async def test_infer_false_makes_no_llm_call(fake_openai: FakeOpenAI, mem: AsyncMemory) -> None:
    result = await mem.add("Verbatim note", user_id="alex", infer=False)
    assert result["usage"]["llm_calls"] == 0
    assert fake_openai.chat_requests == []


async def test_a_named_speakers_facts_are_said_by_them(
    fake_openai: FakeOpenAI, mem: AsyncMemory
) -> None:
    """The LLM's facts from a turn of one named speaker have that speaker as `actor_id`, as the
    offline extractor's do; a conversation of several speakers leaves it unset."""
    fake_openai.reply({"facts": [fact("Maria took a creative writing class")]})
    message = {"role": "user", "content": "I took a creative writing class!", "name": "Maria"}
    await mem.add(message, user_id="chat")
    fake_openai.reply({"facts": [fact("John and Maria met in Paris")]})
    both = [message, {"role": "user", "content": "We met in Paris.", "name": "John"}]
    await mem.add(both, user_id="chat")
    stored = (await mem.get_all(user_id="chat"))["results"]
    assert {r["memory"]: r.get("actor_id") for r in stored} == {
        "Maria took a creative writing class": "Maria",
        "John and Maria met in Paris": None,
    }
