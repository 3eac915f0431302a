"""Prometheus metrics in the text exposition format (no client library needed).

With several server processes (`--workers N`) each one writes its counters to
`<data_dir>/metrics/<pid>.json` every second, and `/metrics`, whichever process answers it, sums
those of every process of this server run (the directory is emptied when the server starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HOURS = 48  # how long the hourly counts of adds and searches are kept
SEARCH_ROUTES = frozenset({"/v1/memories/search/", "/v2/memories/search/", "/v3/memories/search/",
                           "/search"})  # fmt: skip
ADD_ROUTES = frozenset({"/v1/memories/", "/v3/memories/add/", "/memories"})


def activity(method: str, route: str) -> str | None:
    """What a request counts as in the hourly activity: an add, a search, or neither."""
    if method == "POST" and route in SEARCH_ROUTES:
        return "searches"
    if method == "POST" and route in ADD_ROUTES:
        return "adds"
    return None


class Metrics:
    def __init__(self, shared_dir: Path | None = None) -> None:
        self._shared_dir = shared_dir
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._latency: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self._latency_sum: dict[str, float] = defaultdict(float)
        self._tokens: dict[str, int] = defaultdict(int)
        # "adds" / "searches" -> hour (seconds since the epoch // 3600) -> requests
        self._hourly: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        kind = activity(method, route) if status < 400 else None
        with self._lock:
            if kind is not None:
                hour = int(time.time() // 3600)
                hourly = self._hourly[kind]
                hourly[hour] += 1
                for old in [h for h in hourly if h <= hour - HOURS]:
                    del hourly[old]
            self._requests[(method, route, status)] += 1
            counts = self._latency[route]
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            self._latency_sum[route] += seconds

    def tokens(self, usage: dict[str, object]) -> None:
        with self._lock:
            for kind in ("prompt_tokens", "completion_tokens", "llm_calls"):
                value = usage.get(kind)
                if isinstance(value, int):
                    self._tokens[kind] += value

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": [[*k, n] for k, n in self._requests.items()],
                "latency": {r: list(c) for r, c in self._latency.items()},
                "latency_sum": dict(self._latency_sum),
                "tokens": dict(self._tokens),
                "hourly": {k: {str(h): n for h, n in c.items()} for k, c in self._hourly.items()},
            }

    def merged_snapshot(self) -> dict[str, Any]:
        """`snapshot()` of every process of this server run (see the module's docstring)."""
        return self._merged().snapshot()

    def publish(self) -> None:
        """Write this process's counters for its siblings' `/metrics` (with `shared_dir`)."""
        if self._shared_dir is None:
            return
        self._shared_dir.mkdir(parents=True, exist_ok=True)
        path = self._shared_dir / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(path)

    async def publish_every(self, seconds: float) -> None:
        while True:
            await asyncio.to_thread(self.publish)
            await asyncio.sleep(seconds)

    def _merged(self) -> Metrics:
        """These counters plus the last published ones of the sibling processes."""
        if self._shared_dir is None:
            return self
        out = Metrics()
        snapshots = [self.snapshot()]
        own = f"{os.getpid()}.json"
        for path in sorted(self._shared_dir.glob("*.json")):
            if path.name != own:
                with contextlib.suppress(OSError, ValueError):
                    snapshots.append(json.loads(path.read_text()))
        for snap in snapshots:
            for method, route, status, n in snap["requests"]:
                out._requests[(method, route, int(status))] += n
            for route, counts in snap["latency"].items():
                out._latency[route] = [a + b for a, b in zip(out._latency[route], counts,
                                                              strict=True)]  # fmt: skip
            for route, total in snap["latency_sum"].items():
                out._latency_sum[route] += total
            for kind, n in snap["tokens"].items():
                out._tokens[kind] += n
            for kind, counts in snap.get("hourly", {}).items():
                for hour, n in counts.items():
                    out._hourly[kind][int(hour)] += n
        return out

    def render(self, queue_depth: int) -> str:
        return self._merged()._render(queue_depth)

    def _render(self, queue_depth: int) -> str:
        lines = [
            "# HELP engram_requests_total HTTP requests by method, route and status.",
            "# TYPE engram_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self._requests.items()):
                lines.append(
                    f'engram_requests_total{{method="{method}",route="{route}",'
                    f'status="{status}"}} {n}'
                )
            lines += [
                "# HELP engram_request_seconds HTTP request latency by route.",
                "# TYPE engram_request_seconds histogram",
            ]
            for route, counts in sorted(self._latency.items()):
                running = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(
                        f'engram_request_seconds_bucket{{route="{route}",le="{le}"}} {running}'
                    )
                lines.append(
                    f'engram_request_seconds_sum{{route="{route}"}} {self._latency_sum[route]:.6f}'
                )
                lines.append(f'engram_request_seconds_count{{route="{route}"}} {running}')
            lines += [
                "# HELP engram_llm_tokens_total LLM tokens used by adds.",
                "# TYPE engram_llm_tokens_total counter",
            ]
            for kind in ("prompt_tokens", "completion_tokens"):
                lines.append(f'engram_llm_tokens_total{{kind="{kind}"}} {self._tokens[kind]}')
        lines += [
            "# HELP engram_job_queue_depth Async adds waiting to run.",
            "# TYPE engram_job_queue_depth gauge",
            f"engram_job_queue_depth {queue_depth}",
        ]
        return "\n".join(lines) + "\n"
