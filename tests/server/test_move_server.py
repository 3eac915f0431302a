"""`engram migrate --from <server data directory> --to postgresql://...`: the whole server moves
(organizations, projects, members, keys, webhooks, every project's memories), and a server on
the database answers the same keys with the same memories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from engram.cli import main
from tests.server.live import LiveServer, add_now, new_project


def _state(client: httpx.Client) -> dict[str, Any]:
    memories = client.post("/v2/memories/", json={"filters": {"user_id": "*"}, "page_size": 100})
    assert memories.status_code == 200, memories.text
    ping = client.get("/v1/ping/").json()
    return {"ping": ping, "memories": memories.json()["results"],
            "webhooks": client.get(f"/api/v1/webhooks/projects/{ping['project_id']}/").json()}  # fmt: skip


def test_a_server_moves_whole_to_postgres(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "sqlite-home"
    before = LiveServer(home)
    try:
        with before.client() as admin:
            add_now(admin, "I keep bees.", "kim")
            add_now(admin, "I sail on weekends.", "lea", metadata={"hobby": True})
            project = admin.get("/v1/ping/").json()["project_id"]
            admin.post(f"/api/v1/webhooks/projects/{project}/", json={
                "url": "http://127.0.0.1:9/hook", "name": "h", "event_types": ["memory_add"]})  # fmt: skip
            _, _, other_key = new_project(admin, "other")
            states = [_state(admin)]
        with before.client(other_key) as other:
            add_now(other, "The other tenant's note.", "zed")
            states.append(_state(other))
    finally:
        before.close()
    config = tmp_path / "server-config.json"  # LiveServer's: the hashing embedder
    code = main(["--json", "--config", str(config), "migrate", "--from", str(home), "--to", pg_url])
    out, err = capsys.readouterr()
    assert code == 0, err
    moved = json.loads(out)
    assert moved["server"]["projects"] == 2 and moved["server"]["api_keys"] >= 2
    after = LiveServer(tmp_path / "postgres-home", database_url=pg_url)
    try:
        with after.client() as admin, after.client(other_key) as other:
            assert [_state(admin), _state(other)] == states
            add_now(admin, "A new fact after the move.", "kim")
    finally:
        after.close()
    # Moving again onto a database that has a server: refused.
    code = main(["--config", str(config), "migrate", "--from", str(home), "--to", pg_url])
    assert code == 2 and "already" in capsys.readouterr().err
