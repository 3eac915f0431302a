"""Cold start: a new process's open + first call against a warm process's, on the default
embedder (all-MiniLM-L6-v2 through ONNX Runtime) and an embedded SQLite store.

    .venv/bin/python -m bench.cold_start [--rounds 7] [--memories 1000] [--precision auto]

A store of `--memories` memories is made first (and the model's graphs cached, as after the
first run on a machine). Then, `--rounds` times, a fresh Python process imports engram, opens the
store and answers one search, then one add; its figures (wall time from just before `Memory(...)`)
are compared with the same calls made by a second `Memory` in that process, which finds the
model loaded. Also printed: `import engram`, and the `engram` CLI's `search`. Medians.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.core import sentence
from engram import Memory

CHILD = r"""
import json, sys, time
started = time.perf_counter()
import engram
imported = time.perf_counter() - started
from engram import Memory
config = {"data_dir": sys.argv[1], "embedder": {"provider": "minilm",
          "config": {"precision": sys.argv[2]}}}
out = {"import": imported}
for name in ("cold", "warm"):
    start = time.perf_counter()
    with Memory(config) as memory:
        memory.search("What does the user like to cook?", user_id="u", top_k=10)
        out[name + "_search"] = time.perf_counter() - start
        added = time.perf_counter()
        memory.add("Bakes sourdough on Sundays " + name, user_id="cold", infer=False)
        out[name + "_add"] = time.perf_counter() - added
print(json.dumps(out))
"""


def fill(data_dir: Path, count: int, precision: str) -> None:
    rng = random.Random(7)
    config = {"data_dir": str(data_dir),
              "embedder": {"provider": "minilm", "config": {"precision": precision}}}  # fmt: skip
    with Memory(config) as memory:
        for start in range(0, count, 500):
            size = min(500, count - start)
            batch = [{"role": "user", "content": sentence(rng)} for _ in range(size)]
            memory.add(batch, user_id="u", infer=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--memories", type=int, default=1000)
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "int8"))
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="engram-cold-"))
    try:
        fill(data_dir, args.memories, args.precision)
        rows: list[dict[str, float]] = []
        cli: list[float] = []
        for _ in range(args.rounds):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(data_dir), args.precision],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            start = time.perf_counter()
            subprocess.run(
                [str(Path(sys.executable).parent / "engram"), "--data-dir", str(data_dir),
                 "search", "What does the user like to cook?", "--user", "u"],
                check=True, capture_output=True,
            )  # fmt: skip
            cli.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    def ms(key: str) -> float:
        return statistics.median(r[key] for r in rows) * 1000

    print(f"cold start, {args.memories:,} memories, precision {args.precision}, "
          f"{args.rounds} processes (medians, ms):")  # fmt: skip
    print(f"  import engram                         {ms('import'):8.1f}")
    for call in ("search", "add"):
        cold, warm = ms(f"cold_{call}"), ms(f"warm_{call}")
        label = "open + first search" if call == "search" else "then the first add"
        print(f"  {label:<24} new process {cold:8.1f} | warm process {warm:8.1f} | "
              f"+{cold - warm:.1f}")  # fmt: skip
    print(f"  engram search (CLI, whole process)    {statistics.median(cli) * 1000:8.1f}")


if __name__ == "__main__":
    main()
