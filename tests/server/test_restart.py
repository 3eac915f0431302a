"""Durability: `engram serve` killed with SIGKILL while async adds are queued and running. After
the restart every accepted job completes, each exactly once, and every webhook event is
delivered (at least once)."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.server.live import (
    ADMIN_KEY,
    fake_llm_config,
    free_port,
    slow_note_extraction,
    start_serve,
)

JOBS = 12


class _Hooks(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        _Hooks.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hooks() -> Iterator[str]:
    _Hooks.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_jobs_survive_kill_9(tmp_path: Path, fake_openai: FakeOpenAI, hooks: str) -> None:
    fake_openai.responder = slow_note_extraction
    config = fake_llm_config(tmp_path / "config.json", fake_openai.base_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Token {ADMIN_KEY}"}
    server = start_serve(
        tmp_path / "home", port, "--config", str(config), env={"ENGRAM_JOB_WORKERS": "1"}
    )
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            project = client.get("/v1/ping/").json()["project_id"]
            client.post(f"/api/v1/webhooks/projects/{project}/",
                        json={"url": hooks, "name": "h", "event_types": ["memory_add"]})  # fmt: skip
            events = [
                client.post("/v3/memories/add/", json={
                    "messages": f"This is note number {i}.", "user_id": "kim"}).json()["event_id"]
                for i in range(JOBS)
            ]  # fmt: skip
            deadline = time.monotonic() + 30
            while sum(client.get(f"/v1/event/{e}/").json()["status"] == "SUCCEEDED"
                      for e in events) < 2:  # fmt: skip
                assert time.monotonic() < deadline
                time.sleep(0.02)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        server = start_serve(
            tmp_path / "home", port, "--config", str(config), env={"ENGRAM_JOB_WORKERS": "1"}
        )
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            statuses: list[str] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                statuses = [client.get(f"/v1/event/{e}/").json()["status"] for e in events]
                if all(s == "SUCCEEDED" for s in statuses):
                    break
                time.sleep(0.1)
            assert statuses == ["SUCCEEDED"] * JOBS
            memories = client.post("/v3/memories/", json={"filters": {"user_id": "kim"},
                                                           "page_size": 100}).json()  # fmt: skip
            texts = sorted(m["memory"] for m in memories["results"])
            assert texts == sorted(f"Note number {i}" for i in range(JOBS))  # each exactly once
            delivered: set[str] = set()
            deadline = time.monotonic() + 30
            while len(delivered) < JOBS and time.monotonic() < deadline:
                delivered = {b["event_details"]["data"]["memory"] for b in _Hooks.bodies}
                time.sleep(0.1)
            assert delivered == set(texts)
    finally:
        server.kill()
        server.wait(timeout=30)
