"""The CLI and `engram serve` on one data directory: the default project is the directory's own
store; a bad start writes nothing (the one-time admin key is not used up); keys are made from the
machine; /docs needs no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from engram.server import control
from tests.server.live import LiveServer, free_port, new_project, start_serve

EMBEDDER = {"embedder": {"provider": "hashing", "config": {"embedding_dims": 64}}}


def cli(home: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENGRAM_HOME": str(home)}
    env.pop("ENGRAM_ADMIN_API_KEY", None)
    if config is not None:
        env["ENGRAM_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "engram.cli", *args], env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(EMBEDDER))
    return path


def test_a_bad_config_writes_nothing_and_keys_come_from_the_machine(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"llm": {"provider": "nonsense"}}))
    failed = cli(home, "serve", "--port", str(free_port()), config=bad)
    assert failed.returncode == 2 and "nonsense" in failed.stderr
    assert "Traceback" not in failed.stderr and "API key" not in failed.stdout
    assert not (home / "server.db").exists()
    made = cli(home, "--json", "keys", "create", "--admin")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    listed = json.loads(cli(home, "--json", "keys", "list").stdout)["results"]
    assert [k["role"] for k in listed] == ["OWNER"]
    port = free_port()
    config = _config(tmp_path)
    process = start_serve(home, port, "--config", str(config), env={"ENGRAM_ADMIN_API_KEY": ""})
    try:
        pong = httpx.get(
            f"http://127.0.0.1:{port}/v1/ping/", headers={"Authorization": f"Token {key}"}
        )
        assert pong.status_code == 200 and pong.json()["role"] == "OWNER"
        revoked = cli(home, "keys", "revoke", listed[0]["id"])
        assert revoked.returncode == 0, revoked.stderr
        again = httpx.get(
            f"http://127.0.0.1:{port}/v1/ping/", headers={"Authorization": f"Token {key}"}
        )
        assert again.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_cli_sees_what_the_server_stores_and_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = _config(tmp_path)
    server = LiveServer(home, memory=EMBEDDER)
    try:
        with server.client() as admin:
            answer = admin.post("/v1/memories/", json={
                "messages": "Likes green tea", "user_id": "ana", "infer": False,
                "async_mode": False,
            })  # fmt: skip
            assert answer.status_code == 200, answer.text
            listed = cli(home, "--json", "list", "--user", "ana", config=config)
            assert listed.returncode == 0, listed.stderr
            assert [r["memory"] for r in json.loads(listed.stdout)["results"]] == [
                "Likes green tea"
            ]
            added = cli(home, "add", "Plays chess", "--user", "ana", "--no-infer", config=config)
            assert added.returncode == 0, added.stderr
            found = admin.post("/v3/memories/", json={"filters": {"user_id": "ana"}}).json()
            assert {r["memory"] for r in found["results"]} == {"Likes green tea", "Plays chess"}
            _, _, other_key = new_project(admin, "team-b")
            with server.client(other_key) as other:
                stored = other.post("/v1/memories/", json={
                    "messages": "Works nights", "user_id": "bo", "infer": False,
                    "async_mode": False,
                })  # fmt: skip
                assert stored.status_code == 200, stored.text
            theirs = cli(
                home, "--project", "team-b", "--json", "list", "--user", "bo", config=config
            )
            assert [r["memory"] for r in json.loads(theirs.stdout)["results"]] == ["Works nights"]
            assert (
                json.loads(cli(home, "--json", "list", "--user", "bo", config=config).stdout)[
                    "results"
                ]
                == []
            )
            projects = json.loads(cli(home, "--json", "projects").stdout)["results"]
            assert [(p["name"], p["default"]) for p in projects] == [
                ("default", True),
                ("team-b", False),
            ]
            assert projects[0]["store"] == str(home / "engram.db")
            pong = admin.get("/v1/ping/").json()
            refused = admin.delete(
                f"/api/v1/orgs/organizations/{pong['org_id']}/projects/{pong['project_id']}/"
            )
            assert refused.status_code == 409 and "default project" in refused.json()["detail"]
    finally:
        server.close()


def test_docs_load_without_a_network(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "home")
    try:
        with server.client(None) as anyone:
            for page in ("/docs", "/redoc"):
                html = anyone.get(page)
                assert html.status_code == 200
                assert "cdn." not in html.text and "https://" not in html.text.replace(
                    "https://fastapi", ""
                )
                for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
                    if asset in html.text:
                        assert anyone.get(f"/docs-assets/{asset}").status_code == 200
            assert anyone.get("/openapi.json").json()["info"]["title"] == "Engram"
    finally:
        server.close()


def test_a_server_without_a_usable_owner_key_mints_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fresh = cli(home, "keys", "list")
    assert fresh.returncode == 2 and "no server has used" in fresh.stderr
    conn = control.connect(home / "server.db")
    try:
        first = control.bootstrap(conn, None)
        assert first is not None and control.bootstrap(conn, None) is None
        for row in control.list_keys(conn, str(control.default_project(conn))):
            control.revoke_key(conn, str(control.default_project(conn)), row["id"])
        again = control.bootstrap(conn, None)  # every owner key revoked: a new one, shown
        assert again is not None and again != first
    finally:
        conn.close()


def test_where_the_default_project_keeps_its_memories_is_decided_once(tmp_path: Path) -> None:
    fresh = control.connect(tmp_path / "fresh" / "server.db")
    control.bootstrap(fresh, None)
    assert control.default_store(fresh) == (control.default_project(fresh), "")
    fresh.close()
    older = tmp_path / "older"  # a data directory an earlier Engram served
    conn = control.connect(older / "server.db")
    org = control.create_org(conn, "default")
    project = control.create_project(conn, org["id"], "default")["id"]
    (older / "projects" / project).mkdir(parents=True)
    (older / "projects" / project / "engram.db").write_bytes(b"")
    control.bootstrap(conn, None)
    assert control.default_store(conn) == (project, f"projects/{project}")
    (older / "projects" / project / "engram.db").unlink()  # decided: it stays there
    control.bootstrap(conn, None)
    assert control.default_store(conn) == (project, f"projects/{project}")
    conn.close()
