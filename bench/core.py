"""Core benchmark: add throughput and search latency at 1k, 10k and 100k memories in one scope.

Runs through the public API (`Memory`) on the default embedder (all-MiniLM-L6-v2 via ONNX), with
100 other scopes of 100 memories each present the whole time. One store grows from 1k to 10k to
100k memories in the measured scope; at each size it measures single adds, end-to-end search
(query embedding included) and reopening the store.

    .venv/bin/python bench/core.py [--sizes 1000,10000,100000] [--queries 300]

Prints a table; nothing is asserted (this machine is shared and noisy: read medians and ratios).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import time
from pathlib import Path

from engram import Memory
from engram.config import default_cache_dir
from engram.providers.embedders.minilm import MiniLMEmbedder
from engram.store.sqlite.store import SQLiteStore

SUBJECTS = [
    "hiking",
    "jazz",
    "sushi",
    "chess",
    "cycling",
    "pottery",
    "sailing",
    "opera",
    "gardening",
    "photography",
    "tennis",
    "baking",
    "astronomy",
    "yoga",
    "poetry",
]
PLACES = ["Lisbon", "Osaka", "Denver", "Nairobi", "Oslo", "Lima", "Hanoi", "Porto", "Quebec"]
PEOPLE = ["sister", "brother", "manager", "neighbour", "cousin", "friend", "daughter", "mentor"]
TEMPLATES = [
    "Enjoys {s} with their {p} in {c} on weekends",
    "Planning a trip to {c} next month to try {s}",
    "Their {p} recommended a {s} club in {c}",
    "Stopped doing {s} after moving to {c}",
    "Has been learning {s} for {n} years",
    "Met their {p} at a {s} event in {c}",
]  # fmt: skip
QUESTIONS = [
    "What hobbies does the user have?", "Where is the user travelling next?",
    "Who recommended the club?", "What did the user stop doing?", "How long have they practised?",
    "Where did they meet their friend?", "Does the user like music?", "Which city do they live in?",
]  # fmt: skip


def sentence(rng: random.Random) -> str:
    return rng.choice(TEMPLATES).format(
        s=rng.choice(SUBJECTS), p=rng.choice(PEOPLE), c=rng.choice(PLACES), n=rng.randint(2, 30)
    )


def fill(memory: Memory, user: str, count: int, rng: random.Random, batch: int = 500) -> float:
    """Add `count` memories in batched calls; returns memories per second."""
    start = time.perf_counter()
    for offset in range(0, count, batch):
        size = min(batch, count - offset)
        messages = [{"role": "user", "content": sentence(rng)} for _ in range(size)]
        memory.add(messages, user_id=user, infer=False)
    return count / (time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


RECIPES = ("vector", "hybrid", "hybrid_graph")


def measure_search(
    memory: Memory, rng: random.Random, queries: int, recipe: str
) -> tuple[float, float]:
    timings = []
    graph = recipe == "hybrid_graph"
    for i in range(queries):
        question = f"{rng.choice(QUESTIONS)} {rng.choice(SUBJECTS)} {i}"
        start = time.perf_counter()
        memory.search(question, user_id="target", top_k=10, recipe=recipe, enable_graph=graph)
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings), percentile(timings, 0.95)


def measure_single_adds(memory: Memory, rng: random.Random, count: int = 100) -> float:
    start = time.perf_counter()
    for _ in range(count):
        memory.add(sentence(rng), user_id="single-adds", infer=False)
    return count / (time.perf_counter() - start)


def measure_reopen(data_dir: Path) -> float:
    start = time.perf_counter()
    with Memory({"data_dir": str(data_dir)}) as memory:
        memory.search("What hobbies does the user have?", user_id="target", top_k=10)
        return time.perf_counter() - start


def measure_ivf(data_dir: Path, rng: random.Random, queries: int) -> tuple[float, float, float]:
    """Search p50/p95 with the IVF index forced on for the target scope, and its recall@10
    against exact search (a result counts when it scores at least the exact 10th score)."""
    questions = [f"{rng.choice(QUESTIONS)} {rng.choice(SUBJECTS)} {i}" for i in range(queries)]
    db = data_dir / "engram.db"

    def memory(threshold: int | None) -> Memory:
        embedder = MiniLMEmbedder(cache_dir=default_cache_dir())
        return Memory(embedder=embedder, store=SQLiteStore(db, ann_threshold=threshold))

    with memory(None) as exact:
        floors = [
            exact.search(q, user_id="target", top_k=10)["results"][-1]["score"] for q in questions
        ]
    with memory(50_000) as approx:
        approx.search("warm up", user_id="target")
        store = approx.async_memory.store
        assert isinstance(store, SQLiteStore)
        while not store.ann_ready({"user_id": "target"}):
            time.sleep(0.1)
        timings, hits = [], []
        for question, floor in zip(questions, floors, strict=True):
            start = time.perf_counter()
            found = approx.search(question, user_id="target", top_k=10)["results"]
            timings.append((time.perf_counter() - start) * 1000)
            hits.append(sum(r["score"] >= floor - 1e-6 for r in found) / 10)
    return statistics.median(timings), percentile(timings, 0.95), statistics.mean(hits)


def query_embedding_p50(cache: Path, count: int = 300) -> float:
    embedder = MiniLMEmbedder(cache_dir=cache)
    embedder.embed_sync(["warm up"])
    timings = []
    for i in range(count):
        start = time.perf_counter()
        embedder.embed_sync([f"What does the user enjoy doing on weekends {i}?"])
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--data-dir", type=Path, default=Path("bench/out/core"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    shutil.rmtree(args.data_dir, ignore_errors=True)
    rng = random.Random(7)

    rows = []
    config = {"data_dir": str(args.data_dir)}
    with Memory(config) as memory:
        other_rate = sum(fill(memory, f"other-{i}", 100, rng) for i in range(100)) / 100
    in_scope = 0
    for size in sizes:
        with Memory(config) as memory:
            batched = fill(memory, "target", size - in_scope, rng)
            in_scope = size
            single = measure_single_adds(memory, rng)
            memory.search("warm up", user_id="target")
            searches = [measure_search(memory, rng, args.queries, r) for r in RECIPES]
        reopen = measure_reopen(args.data_dir)
        rows.append((size, batched, single, searches, reopen))
    embed_p50 = query_embedding_p50(default_cache_dir())
    ivf = measure_ivf(args.data_dir, rng, args.queries) if max(sizes) >= 50_000 else None

    print(f"other scopes: 100 x 100 memories (batched fill {other_rate:.0f} memories/s)")
    print(f"query embedding p50: {embed_p50:.2f} ms")
    print("in scope | batched add/s | single add/s | reopen+1st search s")
    for size, batched, single, _, reopen in rows:
        print(f"{size:>8} | {batched:>13.0f} | {single:>12.1f} | {reopen:>19.2f}")
    print("\nsearch, end to end (ms) | " + " | ".join(f"{r} p50 / p95" for r in RECIPES))
    for size, _, _, searches, _ in rows:
        cells = " | ".join(f"{p50:>6.2f} / {p95:>6.2f}" for p50, p95 in searches)
        print(f"{size:>23} | {cells}")
    if ivf:
        print(
            f"IVF forced on at {max(sizes)} in scope: search p50 {ivf[0]:.2f} ms, "
            f"p95 {ivf[1]:.2f} ms, recall@10 vs exact {ivf[2]:.3f}"
        )


if __name__ == "__main__":
    main()
