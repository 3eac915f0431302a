"""Dashboard benchmark: the memories page of a project with 100k memories (issue 16, item 4:
under 200 ms of server time, paged by position rather than OFFSET).

Starts `engram serve` on a fresh data directory with the hashing embedder (listing never
embeds; the fill is then quick), fills the default project with `--memories` memories over 20
users, signs in to the dashboard and times, from the server's own access log (`ms` of each
request, which includes the page's in-process API call):

- the memories page: first page, a page near the end (reached by its cursor), one user's first
  page, and a page of a search;
- for comparison, the API's numbered page at the same depth (`page=N`: an OFFSET scan).

    .venv/bin/python bench/dashboard.py [--memories 100000] [--repeat 20]

Prints medians and p95 per row; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench.core
from bench.core import percentile, sentence
from bench.server_load import KEY, free_port


def start(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = home / "config.json"
    home.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"embedder": {"provider": "hashing",
                                               "config": {"embedding_dims": 128}}}))  # fmt: skip
    port = free_port()
    env = {**os.environ, "ENGRAM_HOME": str(home / "data"), "ENGRAM_ADMIN_API_KEY": KEY,
           "ENGRAM_RATE_LIMIT": "0"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "engram.cli", "serve", "--port", str(port), "--config",
         str(config)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("engram serve did not start")


def fill(api: httpx.Client, count: int, rng: random.Random) -> float:
    began = time.perf_counter()
    for offset in range(0, count, 500):
        size = min(500, count - offset)
        user = f"user-{(offset // 500) % 20}"
        messages = [{"role": "user", "content": sentence(rng)} for _ in range(size)]
        answer = api.post("/v1/memories/", json={"messages": messages, "user_id": user,
                                                 "infer": False, "async_mode": False})  # fmt: skip
        answer.raise_for_status()
    return count / (time.perf_counter() - began)


def deep_cursor(api: httpx.Client, depth: int) -> str:
    """The cursor of the page after the first `depth` memories (walked 1,000 at a time)."""
    cursor = ""
    for _ in range(depth // 1000):
        found = api.post("/v3/memories/", json={"page_size": 1000, "after": cursor}).json()
        cursor = found["next_cursor"]
    return cursor


def server_ms(log: Path, path_prefix: str, since: int) -> list[float]:
    """The `ms` of the access log's lines for `path_prefix`, from line `since` on."""
    found = []
    for line in log.read_text().splitlines()[since:]:
        if line.startswith("{") and f'"path": "{path_prefix}' in line:
            found.append(float(json.loads(line)["ms"]))
    return found


def timed(log: Path, browser: httpx.Client, path: str, prefix: str, repeat: int) -> list[float]:
    since = len(log.read_text().splitlines())
    for _ in range(repeat):
        answer = browser.get(path)
        assert answer.status_code == 200, answer.text[:300]
    time.sleep(0.2)  # the last log line is written after the answer
    return server_ms(log, prefix, since)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="engram-bench-dashboard-"))
    log = home / "server.log"
    process, url = start(home, log)
    try:
        headers = {"Authorization": f"Token {KEY}"}
        with httpx.Client(base_url=url, headers=headers, timeout=600) as api, \
                httpx.Client(base_url=url, timeout=600) as browser:  # fmt: skip
            rate = fill(api, args.memories, random.Random(7))
            print(f"filled {args.memories} memories at {rate:.0f}/s")
            signed = browser.post("/dashboard/login", data={"api_key": KEY})
            assert signed.status_code == 303, signed.text[:300]
            depth = (args.memories - 100) // 1000 * 1000
            cursor = deep_cursor(api, depth)
            rows = [
                ("memories page 1 (50)", "/dashboard/memories", "/dashboard/memories"),
                (f"memories page after {depth} (cursor)", f"/dashboard/memories?after={cursor}",
                 "/dashboard/memories"),
                ("one user's page 1", "/dashboard/memories?user_id=user-3", "/dashboard/memories"),
                ("search, 50 results", "/dashboard/memories?q=hiking+in+Lisbon",
                 "/dashboard/memories"),
            ]  # fmt: skip
            print(f"\n| page | server ms p50 | p95 | (of {args.repeat}) |\n|---|---|---|---|")
            for name, path, prefix in rows:
                values = timed(log, browser, path, prefix, args.repeat)
                print(f"| {name} | {percentile(values, 0.5):.1f} | "
                      f"{percentile(values, 0.95):.1f} | {len(values)} |")  # fmt: skip
            since = len(log.read_text().splitlines())
            page = depth // 50 + 1
            for _ in range(args.repeat):
                api.get("/v1/memories/", params={"page": page, "page_size": 50}).raise_for_status()
            time.sleep(0.2)
            offset = server_ms(log, "/v1/memories/", since)
            print(f"| API page={page} of 50 (OFFSET) | {percentile(offset, 0.5):.1f} | "
                  f"{percentile(offset, 0.95):.1f} | {len(offset)} |")  # fmt: skip
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
