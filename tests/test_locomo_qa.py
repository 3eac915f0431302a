"""The LoCoMo QA harness end to end against the fake LLM server (on a conversation made here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.locomo.data import Conversation, Question, Turn
from bench.locomo.metrics import bleu1, f1
from bench.locomo.qa import run, table

from engram.providers.llm.openai import OpenAILLM
from tests.fakes.openai_server import FakeOpenAI

WHEN = "2023-05-08T13:56:00+00:00"
CONVERSATION = Conversation(
    0,
    ("Ann", "Bob"),
    [
        Turn("D1:1", "Ann", "I adopted a beagle called Rex last week!", 1, WHEN),
        Turn("D1:2", "Bob", "Congrats! I started pottery classes in April.", 1, WHEN),
    ],
    [
        Question("What dog did Ann adopt?", "a beagle named Rex", ("D1:1",), 4),
        Question("When did Bob start pottery?", "April 2023", ("D1:2",), 2),
    ],
)


def test_metrics() -> None:
    assert f1("a beagle named Rex", "beagle named Rex") == 1.0
    assert f1("Rex", "a beagle named Rex") == pytest.approx(0.5)
    assert f1("cat", "dog") == 0.0
    assert bleu1("beagle Rex", "beagle named Rex") == pytest.approx(2 / 2 * 0.6065, rel=1e-3)


async def test_harness_end_to_end(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    def respond(body: dict[str, object]) -> str:
        messages = body["messages"]
        user = messages[1]["content"]  # type: ignore[index]
        if "Gold answer" in user:
            return json.dumps(
                {"label": "CORRECT" if "Rex" in user.split("Generated answer:")[1] else "WRONG"}
            )
        assert "Memories:" in user and "[2023-05-08]" in user
        return json.dumps({"answer": "a beagle named Rex" if "dog" in user else "May"})

    fake_openai.responder = respond
    llm = OpenAILLM(model="fake", base_url=fake_openai.base_url, api_key="test-key")
    rows, usage = await run([CONVERSATION], llm, llm, out=tmp_path, top_k=2)
    await llm.aclose()
    assert [(r.category, r.f1, r.correct) for r in rows] == [(4, 1.0, 1.0), (2, 0.0, 0.0)]
    assert usage.llm_calls == 4
    printed = table(rows)
    assert "single-hop" in printed and "overall" in printed
