"""LoCoMo QA harness (the mem0 paper's protocol): retrieve, answer with an LLM, score.

    .venv/bin/python -m bench.locomo.qa --base-url https://api.openai.com/v1 --model gpt-4.1-mini \
        [--api-key ... | OPENAI_API_KEY] [--judge-model ...] [--recipe hybrid] [--top-k 10] \
        [--conversations 5] [--mode raw|extracted]

Each conversation is stored as in `retrieval.py`; for each question (category 5 excluded) the
top-k memories, with their dates and speakers, go to the answering LLM; the answer is scored
against the gold answer by token F1, BLEU-1 and an LLM judge (CORRECT / WRONG). Prints a table
per category and overall. Any OpenAI-compatible endpoint works; it needs one (none is reachable
from the machines this project is built on, so the code path is tested against a fake server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.locomo import prompts
from bench.locomo.data import CATEGORIES, Conversation, load
from bench.locomo.metrics import bleu1, f1
from bench.locomo.retrieval import store
from engram import Memory
from engram.providers.llm.base import LLM, Usage
from engram.providers.llm.openai import OpenAILLM

OUT = Path(__file__).resolve().parents[1] / "out" / "locomo-qa"


@dataclass
class Scored:
    category: int
    f1: float
    bleu1: float
    correct: float


def context(item: Mapping[str, Any]) -> str:
    speaker = item.get("actor_id") or item.get("role") or "someone"
    return f"[{item['created_at'][:10]}] {speaker}: {item['memory']}"


async def answer_all(
    memory: Memory,
    conv: Conversation,
    answerer: LLM,
    judge: LLM,
    *,
    recipe: str,
    top_k: int,
    usage: Usage,
) -> list[Scored]:
    scored = []
    for question in conv.questions:
        found = memory.search(
            question.text, user_id=f"conv-{conv.index}", top_k=top_k, recipe=recipe
        )
        memories = [context(item) for item in found["results"]]
        reply = await answerer.generate(prompts.answer(question.text, memories), usage=usage)
        verdict = await judge.generate(
            prompts.judge(question.text, question.answer, reply.answer), usage=usage
        )
        scored.append(
            Scored(
                question.category,
                f1(reply.answer, question.answer),
                bleu1(reply.answer, question.answer),
                float(verdict.label == "CORRECT"),
            )
        )
    return scored


def table(rows: list[Scored]) -> str:
    lines = [f"{'category':<12} |  n  |  F1   | BLEU-1 | judge"]
    groups = [(name, [r for r in rows if r.category == c]) for c, name in CATEGORIES.items()]
    for name, group in [*groups, ("overall", rows)]:
        if group:
            lines.append(
                f"{name:<12} | {len(group):>3} | {statistics.mean(r.f1 for r in group):.3f} | "
                f"{statistics.mean(r.bleu1 for r in group):.3f}  | "
                f"{statistics.mean(r.correct for r in group):.3f}"
            )
    return "\n".join(lines)


async def run(
    conversations: list[Conversation],
    answerer: LLM,
    judge: LLM,
    *,
    mode: str = "raw",
    recipe: str = "hybrid",
    top_k: int = 10,
    out: Path = OUT,
) -> tuple[list[Scored], Usage]:
    """Store and question each conversation; the LLMs' clients live in the caller's loop."""
    usage = Usage()
    rows: list[Scored] = []
    for conv in conversations:
        data_dir = out / mode / f"conv-{conv.index}"
        shutil.rmtree(data_dir, ignore_errors=True)
        with Memory({"data_dir": str(data_dir), "llm": {"provider": "offline"}}) as memory:
            store(memory, conv, mode)
            rows += await answer_all(
                memory, conv, answerer, judge, recipe=recipe, top_k=top_k, usage=usage
            )
    return rows, usage


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--base-url", default=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
    )
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    parser.add_argument("--model", default="gpt-4.1-mini")
    parser.add_argument("--judge-model", default=None)
    parser.add_argument("--recipe", default="hybrid")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--mode", choices=("raw", "extracted"), default="raw")
    parser.add_argument("--conversations", type=int, default=None)
    args = parser.parse_args()
    answerer = OpenAILLM(
        model=args.model, base_url=args.base_url, api_key=args.api_key, temperature=0.0
    )
    judge = OpenAILLM(model=args.judge_model or args.model, base_url=args.base_url,
                      api_key=args.api_key, temperature=0.0)  # fmt: skip
    rows, usage = asyncio.run(
        run(load(limit=args.conversations), answerer, judge, mode=args.mode,
            recipe=args.recipe, top_k=args.top_k)
    )  # fmt: skip
    print(f"model {args.model}, recipe {args.recipe}, top_k {args.top_k}, mode {args.mode}")
    print(table(rows))
    print(f"LLM calls {usage.llm_calls}, prompt tokens {usage.prompt_tokens}, "
          f"completion tokens {usage.completion_tokens}")  # fmt: skip


if __name__ == "__main__":
    main()
