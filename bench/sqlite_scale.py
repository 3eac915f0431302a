"""One million memories in one SQLite store (issue 19, item 4): add, search, reopen, memory, disk.

Two stores of `--total` memories (default 1,000,000), written through `store.apply` as
`add(infer=False)` records them (bench/postgres_scale.py's data: `--distinct` texts from 28
templates embedded once by MiniLM, each memory one of them with its vector plus Gaussian noise,
`--noise` per dimension, renormalised; the base vectors are cached in bench/out):

1. `scopes`: `--total`/10 users, `--big-scopes` of them with 10,000 memories and the others ~9
   each, every user's rows spread over the whole load. Prints the store's load rate; batched
   `Memory.add([...500 messages...], user_id=..., infer=False)` on the full store (MiniLM, as
   shipped); reopen + first search of a 10k scope in a new process (the interpreter's start and
   imports left out, the model's load in), and in this process once the model is loaded;
   end-to-end search p50/p95 (`Memory.search`, top_k 10, hybrid, each query a new text) for the
   10k scopes and for ~10-memory scopes; the process's peak RSS and the database's bytes per
   memory.
2. `one`: every memory in one user's scope. The approximate (IVF) index against exact search:
   recall@10 of `store.search` (a result counts when its exact cosine reaches the exact 10th
   best), p50/p95 of both, the IVF's build time; reopen + first search in a new process; search
   end to end (hybrid).

    python -m bench.sqlite_scale                        # both parts at 1M: ~30 minutes on 2 cores
    python -m bench.sqlite_scale --total 100000 --parts scopes

Nothing is asserted; on a shared, noisy machine read medians and ratios from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.postgres_scale import (
    DIMS,
    PRECISION,
    Matrix,
    Rows,
    corpus,
    embed,
    load_sqlite,
    model_id,
    p50_p95,
    questions,
    say,
)
from engram import Memory
from engram.config import default_cache_dir
from engram.core.filters import parse_filters
from engram.providers.embedders.minilm import MiniLMEmbedder
from engram.store.sqlite import ann
from engram.store.sqlite.store import SQLiteStore

OUT = Path(__file__).parent / "out"
BATCH = 5000  # inserts per store.apply


def base_vectors(count: int) -> tuple[list[str], Matrix]:
    """The distinct texts and their MiniLM vectors (embedded once, then read from bench/out)."""
    texts = corpus(count)
    cache = OUT / f"sqlite_scale_base_{count}_{PRECISION['precision']}.npy"
    if cache.exists():
        vectors = np.load(cache)
        if len(vectors) == len(texts):
            say(f"base vectors: {len(texts):,} texts, read from {cache}")
            return texts, vectors
    vectors, seconds = embed(texts)
    OUT.mkdir(exist_ok=True)
    np.save(cache, vectors)
    say(f"base vectors: {len(texts):,} texts embedded by MiniLM in {seconds:.0f} s, cached")
    return texts, vectors


def owners(total: int, users: int, big: int, big_size: int) -> tuple[list[str], np.ndarray]:
    """User names and the owner of each memory in load order (every user's rows spread)."""
    small = users - big
    rng = np.random.default_rng(11)
    owner = np.concatenate(
        [
            np.repeat(np.arange(big), big_size),
            big + np.arange(small),
            big + rng.integers(0, small, total - big * big_size - small),
        ]
    )
    rng.shuffle(owner)
    return [f"big-{i}" for i in range(big)] + [f"user-{i}" for i in range(small)], owner


def memory_at(data_dir: Path) -> Memory:
    return Memory({"data_dir": str(data_dir), "embedder": {"provider": "minilm",
                   "config": {"precision": PRECISION["precision"]}}})  # fmt: skip


def reopen_in_new_process(data_dir: Path, user: str) -> dict[str, float]:
    """Seconds from `Memory(...)` to the first search's answer in a fresh interpreter (imports
    done first), and that process's peak RSS."""
    code = f"""
import json, resource, sys, time
from engram import Memory
start = time.perf_counter()
with Memory({{"data_dir": {str(data_dir)!r}, "embedder": {{"provider": "minilm",
             "config": {{"precision": {PRECISION["precision"]!r}}}}}}}) as m:
    opened = time.perf_counter()
    found = m.search("What does the user enjoy on weekends?", user_id={user!r}, top_k=10)
    done = time.perf_counter()
assert len(found["results"]) == 10, found
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (kept across exec: the bench's)
try:  # this process's own peak: VmHWM is its address space's, new at exec
    peak = next(int(line.split()[1]) / 1024 for line in open("/proc/self/status")
                if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({{"open": opened - start, "first_search": done - opened, "total": done - start,
                  "rss_mb": peak}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src")},
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def timed_searches(memory: Memory, users: Sequence[str], texts: Sequence[str]) -> list[float]:
    for user in users[:5]:
        memory.search("warm up", user_id=user, top_k=10)
    timings = []
    for i, text in enumerate(texts):
        start = time.perf_counter()
        memory.search(text, user_id=users[i % len(users)], top_k=10)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def batched_adds(memory: Memory, rounds: int, count: int, batch: int) -> list[float]:
    """Memories/s of `rounds` rounds of `count` memories in `batch`-message add calls."""
    rng = random.Random(5)
    texts = corpus(5000, seed=9)
    rates = []
    for r in range(rounds):
        start = time.perf_counter()
        for offset in range(0, count, batch):
            messages = [{"role": "user", "content": rng.choice(texts)}
                        for _ in range(min(batch, count - offset))]  # fmt: skip
            result = memory.add(messages, user_id=f"adder-{r}", infer=False)
            assert len(result["results"]) == len(messages), result
        rates.append(count / (time.perf_counter() - start))
    return rates


def disk(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.iterdir() if p.is_file())


def scopes_part(args: argparse.Namespace, texts: list[str], base: Matrix) -> None:
    total, big, big_size = args.total, args.big_scopes, 10_000
    users = total // 10
    say(f"== 1. {total:,} memories, {users:,} users ({big} of {big_size:,} memories) ==")
    data_dir = args.data_dir / "scopes"
    names, owner = owners(total, users, big, big_size)
    if not (args.reuse and (data_dir / "engram.db").exists()):
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "engram.db").unlink(missing_ok=True)
        rows = Rows(texts, base, args.noise, seed=5, step=3.0e7 / total)
        batches = (rows.make([names[k] for k in owner[o : o + BATCH]])
                   for o in range(0, total, BATCH))  # fmt: skip
        rate = asyncio.run(load_sqlite(data_dir / "engram.db", batches))
        say(f"load: {total:,} memories through store.apply ({BATCH:,} a call): {rate:,.0f}/s")
    else:
        say("load: reused the store an earlier run left (--reuse)")
    fresh = reopen_in_new_process(data_dir, names[0])
    say(
        f"reopen + first search of a 10k scope, new process: {fresh['total']:.2f} s "
        f"(Memory(...) {fresh['open']:.2f} s, first search {fresh['first_search']:.2f} s); "
        f"that process's peak RSS {fresh['rss_mb']:,.0f} MB"
    )
    small = random.Random(3).sample(names[big:], 50)
    with memory_at(data_dir) as memory:
        memory.search("warm up", user_id=names[1], top_k=10)
        timings = {
            f"{big_size:,} in scope": timed_searches(memory, names[:big], questions(args.queries)),
            "~10 in scope": timed_searches(memory, small, questions(args.queries, 1000)),
        }
        rates = batched_adds(memory, args.rounds, args.add_count, 500)
    say("search, end to end (Memory.search, top_k=10, hybrid; query embedding included), ms:")
    for label, values in timings.items():
        say(f"  {label:<16} | p50 / p95 {p50_p95(values)} | {len(values)} queries")
    say(
        f"batched add on the {total:,}-memory store (Memory.add, {args.add_count:,} memories in "
        f"500-message calls, MiniLM): median {sorted(rates)[len(rates) // 2]:,.0f}/s "
        f"({', '.join(f'{r:,.0f}' for r in rates)})"
    )
    size = disk(data_dir)
    say(
        f"disk: {size / 1e9:.2f} GB, {size / total:,.0f} bytes a memory; this process's peak "
        f"RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB"
    )


def ivf_against_exact(db: Path, asks: Sequence[str]) -> None:
    """store.search of the one scope, exact and through the IVF index at several probe
    fractions: p50/p95 and recall@10 against exact."""
    embedder = MiniLMEmbedder(cache_dir=default_cache_dir(), precision=PRECISION["precision"])  # type: ignore[arg-type]
    vectors = embedder.embed_sync(asks)
    where = {"user_id": "one"}

    async def measure(
        threshold: int | None, fractions: Sequence[float | None]
    ) -> list[tuple[list[list[float]], list[float]]]:
        """Per probe fraction (None: the default): the scores found per query, and timings."""
        store = SQLiteStore(db, ann_threshold=threshold)
        await store.open(dims=DIMS, model_id=model_id())
        node = parse_filters(where)
        default = ann.PROBE_FRACTION
        try:
            if threshold is not None:
                start = time.perf_counter()
                await store.search(vectors[0], node, today="2026-12-05", top_k=10)
                while not store.ann_ready(where):
                    await asyncio.sleep(0.05)
                say(f"  IVF ready {time.perf_counter() - start:.1f} s after the first search "
                    "(built in the background, or read with the saved vectors)")  # fmt: skip
            out = []
            for fraction in fractions:
                ann.PROBE_FRACTION = default if fraction is None else fraction
                found, timings = [], []
                for vector in vectors:
                    begin = time.perf_counter()
                    hits = await store.search(vector, node, today="2026-12-05", top_k=10)
                    timings.append((time.perf_counter() - begin) * 1000)
                    found.append([h.score for h in hits])
                out.append((found, timings))
            return out
        finally:
            ann.PROBE_FRACTION = default
            await store.close()

    ((exact, exact_ms),) = asyncio.run(measure(None, [None]))
    fractions = [None, 0.02, 0.05, 0.1]
    say(f"store.search, vector only, {len(asks)} queries, p50 / p95 ms:")
    say(f"  exact                      {p50_p95(exact_ms)}")
    for fraction, (approx, approx_ms) in zip(fractions, asyncio.run(measure(50_000, fractions)),
                                             strict=True):  # fmt: skip
        recall = [sum(score >= e[-1] - 1e-6 for score in a) / 10
                  for a, e in zip(approx, exact, strict=True)]  # fmt: skip
        shown = f"{ann.PROBE_FRACTION} (default)" if fraction is None else str(fraction)
        say(f"  IVF, lists probed {shown:<14} {p50_p95(approx_ms)}   recall@10 against exact "
            f"{np.mean(recall):.3f} (min {min(recall):.1f})")  # fmt: skip


def one_scope_part(args: argparse.Namespace, texts: list[str], base: Matrix) -> None:
    total = args.total
    say(f"== 2. {total:,} memories in one scope ==")
    data_dir = args.data_dir / "one"
    db = data_dir / "engram.db"
    if not (args.reuse and db.exists()):
        data_dir.mkdir(parents=True, exist_ok=True)
        db.unlink(missing_ok=True)
        rows = Rows(texts, base, args.noise, seed=6, step=3.0e7 / total)
        batches = (rows.make(["one"] * min(BATCH, total - o)) for o in range(0, total, BATCH))
        rate = asyncio.run(load_sqlite(db, batches))
        say(f"load: {total:,} memories through store.apply: {rate:,.0f}/s")
    for when in ("first open after the load (exact search; the IVF index is built after it)",
                 "again (the IVF index saved with the vectors)"):  # fmt: skip
        fresh = reopen_in_new_process(data_dir, "one")
        say(
            f"reopen + first search, new process, {when}: {fresh['total']:.2f} s (Memory(...) "
            f"{fresh['open']:.2f} s, first search {fresh['first_search']:.2f} s); peak RSS "
            f"{fresh['rss_mb']:,.0f} MB"
        )
    ivf_against_exact(db, questions(args.queries, 2000))
    with memory_at(data_dir) as memory:
        timings = timed_searches(memory, ["one"], questions(min(args.queries, 100), 3000))
    say(f"search end to end (hybrid): p50 / p95 {p50_p95(timings)} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="scopes,one")
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--big-scopes", type=int, default=3)
    parser.add_argument("--distinct", type=int, default=100_000, help="texts embedded by MiniLM")
    parser.add_argument("--noise", type=float, default=0.02, help="per vector dimension")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="of batched adds")
    parser.add_argument("--add-count", type=int, default=2000)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/engram-sqlite-scale"))
    parser.add_argument("--reuse", action="store_true", help="keep the stores an earlier run made")
    args = parser.parse_args()
    say(f"bench/sqlite_scale.py {' '.join(sys.argv[1:])}")
    say(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}, MiniLM {PRECISION['precision']}")  # fmt: skip
    texts, base = base_vectors(args.distinct)
    parts = args.parts.split(",")
    if "scopes" in parts:
        scopes_part(args, texts, base)
    if "one" in parts:
        one_scope_part(args, texts, base)


if __name__ == "__main__":
    main()
