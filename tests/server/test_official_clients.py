"""The official `mem0ai` clients (2.2.1 and 1.0.11, each in its own virtualenv, made by
`make clients`) run every method of MemoryClient and AsyncMemoryClient against a live server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.live import ADMIN_KEY, LiveServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "clients" / "exercise.py"


@pytest.mark.parametrize("version", ["2.2.1", "1.0.11"])
def test_official_client(version: str, server: LiveServer, tmp_path: Path) -> None:
    python = ROOT / f".venv-mem0-{version.split('.', maxsplit=1)[0]}" / "bin" / "python"
    if not python.exists():
        message = f"mem0ai {version} is not installed: run `make clients` ({python} is missing)"
        if os.environ.get("CI"):
            pytest.fail(message)
        print(message, file=sys.stderr)
        pytest.skip(message)
    env = {**os.environ, "MEM0_TELEMETRY": "False", "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(python), str(SCRIPT), server.url, ADMIN_KEY],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"ok {version}")
