"""Leave-one-conversation-out cross-validation of the search recipe's weights on LoCoMo (issue 18).

    .venv/bin/python -m bench.locomo.cv [--mode raw|extracted|both] [--conversations 5]
        [--grid coarse|...]

Every conversation is stored once (as `bench.locomo.retrieval` stores it). Each setting of a grid
(the weights of `vector`, `keyword`, `speaker`, `recency`, `neighbours`, `time`, `detail` and
`names`; a grid may leave some at the default recipe's values) is scored on every conversation
(all@10 of each question). Then, for each conversation in turn, the setting with the best
all@10 on the other four is chosen and scored on the held-out one (`--mode both`: each
conversation stored both ways, verbatim and through the offline extractor, and settings chosen
by the mean of the two all@10). Printed:

- the cross-validated figures (each conversation scored by the setting chosen without it), per
  category and overall, beside the in-sample figures of the default recipe and of the grid's best
  setting (chosen and scored on all five: the optimistic figure tuning on the test data gives);
- the setting each fold chose, so a stable choice can be told from one that follows the data.

A ranking change is judged by the cross-validated figure. The grid's recipes are registered in
`engram.core.scoring.RECIPES` under `cv-<n>` names for this process only.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import time
from dataclasses import replace
from typing import Any

from bench.locomo.data import CATEGORIES, Conversation, load
from bench.locomo.retrieval import KS, OUT, store
from engram import Memory
from engram.core.scoring import DEFAULT_RECIPE, RECIPES, Recipe

K = 10
GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "coarse": {"vector": (0.3, 0.45, 0.6), "speaker": (0.0, 0.16, 0.3),
               "recency": (0.0, 0.05), "neighbours": (0.0, 0.15, 0.3)},
    "wide": {"vector": (0.3, 0.4, 0.5), "speaker": (0.1, 0.2, 0.3, 0.4),
             "recency": (0.0, 0.05), "neighbours": (0.15, 0.3, 0.45)},
    "fine": {"vector": (0.3, 0.38, 0.46, 0.54, 0.62), "speaker": (0.0, 0.08, 0.16, 0.24),
             "recency": (0.0, 0.05, 0.1), "neighbours": (0.0, 0.1, 0.15, 0.2, 0.3)},
    "time": {"time": (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)},
    "coarse-time": {"vector": (0.3, 0.45, 0.6), "speaker": (0.0, 0.16, 0.3),
                    "recency": (0.0, 0.05), "neighbours": (0.0, 0.15, 0.3),
                    "time": (0.0, 0.1, 0.2)},
    # recency held at the default's 0.05, or a tie-breaker (0.005 puts the newer of two equal
    # memories first): LoCoMo never prefers newer facts, applications do
    "coarse-time-recency": {"vector": (0.3, 0.45, 0.6), "speaker": (0.0, 0.16, 0.3),
                            "neighbours": (0.0, 0.15, 0.3), "time": (0.0, 0.1, 0.2)},
    "coarse-time-tiebreak": {"vector": (0.3, 0.45, 0.6), "speaker": (0.0, 0.16, 0.3),
                             "recency": (0.0, 0.005), "neighbours": (0.0, 0.15, 0.3),
                             "time": (0.0, 0.1, 0.2)},
    # how much a memory states (`detail`), its share taken from the others alike
    "detail": {"detail": (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)},
    "coarse-detail": {"vector": (0.45, 0.6), "speaker": (0.16, 0.3), "recency": (0.005,),
                      "neighbours": (0.15, 0.3), "time": (0.1, 0.2),
                      "detail": (0.0, 0.1, 0.15, 0.2, 0.25)},
    # the lift of a memory that names something, for a query that asks for a name
    "names": {"names": (0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2)},
    "detail-names": {"detail": (0.0, 0.1, 0.2, 0.3), "names": (0.0, 0.05, 0.1, 0.15)},
}  # fmt: skip
KNOBS = ("vector", "speaker", "recency", "neighbours", "time", "detail", "names")


def settings(grid: dict[str, tuple[float, ...]]) -> list[Recipe]:
    """The grid's recipes (a knob the grid leaves out keeps the default recipe's value):
    `keyword` takes what the others leave of 1 (at least 0.1)."""
    base = RECIPES[DEFAULT_RECIPE]
    detail = base.weights.get("detail", 0.0)  # the others' ratios are read without its share
    default = {**{k: base.weights.get(k, 0.0) / (1 - detail)
                  for k in ("vector", "speaker", "recency")}, "detail": detail,
               "neighbours": base.neighbours, "time": base.time, "names": base.names}  # fmt: skip
    out: list[Recipe] = []
    for values in itertools.product(*(grid.get(n, (default[n],)) for n in KNOBS)):
        chosen = dict(zip(KNOBS, values, strict=True))
        keyword = round(1 - chosen["vector"] - chosen["speaker"] - chosen["recency"], 4)
        if keyword < 0.1:
            continue
        weights = {"vector": chosen["vector"], "keyword": keyword, "speaker": chosen["speaker"],
                   "recency": chosen["recency"]}  # fmt: skip
        if chosen["detail"]:  # its share is taken from the others alike: their ratios stay
            weights = {k: round(v * (1 - chosen["detail"]), 4) for k, v in weights.items()}
            weights["detail"] = chosen["detail"]
        name = f"cv-{len(out)}"
        out.append(replace(base, name=name, weights={k: v for k, v in weights.items() if v},
                           neighbours=chosen["neighbours"], time=chosen["time"],
                           names=chosen["names"]))  # fmt: skip
    return out


def score(memory: Memory, conv: Conversation, recipe: str) -> list[tuple[int, float]]:
    """(category, all@K) of each question of the conversation: every evidence turn among the
    first K distinct turns of the best max(KS) results, as `bench.locomo.retrieval` counts."""
    user = f"conv-{conv.index}"
    rows = []
    for question in conv.questions:
        found = memory.search(question.text, user_id=user, top_k=max(KS), recipe=recipe)
        ranked: list[str] = []
        for item in found["results"]:
            dia = item["metadata"].get("dia_id")
            if dia and dia not in ranked:
                ranked.append(dia)
        rows.append((question.category, float(set(question.evidence) <= set(ranked[:K]))))
    return rows


def mean(rows: list[tuple[int, float]], category: int | None = None) -> float:
    values = [v for c, v in rows if category is None or c == category]
    return statistics.mean(values) if values else float("nan")


def describe(recipe: Recipe) -> str:
    w = recipe.weights
    return (f"vector {w.get('vector', 0):.2f} keyword {w.get('keyword', 0):.2f} "
            f"speaker {w.get('speaker', 0):.2f} recency {w.get('recency', 0):.2f} "
            f"neighbours {recipe.neighbours:.2f} time {recipe.time:.2f} "
            f"detail {w.get('detail', 0):.2f} names {recipe.names:.2f}")  # fmt: skip


def table(rows_by_name: dict[str, list[tuple[int, float]]]) -> None:
    cats = list(CATEGORIES.items())
    print("| figure | " + " | ".join(name for _, name in cats) + " | overall |")
    print("|---|" + "---|" * (len(cats) + 1))
    for label, rows in rows_by_name.items():
        cells = " | ".join(f"{mean(rows, c):.3f}" for c, _ in cats)
        print(f"| {label} | {cells} | {mean(rows):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("raw", "extracted", "both"), default="raw")
    parser.add_argument("--conversations", type=int, default=None)
    parser.add_argument("--grid", choices=tuple(GRIDS), default="coarse")
    args = parser.parse_args()
    conversations = load(limit=args.conversations)
    grid = settings(GRIDS[args.grid])
    for recipe in grid:
        RECIPES[recipe.name] = recipe
    names = [DEFAULT_RECIPE, *(r.name for r in grid)]
    modes = ["raw", "extracted"] if args.mode == "both" else [args.mode]
    # results[mode][name][conversation index] -> rows
    results: dict[str, dict[str, dict[int, list[tuple[int, float]]]]] = {
        m: {n: {} for n in names} for m in modes
    }
    began = time.perf_counter()
    for conv in conversations:
        for mode in modes:
            data_dir = OUT / f"cv-{mode}" / f"conv-{conv.index}"
            shutil.rmtree(data_dir, ignore_errors=True)
            config: dict[str, Any] = {"data_dir": str(data_dir), "llm": {"provider": "offline"}}
            with Memory(config) as memory:
                store(memory, conv, mode)
                for name in names:
                    results[mode][name][conv.index] = score(memory, conv, name)
        print(f"conversation {conv.index}: {len(conv.questions)} questions, {len(names)} "
              f"settings, {time.perf_counter() - began:.0f} s so far", flush=True)  # fmt: skip
    indexes = [c.index for c in conversations]

    def pooled(mode: str, name: str, among: list[int]) -> list[tuple[int, float]]:
        return [row for i in among for row in results[mode][name][i]]

    def objective(name: str, among: list[int]) -> float:
        """What a setting is chosen by: its all@10, averaged over the modes."""
        return statistics.mean(mean(pooled(m, name, among)) for m in modes)

    held_out: dict[str, list[tuple[int, float]]] = {m: [] for m in modes}
    print("\n| held out | chosen on the others | their all@10 | held-out all@10 |")
    print("|---|---|---|---|")
    by_name = {r.name: r for r in grid}
    for i in indexes:
        others = [j for j in indexes if j != i]
        best = max((r.name for r in grid), key=lambda n: objective(n, others))
        for m in modes:
            held_out[m] += results[m][best][i]
        scored = " / ".join(f"{mean(results[m][best][i]):.3f}" for m in modes)
        print(f"| conversation {i} | {describe(by_name[best])} | "
              f"{objective(best, others):.3f} | {scored} |")  # fmt: skip
    in_sample_best = max((r.name for r in grid), key=lambda n: objective(n, indexes))
    print(
        f"\nall@{K}, mode {args.mode}, grid {args.grid} ({len(grid)} settings); best in-sample: "
        f"{describe(by_name[in_sample_best])}"
    )
    for m in modes:
        print(f"\nmode {m}, {len(held_out[m])} questions\n")
        table({
            f"default recipe ({DEFAULT_RECIPE}), in-sample": pooled(m, DEFAULT_RECIPE, indexes),
            "grid's best, in-sample (optimistic)": pooled(m, in_sample_best, indexes),
            "cross-validated (leave one conversation out)": held_out[m],
        })  # fmt: skip


if __name__ == "__main__":
    main()
