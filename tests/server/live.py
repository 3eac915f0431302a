"""A real `engram serve` app on a free port, in a thread of the test process (uvicorn), or as
its own process (`start_serve`)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from engram.server.app import create_app
from engram.server.settings import Settings

ADMIN_KEY = "eg-test-admin-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(
        self, data_dir: Path, memory: dict[str, Any] | None = None, **settings: Any
    ) -> None:
        config = data_dir.parent / "server-config.json"
        embedder = {"provider": "hashing", "config": {"embedding_dims": 128}}
        config.write_text(json.dumps({"embedder": embedder, **(memory or {})}))
        self.port = free_port()
        settings.setdefault("allow_private_urls", True)  # the tests' webhook receivers are local
        self.settings = Settings(
            port=self.port, data_dir=data_dir, config=config, admin_api_key=ADMIN_KEY, **settings
        )
        self.url = f"http://127.0.0.1:{self.port}"
        server_config = uvicorn.Config(
            create_app(self.settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(server_config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    def client(self, key: str | None = ADMIN_KEY) -> httpx.Client:
        headers = {"Authorization": f"Token {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


def wait_event(client: httpx.Client, event_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event: dict[str, Any] = client.get(f"/v1/event/{event_id}/").json()
        if event["status"] in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            return event
        time.sleep(0.05)


def new_project(admin: httpx.Client, name: str) -> tuple[str, str, str]:
    """A new project of the admin's organization: (org id, project id, its first API key)."""
    pong = admin.get("/v1/ping/").json()
    made = admin.post(f"/api/v1/orgs/organizations/{pong['org_id']}/projects/", json={"name": name})
    assert made.status_code == 200, made.text
    return pong["org_id"], made.json()["id"], made.json()["api_key"]


def member_key(admin: httpx.Client, org_id: str, project_id: str, email: str,
               role: str = "OWNER", *, organization: bool = False) -> str:  # fmt: skip
    """A key of a new member `email` of the project: a project key, which reaches that project
    only, unless `organization` (the key carries its user's organization role)."""
    base = f"/api/v1/orgs/organizations/{org_id}/projects/{project_id}"
    added = admin.post(f"{base}/members/", json={"email": email, "role": role})
    assert added.status_code == 200, added.text
    made = admin.post(f"{base}/api-keys/", json={"email": email, "organization": organization})
    assert made.status_code == 200, made.text
    key: str = made.json()["key"]
    return key


def add_now(client: httpx.Client, text: str, user: str = "alex", **extra: Any) -> dict[str, Any]:
    """A synchronous add (1.x route, `async_mode` false); asserts it succeeded."""
    answer = client.post("/v1/memories/", json={"messages": text, "user_id": user,
                                                "async_mode": False, **extra})  # fmt: skip
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def start_serve(home: Path, port: int, *flags: str, env: dict[str, str] | None = None
                ) -> subprocess.Popen[bytes]:  # fmt: skip
    """`engram serve` as its own process (what a deployment runs), ready to answer."""
    process = spawn_serve(home, port, *flags, env=env)
    wait_ready(process, port)
    return process


def spawn_serve(home: Path, port: int, *flags: str, env: dict[str, str] | None = None
                ) -> subprocess.Popen[bytes]:  # fmt: skip
    """`engram serve` as its own process, starting (see `wait_ready`)."""
    variables = {**os.environ, "ENGRAM_HOME": str(home), "ENGRAM_ADMIN_API_KEY": ADMIN_KEY,
                 "ENGRAM_ALLOW_PRIVATE_URLS": "true", **(env or {})}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "engram.cli", "serve", "--port", str(port), *flags],
        env=variables, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_ready(process: subprocess.Popen[bytes], port: int) -> None:
    """Until the server on `port` answers /healthz (it is killed if it never does)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("engram serve did not start")


def slow_note_extraction(body: dict[str, Any]) -> str:
    """A fake LLM reply for adds of "This is note number N.": it takes a while (so a kill lands
    mid-queue) and yields one fact, "Note number N"."""
    time.sleep(0.15)
    number = re.findall(r"note number (\d+)", json.dumps(body["messages"]))[-1]
    return json.dumps({"facts": [{"text": f"Note number {number}", "event": "ADD"}]})


def fake_llm_config(path: Path, base_url: str) -> Path:
    """A server config file: the hashing embedder and the fake OpenAI-compatible LLM."""
    path.write_text(json.dumps({
        "embedder": {"provider": "hashing", "config": {"embedding_dims": 64}},
        "llm": {"provider": "openai", "config": {"openai_base_url": base_url,
                                                 "api_key": "test-key"}},
    }))  # fmt: skip
    return path


def installed(tool: Path, what: str, target: str) -> Path:
    """`tool`, made by `make <target>`; without it, a skip with a printed reason on a developer
    machine and a failure in CI."""
    if not tool.exists():
        message = f"{what} is not installed: run `make {target}` ({tool} is missing)"
        if os.environ.get("CI"):
            pytest.fail(message)
        print(message, file=sys.stderr)
        pytest.skip(message)
    return tool


def run_official_client(
    version: str, script: Path, *args: str, home: Path
) -> subprocess.CompletedProcess[str]:
    """`script` run by the official mem0ai client `version` (its own virtualenv, made by `make
    clients`); skipped with a printed reason on a developer machine without it, failed in CI."""
    root = Path(__file__).resolve().parents[2]
    python = root / f".venv-mem0-{version.split('.', maxsplit=1)[0]}" / "bin" / "python"
    installed(python, f"mem0ai {version}", "clients")
    env = {**os.environ, "MEM0_TELEMETRY": "False", "HOME": str(home)}
    return subprocess.run(
        [str(python), str(script), *args], capture_output=True, text=True, timeout=300,
        env=env, check=False,
    )  # fmt: skip
