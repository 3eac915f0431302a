"""Property-based fuzzing of the whole API from its OpenAPI document (issue 15): schemathesis,
in its own virtualenv (`make fuzzer`, pinned in the Makefile), sends generated and mutated
requests to every operation of a real `engram serve` process, with a fixed budget of examples
per operation and a time cap, and fails on any server error (5xx) or any answer that does not
match the documented response schema. Path parameters that name the organization and project
are the server's own, so the management routes are reached past authorization."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.server.live import ADMIN_KEY, free_port, installed, start_serve

ROOT = Path(__file__).resolve().parents[2]
FUZZER = ROOT / ".venv-schemathesis" / "bin" / "st"
EXAMPLES = 10  # per operation and phase
SECONDS = {"sqlite": 150, "postgres": 75}  # the time cap of the run, per database
SEED = int(os.environ.get("ENGRAM_FUZZ_SEED", "20261204"))


def test_no_generated_request_reaches_a_server_error(
    tmp_path: Path, server_db: dict[str, Any]
) -> None:
    st = installed(FUZZER, "schemathesis", "fuzzer")
    home, port = tmp_path / "home", free_port()
    config = tmp_path / "engram.json"  # embedding next to free: the budget goes to requests
    config.write_text(json.dumps({"embedder": {"provider": "hashing",
                                               "config": {"embedding_dims": 64}}}))  # fmt: skip
    env = {"ENGRAM_RATE_LIMIT": "0", "ENGRAM_AUTH_FAILURES_PER_MINUTE": "0"}
    if "database_url" in server_db:
        env["ENGRAM_DATABASE_URL"] = server_db["database_url"]
    process = start_serve(home, port, "--config", str(config), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        pong = httpx.get(f"{url}/v1/ping/", headers={"Authorization": f"Token {ADMIN_KEY}"}).json()
        settings = tmp_path / "schemathesis.toml"
        settings.write_text(
            "[parameters]\n"
            f'"path.org_id" = "{pong["org_id"]}"\n'
            f'"path.project_id" = "{pong["project_id"]}"\n'
            f'"query.org_id" = "{pong["org_id"]}"\n'
            f'"query.project_id" = "{pong["project_id"]}"\n'
        )
        database = "postgres" if "database_url" in server_db else "sqlite"
        run = subprocess.run(
            [str(st), "--config-file", str(settings), "run", f"{url}/openapi.json",
             "-H", f"Authorization: Token {ADMIN_KEY}",
             "--checks", "not_a_server_error,response_schema_conformance",
             "--max-examples", str(EXAMPLES), "--seed", str(SEED),
             "--max-time", str(SECONDS[database]), "--no-shrink", "--no-color"],
            capture_output=True, text=True, timeout=SECONDS[database] + 300, cwd=tmp_path,
            check=False,
        )  # fmt: skip
    finally:
        process.kill()
        process.wait()
    summary = run.stdout[run.stdout.find("SUMMARY") :] if "SUMMARY" in run.stdout else run.stdout
    print(f"\nschemathesis on {database}, seed {SEED}:\n{summary[-1500:]}")
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
