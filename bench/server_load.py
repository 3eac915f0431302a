"""Server load benchmark: a bounded load generator over loopback against `engram serve`.

Starts `engram serve` (default embedder, a fresh data directory, rate limit off) unless `--url`
and `--api-key` name a running server; fills one user scope with `--memories` memories through
`POST /v1/memories/` (`infer=False`, 250 messages per request); then sends a fixed number of
requests per operation, `--concurrency` at a time, and stops:

- ping: `GET /v1/ping/`, the HTTP layer and the API key check alone;
- search: `POST /v3/memories/search/` in the scope (default recipe, top_k 10), queries drawn from
  23 texts, as an application asking the same things again (their vectors are remembered);
- search*: the same with every query a new text (each one embedded);
- get_all: `POST /v3/memories/` in the scope, one page of 100;
- add: `POST /v1/memories/` with one message, `infer=False`, synchronous.

A warm-up of searches comes first, not measured (each server process loads the embedding model
and its vector index on first use). Prints requests/s, p50/p99 latency (client side, ms),
errors, and the CPU per request of the server's processes and of this load generator (on a
small machine the two share the cores) per operation.

    .venv/bin/python bench/server_load.py [--memories 10000] [--requests 2000] [--concurrency 8]
        [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench.core
from bench.core import PEOPLE, PLACES, QUESTIONS, SUBJECTS, percentile, sentence

KEY = "eg-bench-admin-key-0123456789abcdef"
USER = "load-user"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "ENGRAM_HOME": str(home), "ENGRAM_ADMIN_API_KEY": KEY,
           "ENGRAM_RATE_LIMIT": "0"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "engram.cli", "serve", "--port", str(port), "--workers",
         str(workers)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("engram serve did not start")


def fill(client: httpx.Client, count: int, rng: random.Random, batch: int = 250) -> float:
    start = time.perf_counter()
    for offset in range(0, count, batch):
        messages = [{"role": "user", "content": sentence(rng)}
                    for _ in range(min(batch, count - offset))]  # fmt: skip
        body = {"messages": messages, "user_id": USER, "infer": False, "async_mode": False}
        answer = client.post("/v1/memories/", json=body)
        answer.raise_for_status()
    return count / (time.perf_counter() - start)


class Connection:
    """One keep-alive HTTP/1.1 connection, as lean as a load generator should be: the client
    shares this machine's cores with the server, and a heavyweight client would take their time
    from it (httpx's async client costs about as much CPU per request as the server's HTTP layer).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> Connection:
        address = url.split("://", 1)[1].rstrip("/")
        host, port = address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer, address)

    async def request(self, method: str, path: str, body: dict[str, Any] | None) -> int:
        """Send one request and read the whole answer; returns the status code."""
        data = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Token {KEY}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n")  # fmt: skip
        self.writer.write(head.encode() + data)
        status_line = await self.reader.readuntil(b"\r\n")
        length = None
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"{method} {path}: an answer without Content-Length")
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        self.writer.close()


async def load(
    url: str, make: Callable[[random.Random], tuple[str, str, dict[str, Any] | None]],
    total: int, concurrency: int,
) -> dict[str, Any]:  # fmt: skip
    """`total` requests made by `make(rng) -> (method, path, json)`, `concurrency` in flight,
    each on its own keep-alive connection."""
    rng = random.Random(11)
    requests = iter([make(rng) for _ in range(total)])
    latencies: list[float] = []
    errors = 0
    connections = [await Connection.open(url) for _ in range(concurrency)]

    async def worker(connection: Connection) -> None:
        nonlocal errors
        for method, path, body in requests:
            start = time.perf_counter()
            status = await connection.request(method, path, body)
            latencies.append((time.perf_counter() - start) * 1000)
            if status >= 400:
                errors += 1

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    wall = time.perf_counter() - start
    return {"requests": total, "rps": total / wall, "errors": errors, "latencies": latencies}


def server_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) used so far by the server's processes: the one started here
    and its children (`--workers`). None when the server was not started here or this is not
    Linux. CPU per request is steadier than requests/s on a shared machine."""
    if pid is None:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0
        for each in [pid, *map(int, children)]:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    except (OSError, ValueError, IndexError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def ping(rng: random.Random) -> tuple[str, str, dict[str, Any] | None]:
    return "GET", "/v1/ping/", None


def search(rng: random.Random) -> tuple[str, str, dict[str, Any] | None]:
    """Queries from a small set (23 texts), as an application asking the same things again."""
    query = rng.choice(QUESTIONS) if rng.random() < 0.5 else f"{rng.choice(SUBJECTS)} plans"
    return _search(query)


VERBS = ("enjoy", "try", "recommend", "stop", "plan")
WHEN = ("last year", "this spring", "next summer")
DISTINCT = [
    f"Did their {p} {v} {s} in {c} {w}?"
    for s, p, v, c, w in itertools.product(SUBJECTS, PEOPLE, VERBS, PLACES, WHEN)
]


def search_distinct(rng: random.Random) -> tuple[str, str, dict[str, Any] | None]:
    """Every query a text not asked before (16,200 of them, drawn without replacement): no
    query's vector can be remembered."""
    if not hasattr(search_distinct, "order"):
        search_distinct.order = iter(rng.sample(DISTINCT, len(DISTINCT)))  # type: ignore[attr-defined]
    return _search(next(search_distinct.order))  # type: ignore[attr-defined]


def _search(query: str) -> tuple[str, str, dict[str, Any] | None]:
    return "POST", "/v3/memories/search/", {"query": query, "filters": {"user_id": USER},
                                            "top_k": 10}  # fmt: skip


def get_all(rng: random.Random) -> tuple[str, str, dict[str, Any] | None]:
    page = rng.randint(1, 20)
    return "POST", f"/v3/memories/?page={page}&page_size=100", {"filters": {"user_id": USER}}


def add(rng: random.Random) -> tuple[str, str, dict[str, Any] | None]:
    return "POST", "/v1/memories/", {"messages": sentence(rng), "user_id": USER, "infer": False,
                                     "async_mode": False}  # fmt: skip


def summary(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One operation's rounds: the median round's req/s and the range, latency percentiles over
    every request, errors, and the median round's server CPU per request; printed as a row."""
    rates = sorted(r["rps"] for r in runs)
    latencies = [x for r in runs for x in r["latencies"]]
    cpu = sorted(r["cpu_ms"] for r in runs if "cpu_ms" in r)
    client = sorted(r["client_ms"] for r in runs)
    row = {
        "requests": sum(r["requests"] for r in runs), "rps": rates[len(rates) // 2],
        "rps_min": rates[0], "rps_max": rates[-1], "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99), "errors": sum(r["errors"] for r in runs),
        "cpu_ms": cpu[len(cpu) // 2] if cpu else None, "client_ms": client[len(client) // 2],
    }  # fmt: skip
    spread = f"({row['rps_min']:.0f}-{row['rps_max']:.0f})"
    cpu_cell = f"{row['cpu_ms']:.2f}" if row["cpu_ms"] is not None else "-"
    print(f"{name:9} | {row['requests']:8} | {row['rps']:5.0f} {spread} | {row['p50']:6.1f} | "
          f"{row['p99']:6.1f} | {row['errors']} | {cpu_cell} | {row['client_ms']:.2f}")  # fmt: skip
    return row


def main() -> None:
    global KEY
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--api-key", default=KEY)
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000, help="search requests")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="server processes (started here)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each operation")
    args = parser.parse_args()
    KEY = args.api_key
    process = None
    with tempfile.TemporaryDirectory() as home:
        if args.url:
            url = args.url
        else:
            process, url = start_server(Path(home), args.workers)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Token {KEY}"},
                              timeout=120) as client:  # fmt: skip
                rate = fill(client, args.memories, random.Random(5))
                scope = {"filters": {"user_id": USER}, "page_size": 1}
                count = client.post("/v3/memories/", json=scope).json()["count"]
            print(f"filled {count} memories in scope ({rate:.0f} memories/s, batched adds)")
            where = f"{args.workers} server processes" if not args.url else "the given server"
            print(f"concurrency {args.concurrency}, loopback, {where}")
            # Not measured: each server process loads the model and its vector index on first use.
            asyncio.run(load(url, search, 50 * args.workers * args.concurrency, args.concurrency))
            print(f"{args.rounds} rounds; req/s: the median round (min-max); latency: all rounds")
            print(
                "operation | requests | req/s | p50 ms | p99 ms | errors | server CPU ms/request"
                " | load generator CPU ms/request"
            )
            operations = (("ping", ping, args.requests), ("search", search, args.requests),
                          ("search*", search_distinct, args.requests),
                          ("get_all", get_all, args.requests // 4),
                          ("add", add, args.requests // 4))  # fmt: skip
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in operations}
            pid = process.pid if process is not None else None
            for _ in range(args.rounds):  # interleaved: a noisy spell hits every operation
                for name, make, total in operations:
                    before, mine = server_cpu(pid), time.process_time()
                    run = asyncio.run(load(url, make, total, args.concurrency))
                    after = server_cpu(pid)
                    run["client_ms"] = (time.process_time() - mine) * 1000 / total
                    if before is not None and after is not None:
                        run["cpu_ms"] = (after - before) * 1000 / total
                    rounds[name].append(run)
            results = {name: summary(name, runs) for name, runs in rounds.items()}
            out = Path(__file__).parent / "out"
            out.mkdir(exist_ok=True)
            (out / "server_load.json").write_text(json.dumps(results, indent=1))
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
