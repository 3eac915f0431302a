"""Three `engram serve` processes (on different ports and data directories, standing for three
machines) against one PostgreSQL database: they serve as one. Writes through one are read through
the others at once; async adds queued anywhere run once; a webhook is delivered once; a server
killed mid-job has its jobs finished by the others; a key's rate limit holds across servers; the
official client works against all three."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
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
    new_project,
    run_official_client,
    slow_note_extraction,
    spawn_serve,
    wait_ready,
)

HEADERS = {"Authorization": f"Token {ADMIN_KEY}"}
SCRIPT = Path(__file__).parent / "clients" / "three_servers.py"


class Servers:
    """Three servers started at once (they migrate and bootstrap the database together)."""

    def __init__(self, home: Path, database_url: str, *flags: str, **env: str) -> None:
        self.ports = [free_port() for _ in range(3)]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.processes: list[subprocess.Popen[bytes]] = [
            spawn_serve(
                home / f"machine-{i}", port, "--database-url", database_url, *flags, env=env
            )
            for i, port in enumerate(self.ports)
        ]
        for process, port in zip(self.processes, self.ports, strict=True):
            wait_ready(process, port)
        self.clients = [httpx.Client(base_url=u, headers=HEADERS, timeout=30) for u in self.urls]

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with _Receiver.lock:
            _Receiver.bodies.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _settled(clients: list[httpx.Client], event_ids: list[str], timeout: float) -> list[Any]:
    """Each event once finished, read through the servers in turn."""
    deadline = time.monotonic() + timeout
    out = []
    for i, event_id in enumerate(event_ids):
        while True:
            event = clients[i % 3].get(f"/v1/event/{event_id}/").json()
            if event["status"] in ("SUCCEEDED", "FAILED"):
                out.append(event)
                break
            assert time.monotonic() < deadline, f"event {event_id} is still {event['status']}"
            time.sleep(0.05)
    return out


def _notes(client: httpx.Client, user: str) -> Counter[str]:
    listed = client.post("/v2/memories/", json={"filters": {"user_id": user}, "page_size": 500})
    assert listed.status_code == 200, listed.text
    return Counter(m["memory"] for m in listed.json()["results"])


def _queue_notes(clients: list[httpx.Client], user: str, numbers: range) -> list[str]:
    ids = []
    for n in numbers:
        answer = clients[n % 3].post("/v3/memories/add/", json={
            "messages": f"This is note number {n}.", "user_id": user})  # fmt: skip
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["event_id"])
    return ids


def test_three_servers_serve_as_one(tmp_path: Path, fake_openai: FakeOpenAI, pg_url: str) -> None:
    fake_openai.responder = slow_note_extraction
    config = fake_llm_config(tmp_path / "config.json", fake_openai.base_url)
    _Receiver.bodies = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    servers = Servers(tmp_path, pg_url, "--config", str(config), "--rate-limit", "0",
                      ENGRAM_JOB_LEASE="3", ENGRAM_JOB_WORKERS="1")  # fmt: skip
    a, b, c = servers.clients
    try:
        # One organization, project and admin key, however many servers bootstrapped at once.
        pongs = [client.get("/v1/ping/").json() for client in servers.clients]
        assert len({(p["org_id"], p["project_id"]) for p in pongs}) == 1
        project_id = pongs[0]["project_id"]

        # A write through one server is read through the others at once.
        added = a.post("/v1/memories/", json={"messages": "My cat is called Miso.",
                                              "user_id": "ana", "infer": False,
                                              "async_mode": False}).json()  # fmt: skip
        memory_id = added["results"][0]["id"]
        assert b.get(f"/v1/memories/{memory_id}/").json()["memory"] == "My cat is called Miso."
        hits = c.post("/v2/memories/search/", json={"query": "cat name",
                                                    "filters": {"user_id": "ana"}}).json()  # fmt: skip
        assert [h["id"] for h in hits["results"]] == [memory_id]
        assert c.delete(f"/v1/memories/{memory_id}/").status_code == 200
        assert b.get(f"/v1/memories/{memory_id}/").status_code == 404

        # Project settings and keys changed through one server hold on the others at once.
        path = f"/api/v1/orgs/organizations/{pongs[0]['org_id']}/projects/{project_id}/"
        assert b.patch(path, json={"custom_instructions": "Keep notes."}).status_code == 200
        assert c.get(path).json()["custom_instructions"] == "Keep notes."
        _, other_project, other_key = new_project(a, "other")
        assert b.get("/v1/ping/", headers={"Authorization": f"Token {other_key}"}).json()[
            "project_id"] == other_project  # fmt: skip
        other = {"Authorization": f"Token {other_key}"}
        assert c.delete(path.replace(project_id, other_project), headers=other).status_code == 200
        for client in servers.clients:
            gone = client.get("/v1/ping/", headers={"Authorization": f"Token {other_key}"})
            assert gone.status_code == 401

        # Async adds queued through all three run once each; each ADD is delivered once.
        hook = a.post(f"/api/v1/webhooks/projects/{project_id}/", json={
            "url": f"http://127.0.0.1:{receiver.server_port}/hook", "name": "h",
            "event_types": ["memory_add"]})  # fmt: skip
        assert hook.status_code == 200, hook.text
        events = _settled(servers.clients, _queue_notes(servers.clients, "bo", range(12)), 60)
        assert {e["status"] for e in events} == {"SUCCEEDED"}
        assert _notes(b, "bo") == Counter(f"Note number {n}" for n in range(12))
        assert len(fake_openai.chat_requests) == 12  # each job ran once, on some server
        wanted = {e["results"][0]["id"] for e in events}
        deadline = time.monotonic() + 30
        while len(_Receiver.bodies) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # a second delivery of any of them would have come by now
        delivered = Counter(body["event_details"]["id"] for body in _Receiver.bodies)
        assert set(delivered) == wanted and set(delivered.values()) == {1}

        # A server killed mid-queue: its jobs are taken over when their leases run out, and
        # none is applied twice.
        ids = _queue_notes(servers.clients, "cy", range(100, 112))
        time.sleep(0.4)
        servers.processes[2].send_signal(signal.SIGKILL)
        events = _settled(servers.clients[:2] * 2, ids, 90)
        assert {e["status"] for e in events} == {"SUCCEEDED"}
        assert _notes(a, "cy") == Counter(f"Note number {n}" for n in range(100, 112))
    finally:
        servers.close()
        receiver.shutdown()


def test_a_rate_limit_holds_across_servers(tmp_path: Path, pg_url: str) -> None:
    servers = Servers(tmp_path, pg_url, "--rate-limit", "6")
    try:
        codes = [servers.clients[i % 3].get("/v1/ping/").status_code for i in range(9)]
        assert codes[:6] == [200] * 6 and set(codes[6:]) == {429}
    finally:
        servers.close()


@pytest.mark.parametrize("version", ["2.2.1", "1.0.11"])
def test_official_client_against_three_servers(tmp_path: Path, pg_url: str, version: str) -> None:
    servers = Servers(tmp_path, pg_url, "--rate-limit", "0")
    try:
        done = run_official_client(version, SCRIPT, ADMIN_KEY, *servers.urls, home=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip().endswith(f"ok {version}")
    finally:
        servers.close()
