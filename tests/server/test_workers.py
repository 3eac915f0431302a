"""`engram serve --workers 2`: two server processes on one data directory behave as one server.
Writes through either are read through the other, async adds run once each (one process runs the
queue; when it is killed the other takes over), a key's rate limit holds across both, and
`/metrics` counts the requests of both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.openai_server import FakeOpenAI
from tests.server.live import (
    ADMIN_KEY,
    fake_llm_config,
    free_port,
    slow_note_extraction,
    start_serve,
    wait_ready,
)

HEADERS = {"Authorization": f"Token {ADMIN_KEY}"}


def _fresh(url: str, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request on a new connection: the kernel hands each to either process."""
    with httpx.Client(base_url=url, headers=HEADERS, timeout=30) as client:
        return client.request(method, path, **kw)


def _holder(lock: Path) -> int | None:
    """The pid holding the flock on `lock`, from /proc/locks ("1: FLOCK ADVISORY WRITE <pid>
    <major>:<minor>:<inode> 0 EOF")."""
    inode = os.stat(lock).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if parts[1] == "FLOCK" and int(parts[5].rsplit(":", 1)[1]) == inode:
            return int(parts[4])
    return None


def test_two_processes_serve_as_one(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = slow_note_extraction
    config = fake_llm_config(tmp_path / "config.json", fake_openai.base_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    home = tmp_path / "home"
    server = start_serve(home, port, "--workers", "2", "--config", str(config),
                         "--rate-limit", "0", env={"ENGRAM_JOB_WORKERS": "1"})  # fmt: skip
    try:
        # Reads through either process see writes through the other.
        for i in range(6):
            added = _fresh(url, "POST", "/v1/memories/", json={
                "messages": f"Fact {i} about lighthouses", "user_id": "ana", "infer": False,
                "async_mode": False}).json()  # fmt: skip
            memory_id = added[0]["id"] if isinstance(added, list) else added["results"][0]["id"]
            assert _fresh(url, "GET", f"/v1/memories/{memory_id}/").status_code == 200
            found = _fresh(url, "POST", "/v3/memories/search/", json={
                "query": f"Fact {i} lighthouses", "filters": {"user_id": "ana"}}).json()  # fmt: skip
            assert memory_id in [r["id"] for r in found["results"]]
        # Async adds queued through both run once each, also when the queue's process dies.
        events = [
            _fresh(url, "POST", "/v3/memories/add/", json={
                "messages": f"This is note number {i}.", "user_id": "kim"}).json()["event_id"]
            for i in range(8)
        ]  # fmt: skip
        holder = _holder(home / "queue.lock")
        assert holder is not None and holder != server.pid
        os.kill(holder, signal.SIGKILL)
        deadline = time.monotonic() + 60
        statuses: list[str] = []
        while time.monotonic() < deadline:
            try:
                statuses = [_fresh(url, "GET", f"/v1/event/{e}/").json()["status"]
                            for e in events]  # fmt: skip
            except httpx.TransportError:
                statuses = []
            if statuses and all(s == "SUCCEEDED" for s in statuses):
                break
            time.sleep(0.2)
        assert statuses == ["SUCCEEDED"] * len(events)
        texts = sorted(m["memory"] for m in _fresh(url, "POST", "/v3/memories/", json={
            "filters": {"user_id": "kim"}, "page_size": 100}).json()["results"])  # fmt: skip
        assert texts == sorted(f"Note number {i}" for i in range(len(events)))
        # /metrics sums the requests of both processes (each publishes every second).
        for _ in range(10):
            assert _fresh(url, "GET", "/v1/ping/").status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = _fresh(url, "GET", "/metrics").text
            pings = sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                        if line.startswith('engram_requests_total{method="GET",route="/v1/ping/"'))  # fmt: skip
            if pings >= 10:
                break
            time.sleep(0.2)
        assert pings >= 10
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_rate_limit_holds_across_processes(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_serve(tmp_path / "home", port, "--workers", "2", "--rate-limit", "5",
                         "--config", str(_hashing_config(tmp_path)))  # fmt: skip
    try:
        answers = [_fresh(url, "GET", "/v1/ping/") for _ in range(12)]
        assert [a.status_code for a in answers].count(200) == 5
        refused = [a for a in answers if a.status_code == 429]
        assert len(refused) == 7 and all(int(a.headers["Retry-After"]) >= 1 for a in refused)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_connections_are_spread_over_the_processes(tmp_path: Path) -> None:
    """Each process listens on its own socket (SO_REUSEPORT): keep-alive connections opened
    together land on both, not all on whichever process was awake; a killed process is started
    again; a second server on the port is refused."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_serve(tmp_path / "home", port, "--workers", "2",
                         "--config", str(_hashing_config(tmp_path)))  # fmt: skip
    try:
        workers = _children(server.pid)
        assert len(workers) == 2
        clients = [httpx.Client(base_url=url, headers=HEADERS) for _ in range(16)]
        try:
            for client in clients:  # each opens its connection and keeps it
                assert client.get("/v1/ping/").status_code == 200
            held = {pid: _connections(pid, port) for pid in workers}
            assert sum(held.values()) == 16 and all(held.values()), held  # 2 in 65,536: all on one
        finally:
            for client in clients:
                client.close()
        # A killed process, and one that stopped answering (SIGSTOP: its health pings go
        # unanswered), are replaced; every new connection is then answered.
        os.kill(workers[0], signal.SIGKILL)
        os.kill(workers[1], signal.SIGSTOP)
        _wait_for(lambda: not set(_children(server.pid)) & set(workers), "replaced processes")
        _wait_for(lambda: len(_children(server.pid)) == 2, "two processes")
        wait_ready(server, port)
        assert all(_fresh(url, "GET", "/v1/ping/").status_code == 200 for _ in range(12))

        # A second server on the port is refused, with several processes or one.
        for flags in (("--workers", "2"), ("--workers", "1")):
            second = subprocess.run(
                [sys.executable, "-m", "engram.cli", "serve", "--port", str(port), *flags],
                env={**os.environ, "ENGRAM_HOME": str(tmp_path / "other")}, capture_output=True,
                text=True, timeout=120, check=False,
            )  # fmt: skip
            assert second.returncode != 0, second.stderr

        # SIGHUP restarts them all; with the supervisor gone (kill -9), they stop by themselves.
        before = _children(server.pid)
        os.kill(server.pid, signal.SIGHUP)
        _wait_for(lambda: not set(_children(server.pid)) & set(before), "restarted processes")
        _wait_for(lambda: len(_children(server.pid)) == 2, "two processes")
        wait_ready(server, port)
        orphans = _children(server.pid)
        server.kill()
        server.wait(timeout=30)
        _wait_for(lambda: not [p for p in orphans if _running(p)], "orphans gone")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    """The server processes started by `pid` (multiprocessing's helper, which runs no app,
    holds no socket on the port and is left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == pid and b"resource_tracker" not in command:
            found.append(int(entry.name))
    return sorted(found)


def _connections(pid: int, port: int) -> int:
    """Established connections to `port` whose socket is held by the process `pid`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
            count += 1
    return count


def _hashing_config(tmp_path: Path) -> Path:
    config = tmp_path / "hashing.json"
    config.write_text(json.dumps({"embedder": {"provider": "hashing"}}))
    return config
