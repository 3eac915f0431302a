"""The LoCoMo retrieval bench end to end (on a conversation made here), with LLM reranking
against the fake LLM server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from bench.locomo.data import Conversation, Question, Turn
from bench.locomo.retrieval import report, run

from tests.fakes.openai_server import FakeOpenAI

WHEN = "2023-05-08T13:56:00+00:00"
TURNS = [
    ("Ann", "I adopted a beagle called Rex last week!"),
    ("Bob", "Congrats! I started pottery classes in April."),
    ("Ann", "Rex loves the beach, we go every Sunday."),
    ("Bob", "My pottery teacher says my bowls are getting better."),
    ("Ann", "I also paint landscapes on weekends."),
    ("Bob", "I should try painting too."),
    *[("Ann" if i % 2 else "Bob", f"Small talk number {i} about the weather.") for i in range(12)],
]  # 18 turns: all of them among the 20 fused candidates the reranker sees
CONVERSATION = Conversation(
    0,
    ("Ann", "Bob"),
    [Turn(f"D1:{i + 1}", who, text, 1, WHEN) for i, (who, text) in enumerate(TURNS)],
    [
        Question("What does Bob make in his classes?", "bowls", ("D1:2", "D1:4"), 1),
        Question("Where does Ann's dog like to go?", "the beach", ("D1:3",), 4),
    ],
)


def test_rerank_reorders_what_the_bench_scores(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    favour = True  # the fake reranker scores the evidence turns up, or down

    def respond(body: dict[str, object]) -> str:
        user = body["messages"][1]["content"]  # type: ignore[index]
        lines = user.split("Memories:\n")[1].splitlines()
        assert all(re.match(r"\d+: \[2023-05-08\] (Ann|Bob): ", line) for line in lines)
        keys = ("bowls", "pottery") if "Bob" in user.split("\n")[0] else ("beach",)
        high, low = (1.0, 0.2) if favour else (0.0, 0.5)  # (evidence, other turns)
        scores = [
            {"id": int(line.split(":")[0]), "score": high if any(k in line for k in keys) else low}
            for line in lines
        ]
        return json.dumps({"scores": scores})

    fake_openai.responder = respond
    llm = {"model": "fake", "base_url": fake_openai.base_url, "api_key": "test-key"}
    hashing = {"provider": "hashing"}
    up = run([CONVERSATION], ["vector"], llm=llm, out=tmp_path, embedder=hashing)["vector"]
    assert len(fake_openai.chat_requests) == 2  # one rerank call per question
    assert [(r["category"], r["all@5"]) for r in up] == [(1, 1.0), (4, 1.0)]
    favour = False
    down = run([CONVERSATION], ["vector"], llm=llm, out=tmp_path, embedder=hashing)["vector"]
    assert [(r["all@5"], r["all@10"], r["all@20"]) for r in down] == [(0.0, 0.0, 1.0)] * 2
    plain = run([CONVERSATION], ["vector", "keyword"], out=tmp_path, embedder=hashing)
    assert len(fake_openai.chat_requests) == 4  # no LLM without --rerank
    assert {len(rows) for rows in plain.values()} == {2}


def test_the_bench_prints_what_the_llm_recipe_costs(
    fake_openai: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--recipes hybrid_llm`: each question's search splits it and reranks the merged results
    (two LLM calls); the bench prints the calls and tokens a search cost, and scores what the
    reranker put first."""

    def respond(body: dict[str, Any]) -> str:
        if body["response_format"]["json_schema"]["name"] == "decompose":
            return json.dumps({"queries": ["pottery bowls", "dog beach"]})
        lines = body["messages"][1]["content"].split("Memories:\n")[1].splitlines()
        keys = ("bowls", "pottery", "beach")
        return json.dumps({"scores": [
            {"id": int(line.split(":")[0]), "score": 0.9 if any(k in line for k in keys) else 0.1}
            for line in lines]})  # fmt: skip

    fake_openai.responder = respond
    llm = {"model": "fake", "base_url": fake_openai.base_url, "api_key": "test-key"}
    rows = run([CONVERSATION], ["hybrid_llm"], llm=llm, out=tmp_path,
               embedder={"provider": "hashing"})["hybrid_llm"]  # fmt: skip
    assert [r["llm_calls"] for r in rows] == [2, 2] and all(r["tokens"] > 0 for r in rows)
    assert len(fake_openai.chat_requests) == 4
    assert [r["all@5"] for r in rows] == [1.0, 1.0]
    report("hybrid_llm", rows)
    printed = capsys.readouterr().out
    assert re.search(r"LLM per search: 2\.00 calls, \d+ tokens", printed), printed
