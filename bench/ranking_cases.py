"""Ranking on small labelled scopes: tests/data/ranking_cases.jsonl, with and without leaving the
scope's subject out of the query (`pipeline.search`).

    .venv/bin/python bench/ranking_cases.py [--mode facts|verbatim] [--recipe hybrid] [--show]

Each case is one user's (or agent's) facts in its own scope, several of them naming the subject,
and queries with the facts that answer them; the cases are split in two halves (`split`: `dev`,
used while developing, and `test`, held out). `facts` stores each fact as an extractor would (its
text embedded as it is, through `engram.transfer.import_lines`); `verbatim` adds each one as a
user message with `infer=False` (embedded as `user: text`). Every query is searched in its case's
scope on the default MiniLM embedder; printed per half: MRR (1 / rank of the first answering
fact, 0 past the 10th), hit@1 and hit@3, for all queries and for those that name the subject.
`--show` lists the queries whose first answer moved.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engram import AsyncMemory
from engram.config import MemoryConfig
from engram.core.scope import resolve_filters
from engram.core.scoring import RECIPES
from engram.core.text import asks_to_avoid, subject_spans
from engram.pipeline.search import SearchRequest, run_search
from engram.pipeline.subject import subject_names
from engram.transfer import import_lines

CASES = Path(__file__).resolve().parents[1] / "tests" / "data" / "ranking_cases.jsonl"
TOP_K = 10
AT = "2026-01-01T00:00:00+00:00"


# (leave the subject out of the query, the recipe's stance weight is used)
CONFIGS = {"as asked": (False, False), "subject": (True, False), "subject+stance": (True, True)}


@dataclass
class Outcome:
    split: str
    query: str
    names_subject: bool
    avoiding: bool
    rank: dict[str, int | None]  # config -> rank of the first answering fact


def load(path: Path = CASES) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def fill(memory: AsyncMemory, cases: list[dict[str, Any]], mode: str) -> None:
    if mode == "verbatim":
        for case in cases:
            for fact in case["facts"]:
                await memory.add(fact, **case["scope"], infer=False)
        return
    lines = [
        json.dumps({
            "type": "memory", "id": str(uuid.uuid4()), "memory": fact,
            "hash": hashlib.md5(fact.encode()).hexdigest(), "created_at": AT, "updated_at": AT,
            **case["scope"],
        })
        for case in cases for fact in case["facts"]
    ]  # fmt: skip
    await import_lines(memory, lines)


def request(case: dict[str, Any], query: str, recipe: str, config: str) -> SearchRequest:
    subject, stance = CONFIGS[config]
    chosen = RECIPES[recipe] if stance else replace(RECIPES[recipe], stance=0.0)
    return SearchRequest(
        query=query, where=resolve_filters(None, **case["scope"]), top_k=TOP_K, threshold=None,
        recipe=chosen, explain=False, show_expired=False, subject=subject,
    )  # fmt: skip


async def measure(mode: str, recipe: str) -> list[Outcome]:
    cases = load()
    with tempfile.TemporaryDirectory() as home:
        async with AsyncMemory(MemoryConfig(data_dir=Path(home))) as memory:
            await fill(memory, cases, mode)
            ctx = await memory._open()
            outcomes = []
            for case in cases:
                for query in case["queries"]:
                    text, ranks = query["query"], {}
                    for config in CONFIGS:
                        found = await run_search(ctx, request(case, text, recipe, config))
                        texts = [hit["memory"] for hit in found["results"]]
                        ranks[config] = next(
                            (i + 1 for i, t in enumerate(texts) if t in query["relevant"]), None
                        )
                    asked = request(case, text, recipe, "subject")
                    names = await subject_names(ctx, asked.where, graph=asked.graph)
                    named = bool(subject_spans(text, names or []))
                    outcomes.append(Outcome(case["split"], text, named, asks_to_avoid(text), ranks))
    return outcomes


def figures(outcomes: list[Outcome], config: str) -> str:
    ranks = [o.rank[config] for o in outcomes]
    mrr = sum(1 / r for r in ranks if r) / len(ranks)
    hit1 = sum(r == 1 for r in ranks) / len(ranks)
    hit3 = sum(r is not None and r <= 3 for r in ranks) / len(ranks)
    return f"{mrr:.3f} {hit1:.3f} {hit3:.3f}"


SUBSETS: dict[str, Callable[[Outcome], bool]] = {
    "all": lambda o: True,
    "naming": lambda o: o.names_subject,
    "avoid": lambda o: o.avoiding,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["facts", "verbatim"], default="facts")
    parser.add_argument("--recipe", default="hybrid", choices=list(RECIPES))
    parser.add_argument("--show", action="store_true")
    args = parser.parse_args()
    outcomes = asyncio.run(measure(args.mode, args.recipe))
    print(f"mode {args.mode}, recipe {args.recipe}; MRR hit@1 hit@3 per configuration")
    print(f"{'half':4} {'queries':7} {'n':>4}  " + "  ".join(f"{c:>17}" for c in CONFIGS))
    for split in ("dev", "test"):
        for label, keep in SUBSETS.items():
            chosen = [o for o in outcomes if o.split == split and keep(o)]
            cells = "  ".join(figures(chosen, c) for c in CONFIGS)
            print(f"{split:4} {label:7} {len(chosen):4}  {cells}")
    if args.show:
        for o in outcomes:
            if len(set(o.rank.values())) > 1:
                moves = " -> ".join(str(o.rank[c]) for c in CONFIGS)
                print(f"  [{o.split}] {moves}  {o.query}")


if __name__ == "__main__":
    main()
