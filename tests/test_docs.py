"""The docs stay true: README commands, runnable examples, and nothing undocumented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import engram
from engram.cli import _parser
from engram.config import EMBEDDERS, LLMS
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
USAGE = (ROOT / "docs" / "usage.md").read_text()


def test_readme_starts_with_the_two_setup_commands() -> None:
    lines = [line for line in README.splitlines() if line.strip()][:4]
    assert lines[0] == "```sh"
    assert lines[1].startswith("make serve ")
    assert lines[2].startswith("make test ")
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    assert blocks
    for block in blocks:
        if block.startswith("from mem0 import"):
            continue  # the official client's calls: tests/server/test_official_clients.py
        exec(compile(block, "README.md", "exec"), {})


def test_usage_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of docs/usage.md, as written; the OpenAI example talks to the fake
    OpenAI-compatible server (over real HTTP, as it would to OpenAI)."""
    blocks = re.findall(r"```python\n(.*?)```", USAGE, flags=re.DOTALL)
    assert len(blocks) >= 2
    fake = FakeOpenAI(dims=1536)
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.chdir(tmp_path)
        for block in blocks:
            exec(compile(block, "docs/usage.md", "exec"), {})
    finally:
        fake.close()
    assert (tmp_path / "scratch" / "engram.db").exists()


def test_every_cli_command_is_documented() -> None:
    subparsers = next(a for a in _parser()._actions if a.dest == "command")
    for name in subparsers.choices:  # type: ignore[union-attr]
        assert f"engram {name}" in USAGE, name


def test_every_provider_and_error_is_documented() -> None:
    for provider in (*EMBEDDERS, *LLMS):
        assert f"`{provider}`" in USAGE, provider
    errors = [n for n in engram.__all__ if n.endswith("Error")]
    for name in errors:
        assert f"`{name}`" in USAGE or f"alias `{name}`" in USAGE or name in USAGE, name


def test_mcp_client_configs_are_json_and_run_engram_commands() -> None:
    """docs/mcp.md's client configs: valid JSON, and each `engram` command one the CLI takes."""
    blocks = re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "mcp.md").read_text(), re.DOTALL)
    assert len(blocks) >= 5
    commands = 0
    for block in blocks:
        config = json.loads(block)
        for entry in (config.get("mcpServers") or config.get("servers")).values():
            if entry.get("command") == "engram":
                assert _parser().parse_args(entry["args"]).command == "mcp"
                commands += 1
            else:
                assert entry.get("url", entry.get("serverUrl", "")).startswith("http://")
                assert entry["headers"]["Authorization"].startswith("Token ")
    assert commands >= 5
