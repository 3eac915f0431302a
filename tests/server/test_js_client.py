"""The official JavaScript client (`mem0ai` from npm, the version the Makefile pins, installed by
`make jsclient`) runs every memory method of its MemoryClient against a live server
(clients/exercise.mjs checks each answer)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.live import ADMIN_KEY, LiveServer, installed

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "clients" / "exercise.mjs"
CLIENT_DIR = ROOT / ".node-mem0"


def pinned_version() -> str:
    found = re.search(r"^MEM0_JS := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, "the Makefile pins the JavaScript client's version as MEM0_JS"
    return found[1]


def node() -> str:
    """node on the PATH; without it, a skip with a printed reason (a failure in CI)."""
    found = shutil.which("node")
    if found is None:
        message = "node is not on the PATH: the JavaScript client test needs node 18 or later"
        if os.environ.get("CI"):
            pytest.fail(message)
        print(message, file=sys.stderr)
        pytest.skip(message)
    return found


def test_js_client(server: LiveServer, tmp_path: Path) -> None:
    version = pinned_version()
    runner = node()
    installed(CLIENT_DIR / f".installed-{version}", f"mem0ai {version} (npm)", "jsclient")
    # No telemetry, and a HOME of its own: the client writes nothing outside the test.
    env = {**os.environ, "MEM0_TELEMETRY": "false", "HOME": str(tmp_path),
           "MEM0_DIR": str(tmp_path / ".mem0")}  # fmt: skip
    done = subprocess.run(
        [runner, str(SCRIPT), server.url, ADMIN_KEY, str(CLIENT_DIR)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"ok js {version}", done.stdout + done.stderr
