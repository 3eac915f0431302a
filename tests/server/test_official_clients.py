"""The official `mem0ai` clients (2.2.1 and 1.0.11, each in its own virtualenv, made by
`make clients`) run every method of MemoryClient and AsyncMemoryClient against a live server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.live import ADMIN_KEY, LiveServer, run_official_client

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "clients" / "exercise.py"


@pytest.mark.parametrize("version", ["2.2.1", "1.0.11"])
def test_official_client(version: str, server: LiveServer, tmp_path: Path) -> None:
    done = run_official_client(version, SCRIPT, server.url, ADMIN_KEY, home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"ok {version}")
