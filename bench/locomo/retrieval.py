"""LoCoMo retrieval benchmark: evidence recall of search over stored conversations.

    .venv/bin/python -m bench.locomo.retrieval [--mode raw|extracted] [--recipes vector,hybrid,...]
        [--rerank --base-url URL --api-key KEY --model NAME]

Every turn is stored through the public API (`add`, speaker as `name`, session date as
`timestamp`): `raw` stores turns verbatim (`infer=False`); `extracted` stores what the offline
extractor makes of each turn. Each question (category 5, adversarial, excluded) is searched in
its conversation's scope; a result counts for the turns it came from. Printed: all@k (every
evidence turn in the top k) and any@k (at least one), k = 5, 10, 20, per category, per recipe,
and time per query. `--rerank` has an LLM (any OpenAI-compatible endpoint) rerank each recipe's
best fused candidates (`search(rerank=True)` with the `llm_reranker`); with the same endpoint,
`--recipes hybrid_llm` measures the recipe that splits each question and reranks (its LLM calls
and tokens per search are printed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.locomo.data import CATEGORIES, Conversation, load
from engram import Memory

KS = (5, 10, 20)
OUT = Path(__file__).resolve().parents[1] / "out" / "locomo"


def store(memory: Memory, conv: Conversation, mode: str) -> None:
    user = f"conv-{conv.index}"
    if mode == "raw":
        by_session: dict[int, list[Any]] = defaultdict(list)
        for turn in conv.turns:
            by_session[turn.session].append(turn)
        for turns in by_session.values():
            for turn in turns:  # one add per turn: each keeps its own dia_id
                memory.add(
                    {"role": "user", "content": turn.text, "name": turn.speaker},
                    user_id=user, infer=False, timestamp=turn.when,
                    metadata={"dia_id": turn.dia_id, "session": turn.session},
                )  # fmt: skip
        return
    for turn in conv.turns:
        memory.add(
            {"role": "user", "content": turn.text, "name": turn.speaker},
            user_id=user, timestamp=turn.when, metadata={"dia_id": turn.dia_id},
        )  # fmt: skip


def evaluate(
    memory: Memory,
    conv: Conversation,
    recipe: str,
    rows: list[dict[str, Any]],
    *,
    rerank: bool = False,
) -> None:
    user = f"conv-{conv.index}"
    for question in conv.questions:
        start = time.perf_counter()
        found = memory.search(
            question.text, user_id=user, top_k=max(KS), recipe=recipe, rerank=rerank
        )
        if rerank and "warnings" in found:
            raise RuntimeError(f"reranking was not applied: {found['warnings']}")
        elapsed = (time.perf_counter() - start) * 1000
        ranked: list[str] = []
        for item in found["results"]:
            dia = item["metadata"].get("dia_id")
            if dia and dia not in ranked:
                ranked.append(dia)
        evidence = set(question.evidence)
        usage = found.get("usage", {})
        tokens = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
        row = {"category": question.category, "ms": elapsed,
               "llm_calls": usage.get("llm_calls", 0), "tokens": tokens}  # fmt: skip
        for k in KS:
            top = set(ranked[:k])
            row[f"all@{k}"] = float(evidence <= top)
            row[f"any@{k}"] = float(bool(evidence & top))
        rows.append(row)


def report(recipe: str, rows: list[dict[str, Any]]) -> None:
    print(f"\nrecipe {recipe}: {len(rows)} questions, "
          f"{statistics.median(r['ms'] for r in rows):.1f} ms median per query")  # fmt: skip
    if any(r["llm_calls"] for r in rows):  # a recipe that asks the LLM: what each search cost
        print(f"LLM per search: {statistics.mean(r['llm_calls'] for r in rows):.2f} calls, "
              f"{statistics.mean(r['tokens'] for r in rows):.0f} tokens")  # fmt: skip
    header = " | ".join(f"{m}@{k}" for m in ("all", "any") for k in KS)
    print(f"{'category':<12} |  n  | {header}")
    groups = [(name, [r for r in rows if r["category"] == c]) for c, name in CATEGORIES.items()]
    for name, group in [*groups, ("overall", rows)]:
        if not group:  # no question of that category among those asked
            print(f"{name:<12} | {0:>3} | " + " | ".join(["  -"] * len(KS) * 2))
            continue
        cells = " | ".join(
            f"{statistics.mean(r[f'{m}@{k}'] for r in group):.3f}"
            for m in ("all", "any")
            for k in KS
        )
        print(f"{name:<12} | {len(group):>3} | {cells}")


def run(
    conversations: list[Conversation],
    recipes: list[str],
    *,
    mode: str = "raw",
    graph: bool = False,
    llm: Mapping[str, object] | None = None,
    out: Path = OUT,
    embedder: Mapping[str, object] | None = None,
    database_url: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Store each conversation and search its questions with each recipe; with `llm` (an
    OpenAI-compatible provider's config), the results are reranked by that LLM. The embedder is
    the default (MiniLM) unless one is given. With `database_url`, the stores are projects of
    that PostgreSQL database (emptied first) instead of SQLite files."""
    results: dict[str, list[dict[str, Any]]] = {r: [] for r in recipes}
    counts: list[int] = []
    for conv in conversations:
        data_dir = out / mode / f"conv-{conv.index}"
        shutil.rmtree(data_dir, ignore_errors=True)
        config: dict[str, object] = {"data_dir": str(data_dir), "llm": {"provider": "offline"}}
        if llm is not None:
            config["llm"] = {"provider": "openai", "config": llm}
            config["reranker"] = {"provider": "llm_reranker"}
        if graph:
            config["graph_store"] = {"provider": "sqlite"}
        if embedder is not None:
            config["embedder"] = embedder
        if database_url is not None:
            config["vector_store"] = {"provider": "pgvector", "config": {
                "connection_string": database_url, "collection_name": f"locomo-{mode}-{conv.index}",
            }}  # fmt: skip
        with Memory(config) as memory:
            memory.reset()
            store(memory, conv, mode)
            stored = memory.get_all(user_id=f"conv-{conv.index}", limit=100_000)["results"]
            counts.append(len(stored))
            for recipe, rows in results.items():
                evaluate(memory, conv, recipe, rows, rerank=llm is not None)
    turns = [len(c.turns) for c in conversations]
    print(f"memories stored per conversation ({mode}): {counts} for {turns} turns "
          f"({sum(counts) / sum(turns):.2f} per turn)")  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("raw", "extracted"), default="raw")
    parser.add_argument("--recipes", default="vector")
    parser.add_argument("--conversations", type=int, default=None)
    parser.add_argument("--graph", action="store_true", help="graph memory on (extracted mode)")
    parser.add_argument("--rerank", action="store_true", help="rerank with an LLM (see below)")
    parser.add_argument(
        "--base-url", default=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
    )
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    parser.add_argument("--model", default="gpt-4.1-mini")
    parser.add_argument("--database-url", help="store in this PostgreSQL database (pgvector)")
    parser.add_argument(
        "--precision", choices=("auto", "fp32", "int8"), default="auto", help="MiniLM's graph"
    )
    args = parser.parse_args()
    conversations = load(limit=args.conversations)
    llm = None
    if args.rerank:
        llm = {"model": args.model, "base_url": args.base_url, "api_key": args.api_key or "",
               "temperature": 0.0}  # fmt: skip
    embedder = {"provider": "minilm", "config": {"precision": args.precision}}
    results = run(conversations, args.recipes.split(","), mode=args.mode, graph=args.graph,
                  llm=llm, database_url=args.database_url, embedder=embedder)  # fmt: skip
    turns = sum(len(c.turns) for c in conversations)
    print(f"MiniLM precision {args.precision}, mode {args.mode}: {turns} turns, "
          f"{len(conversations)} conversations")  # fmt: skip
    for recipe, rows in results.items():
        report(recipe + (f" + rerank ({args.model})" if llm else ""), rows)


if __name__ == "__main__":
    main()
