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


def _one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """A failure is one `error:` line on stderr, a non-zero exit, and never a traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_global_json_before_the_subcommand(tmp_path: Path) -> None:
    run(tmp_path, "add", "Likes tea", "--user", "u", "--no-infer")
    before = json.loads(run(tmp_path, "--json", "list", "--user", "u").stdout)
    after = json.loads(run(tmp_path, "list", "--user", "u", "--json").stdout)
    assert before == after and before["total"] == 1


def test_add_prints_each_event_with_the_previous_text(tmp_path: Path) -> None:
    first = run(tmp_path, "add", "I live in Lisbon.", "--user", "alex").stdout
    assert first.startswith("ADD ") and "Lives in Lisbon" in first
    moved = run(tmp_path, "add", "I live in Porto now.", "--user", "alex").stdout
    assert moved.startswith("UPDATE ") and "(was: Lives in Lisbon)" in moved
    nothing = run(tmp_path, "add", "Loved it", "--user", "alex")
    assert nothing.stdout == "" and nothing.stderr.startswith("warning: ")
    again = run(tmp_path, "add", "I live in Porto.", "--user", "alex")
    assert again.stdout == "" and "already stored" in again.stderr


def test_missing_ids_exit_one_with_a_message(tmp_path: Path) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for command in ("get", "history"):
        line = _one_line_error(run(tmp_path, command, missing, check=False), code=1)
        assert missing in line


def test_unusable_data_directories_and_files_are_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    line = _one_line_error(run(a_file, "list", "--user", "u", check=False))
    assert "is a file" in line
    line = _one_line_error(run(tmp_path / "h", "import", str(tmp_path / "nope.jsonl"), check=False))
    assert "nope.jsonl" in line
    run(tmp_path / "h", "add", "Likes tea", "--user", "u", "--no-infer")
    dump = tmp_path / "dump.jsonl"
    run(tmp_path / "h", "export", "--output", str(dump))
    line = _one_line_error(run(tmp_path / "h", "import", str(dump), check=False))
    assert "exist" in line  # the ids are there already
    line = _one_line_error(
        run(
            tmp_path / "h",
            "--config",
            str(tmp_path / "no.json"),
            "list",
            "--user",
            "u",
            check=False,
        )
    )
    assert "no.json" in line


def test_a_read_only_data_directory_is_one_line(tmp_path: Path) -> None:
    """On a read-only mount (root ignores permission bits: as root, the test mounts the data
    directory read-only in a mount namespace of its own; other users get a 0555 directory)."""
    home = tmp_path / "home"
    run(home, "add", "Likes tea", "--user", "u", "--no-infer")
    command = [sys.executable, "-m", "engram.cli", "--embedder", "hashing", "list", "--user", "u"]
    env = {**os.environ, "ENGRAM_HOME": str(home)}
    if os.geteuid() == 0:
        mount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        command = ["unshare", "--mount", "sh", "-c", mount, str(home), *command]
    else:
        home.chmod(0o555)
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=120, check=False
        )
    finally:
        home.chmod(0o755)
    assert "not writable" in _one_line_error(result)


@pytest.mark.slow
def test_reading_commands_do_not_load_the_model(tmp_path: Path) -> None:
    """list, get, history, delete and export need no embedding: the model is never loaded
    (it would build its ONNX graph into the empty cache directory)."""
    env = {**os.environ, "ENGRAM_HOME": str(tmp_path / "home")}
    base = [sys.executable, "-m", "engram.cli"]
    added = subprocess.run(
        [*base, "--json", "add", "Likes tea", "--user", "u", "--no-infer"], env=env,
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    memory_id = json.loads(added.stdout)["results"][0]["id"]
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    cold = {**env, "ENGRAM_CACHE_DIR": str(empty)}
    for args in (["list", "--user", "u"], ["get", memory_id], ["history", memory_id],
                 ["export"], ["delete", memory_id]):  # fmt: skip
        subprocess.run([*base, *args], env=cold, capture_output=True, check=True, timeout=120)
    assert list(empty.iterdir()) == []


def test_flags_a_command_would_ignore_are_refused(tmp_path: Path) -> None:
    for args in (["--project", "x", "serve"], ["--config", "c.json", "projects"],
                 ["--embedder", "hashing", "keys", "list"]):  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "engram.cli", *args], capture_output=True, text=True,
            env={**os.environ, "ENGRAM_HOME": str(tmp_path)}, timeout=60, check=False,
        )  # fmt: skip
        assert "does not take" in _one_line_error(result), args
