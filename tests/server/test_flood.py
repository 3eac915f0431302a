"""One tenant flooding the server with large requests does not stall the others: `/healthz` and
another project's search keep answering while the flood runs (issue 15). A real `engram serve`
process with the default embedder (MiniLM: tokenizing and embedding are the costly work), so the
flood's work competes with the probes as it would in production."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.server.live import ADMIN_KEY, free_port, new_project, start_serve

FLOOD_SECONDS = 6.0
PROMPT = 0.2  # seconds: what "answering" means for a probe
PAST_LIMIT = "lorem ipsum dolor sit amet " * 300_000  # 8.1 MB: refused by the limits
AT_LIMIT = ("I moved to Lisbon and I work as a nurse. " * 2_500)[:99_000]
# (path, body, the status each must get)
FLOODS: list[tuple[str, dict[str, Any], int]] = [
    ("/v1/memories/", {"messages": PAST_LIMIT, "user_id": "x", "infer": False}, 400),
    ("/v2/memories/search/", {"query": PAST_LIMIT, "filters": {"user_id": "x"}}, 400),
    ("/v1/memories/", {"messages": AT_LIMIT, "user_id": "x", "async_mode": False}, 200),
    (
        "/v1/memories/",
        {"messages": AT_LIMIT, "user_id": "x", "infer": False, "async_mode": False},
        200,
    ),
    ("/v2/memories/search/", {"query": AT_LIMIT[:19_000], "filters": {"user_id": "x"}}, 200),
]


class Flood:
    """Each of FLOODS sent over and over by its own thread, with one project's key."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.wrong: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=f) for f in FLOODS]

    def __enter__(self) -> Flood:
        for thread in self._threads:
            thread.start()
        time.sleep(1.0)  # under way
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _send(self, path: str, body: dict[str, Any], expected: int) -> None:
        headers = {"Authorization": f"Token {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=120) as client:
            while not self._stop.is_set():
                answer = client.post(path, json=body)
                self.statuses[(path, answer.status_code)] += 1
                if answer.status_code != expected:
                    self.wrong.append(f"{path}: {answer.status_code} {answer.text[:200]}")


def probe(url: str, bystander: httpx.Client) -> tuple[list[float], list[float]]:
    """Seconds each /healthz and each of another tenant's searches took, for FLOOD_SECONDS."""
    health, search = [], []
    deadline = time.monotonic() + FLOOD_SECONDS
    with httpx.Client(base_url=url, timeout=60) as plain:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert plain.get("/healthz").status_code == 200
            health.append(time.perf_counter() - started)
            started = time.perf_counter()
            found = bystander.post(
                "/v2/memories/search/", json={"query": "hiking", "filters": {"user_id": "bob"}}
            )
            search.append(time.perf_counter() - started)
            assert found.status_code == 200 and found.json()["results"], found.text
            time.sleep(0.05)
    return health, search


def figures(times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[int(len(ordered) * 0.9)]
    return (f"n {len(times)}, p50 {statistics.median(times) * 1000:.0f} ms, "
            f"p90 {p90 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms")  # fmt: skip


def test_a_tenant_flooding_large_requests_does_not_stall_the_others(tmp_path: Path) -> None:
    port = free_port()
    process = start_serve(tmp_path / "home", port)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Token {ADMIN_KEY}"},
                          timeout=60) as admin:  # fmt: skip
            key_a = new_project(admin, "flooder")[2]
            key_b = new_project(admin, "bystander")[2]
        with httpx.Client(base_url=url, headers={"Authorization": f"Token {key_b}"},
                          timeout=60) as bystander:  # fmt: skip
            added = bystander.post("/v1/memories/", json={
                "messages": "I love hiking in the Alps", "user_id": "bob", "async_mode": False,
                "infer": False,
            })  # fmt: skip
            assert added.status_code == 200, added.text
            with Flood(url, key_a) as flood:
                health, search = probe(url, bystander)
    finally:
        process.kill()
        process.wait()
    print(f"\nflood statuses: {dict(flood.statuses)}")
    print(f"/healthz during the flood: {figures(health)}")
    print(f"another tenant's search during the flood: {figures(search)}")
    assert not flood.wrong, flood.wrong[:5]
    assert all(flood.statuses[(path, status)] for path, _, status in FLOODS), flood.statuses
    for name, times in (("/healthz", health), ("search", search)):
        prompt = sum(t <= PROMPT for t in times) / len(times)
        # Before issue 15 a probe waited 13-21 s behind one large request; a loaded 2-core CI
        # machine may delay the odd probe, never most of them.
        assert prompt >= 0.9, f"{name}: only {prompt:.0%} answered within {PROMPT * 1000:.0f} ms"
        assert max(times) < 1.0, f"{name}: a probe waited {max(times):.1f} s"
