"""rerank=True: the configured reranker reorders the best fused candidates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from engram import AsyncMemory, Memory
from engram.errors import ValidationError
from engram.pipeline.rerank import LLMReranker
from engram.providers._http import RetryPolicy
from engram.providers.embedders.hashing import HashingEmbedder
from engram.providers.llm.base import Usage
from engram.providers.llm.openai import OpenAILLM
from engram.store.sqlite.store import SQLiteStore
from tests.fakes.openai_server import FakeOpenAI


async def test_llm_reranker_reorders_and_explains(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    llm = OpenAILLM(
        base_url=fake_openai.base_url, api_key="test-key", retry=RetryPolicy(max_retries=0)
    )
    memory = AsyncMemory(embedder=HashingEmbedder(128), store=SQLiteStore(tmp_path / "r.db"),
                         llm=llm, reranker=LLMReranker(llm))  # fmt: skip
    for text in ("Tea with lemon", "Tea with milk", "Coffee black"):
        await memory.add(text, user_id="a", infer=False)
    fused = (await memory.search("tea", user_id="a"))["results"]
    fake_openai.responder = lambda body: (
        '{"scores": ['
        + ", ".join(
            f'{{"id": {i}, "score": {0.9 if "milk" in line else 0.1}}}'
            for i, line in enumerate(
                body["messages"][1]["content"].split("Memories:\n")[1].splitlines()
            )
        )
        + "]}"
    )
    reranked = (await memory.search("tea", user_id="a", rerank=True, explain=True))["results"]
    assert reranked[0]["memory"] == "Tea with milk"
    assert reranked[0]["score"] == 0.9
    assert reranked[0]["explain"]["rerank"] == 0.9
    assert "fused" in reranked[0]["explain"]
    assert {r["memory"] for r in fused} == {r["memory"] for r in reranked}
    request = fake_openai.chat_requests[-1]["json"]
    assert request["response_format"]["json_schema"]["name"] == "rerank"
    shown = request["messages"][1]["content"].split("Memories:\n")[1].splitlines()
    assert all(re.fullmatch(r"\d: \[\d{4}-\d\d-\d\d\] Tea with \w+", s) for s in shown[:2])
    await memory.add({"role": "user", "name": "Ann", "content": "Tea at five"}, user_id="a",
                     infer=False, timestamp="2023-05-08T13:56:00Z")  # fmt: skip
    await memory.search("tea at five", user_id="a", rerank=True)
    assert (
        "[2023-05-08] Ann: Tea at five"
        in fake_openai.chat_requests[-1]["json"]["messages"][1]["content"]
    )
    await memory.close()


def test_rerank_without_a_reranker_says_so(memory: Memory) -> None:
    memory.add("Tea with lemon", user_id="a", infer=False)
    result = memory.search("tea", user_id="a", rerank=True)
    assert result["results"]
    assert "no reranker is configured" in result["warnings"][0]
    assert "warnings" not in memory.search("tea", user_id="a")


def test_reranker_from_config_uses_the_main_llm(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    config = {
        "data_dir": str(tmp_path), "embedder": {"provider": "hashing"},
        "llm": {"provider": "openai", "config": {"openai_base_url": fake_openai.base_url, "api_key": "test-key"}},
        "reranker": {"provider": "llm_reranker"},
    }  # fmt: skip
    with Memory.from_config(config) as memory:
        assert isinstance(memory.async_memory.reranker, LLMReranker)
        assert memory.async_memory.reranker.llm is memory.async_memory.extractor.llm  # type: ignore[attr-defined]


def test_a_reranker_with_its_own_llm_closes_it(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    llm = {
        "provider": "openai",
        "config": {"openai_base_url": fake_openai.base_url, "api_key": "k"},
    }
    config = {
        "data_dir": str(tmp_path), "embedder": {"provider": "hashing"}, "llm": llm,
        "reranker": {"provider": "llm_reranker", "config": {"llm": llm}},
    }  # fmt: skip
    memory = Memory.from_config(config)
    reranker = memory.async_memory.reranker
    assert isinstance(reranker, LLMReranker)
    assert reranker.llm is not memory.async_memory.extractor.llm  # type: ignore[attr-defined]
    memory.close()
    assert reranker.llm._client.is_closed  # type: ignore[attr-defined]


def test_a_reranker_without_aclose_is_fine(tmp_path: Path) -> None:
    class Constant:
        name = "constant"

        async def scores(self, query: str, documents: list[str], usage: Usage) -> list[float]:
            return [0.5] * len(documents)

    memory = Memory(embedder=HashingEmbedder(32), store=SQLiteStore(tmp_path / "r.db"),
                    reranker=Constant())  # fmt: skip
    memory.add("Likes tea", user_id="a", infer=False)
    assert memory.search("tea", user_id="a", rerank=True)["results"][0]["score"] == 0.5
    memory.close()


async def test_the_hybrid_llm_recipe_splits_searches_and_reranks(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    """`recipe="hybrid_llm"`: one LLM call splits the query, each part is searched, the merged
    results are reranked by a second call; the result says what the search cost."""
    llm = OpenAILLM(
        base_url=fake_openai.base_url, api_key="test-key", retry=RetryPolicy(max_retries=0)
    )
    memory = AsyncMemory(embedder=HashingEmbedder(128), store=SQLiteStore(tmp_path / "l.db"),
                         llm=llm)  # fmt: skip
    for text in ("Went camping with the kids in June", "Took the family to the pottery class",
                 "Painted a sunrise alone", "Bought new running shoes"):  # fmt: skip
        await memory.add(text, user_id="m", infer=False)

    def answer(body: dict[str, Any]) -> str:
        schema = body["response_format"]["json_schema"]["name"]
        if schema == "decompose":
            return json.dumps({"queries": ["camping trip", "pottery class", "camping trip"]})
        lines = body["messages"][1]["content"].split("Memories:\n")[1].splitlines()
        return json.dumps({"scores": [
            {"id": i, "score": 0.95 if ("camping" in line or "pottery" in line) else 0.05}
            for i, line in enumerate(lines)]})  # fmt: skip

    fake_openai.responder = answer
    found = await memory.search("What has the family done together?", user_id="m", top_k=2,
                                recipe="hybrid_llm", explain=True)  # fmt: skip
    assert {r["memory"] for r in found["results"]} == {
        "Went camping with the kids in June", "Took the family to the pottery class"}  # fmt: skip
    assert found["results"][0]["explain"]["queries"] == [
        "What has the family done together?", "camping trip", "pottery class"]  # fmt: skip
    assert found["results"][0]["explain"]["rerank"] == 0.95
    assert found["usage"]["llm_calls"] == 2 and found["usage"]["prompt_tokens"] == 200
    names = [r["json"]["response_format"]["json_schema"]["name"] for r in fake_openai.chat_requests]
    assert names[-2:] == ["decompose", "rerank"]
    await memory.close()


def test_the_hybrid_llm_recipe_needs_an_llm(memory: Memory) -> None:
    memory.add("Tea with lemon", user_id="a", infer=False)
    with pytest.raises(ValidationError, match="needs an LLM"):
        memory.search("tea", user_id="a", recipe="hybrid_llm")
