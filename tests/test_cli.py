"""The `engram` command line, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENGRAM_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "engram.cli", "--embedder", "hashing", *args],
        env=env, capture_output=True, text=True, check=check, timeout=120,
    )  # fmt: skip


def test_add_search_list_get_history_delete(tmp_path: Path) -> None:
    home = tmp_path / "home"
    added = json.loads(
        run(home, "add", "I love climbing in Sintra", "--user", "alex", "--json").stdout
    )
    (item,) = added["results"]
    assert item["memory"] == "Loves climbing in Sintra"
    run(home, "add", "Raw note kept verbatim", "--user", "alex", "--no-infer")
    found = json.loads(run(home, "search", "climbing", "--user", "alex", "--json").stdout)
    assert found["results"][0]["id"] == item["id"]
    listing = run(home, "list", "--user", "alex").stdout
    assert "(2 of 2)" in listing
    got = json.loads(run(home, "get", item["id"], "--json").stdout)
    assert got["user_id"] == "alex"
    run(home, "delete", item["id"])
    history = json.loads(run(home, "history", item["id"], "--json").stdout)
    assert [h["event"] for h in history] == ["ADD", "DELETE"]
    assert (
        json.loads(run(home, "delete", "--all", "--user", "alex", "--json").stdout)["deleted_count"]
        == 1
    )
    assert (home / "engram.db").exists()


def test_export_import_round_trips_exactly(tmp_path: Path) -> None:
    source, target = tmp_path / "a", tmp_path / "b"
    run(source, "add", "I work at Nimbus", "--user", "alex")
    mid = json.loads(
        run(
            source,
            "add",
            "Note one",
            "--agent",
            "bot",
            "--no-infer",
            "--metadata",
            '{"k": [1, "x"]}',
            "--json",
        ).stdout
    )["results"][0]["id"]
    run(
        source,
        "delete",
        json.loads(
            run(source, "add", "short lived note", "--user", "sam", "--no-infer", "--json").stdout
        )["results"][0]["id"],
    )
    by_flag = [sys.executable, "-m", "engram.cli", "--embedder", "hashing", "--data-dir"]
    listed = subprocess.run(
        [*by_flag, str(source), "list", "--user", "alex"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "error" not in listed.stderr
    dump = tmp_path / "dump.jsonl"
    run(source, "export", "--output", str(dump))
    lines = dump.read_text().splitlines()
    assert sum('"type": "memory"' in line for line in lines) == 2
    run(target, "import", str(dump))
    again = run(target, "export").stdout
    assert again == dump.read_text()
    assert json.loads(run(target, "get", mid, "--json").stdout)["metadata"] == {"k": [1, "x"]}


def test_errors_exit_nonzero_with_message(tmp_path: Path) -> None:
    result = run(tmp_path, "get", "nope", check=False)
    assert result.returncode == 2 and "UUID" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "memory", "id": "x"}\n')
    result = run(tmp_path, "import", str(bad), check=False)
    assert result.returncode == 2 and "line 1" in result.stderr


@pytest.mark.slow
def test_demo_runs_on_the_default_embedder(tmp_path: Path) -> None:
    env = {**os.environ, "ENGRAM_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "engram.cli", "demo"], env=env, capture_output=True, text=True,
        check=True, timeout=300,
    ).stdout  # fmt: skip
    assert "Stored from the conversation" in out
    where = out.split("Which city does the user live in?")[1].splitlines()[1]
    assert "Lisbon" in where
