"""Memory exports (queued, schema-driven), summaries, and the project's JSON Lines export/import."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.server.live import LiveServer, add_now, new_project

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "location": {"type": "string"},
        "memories": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["location"],
}


def _ready(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        answer = client.post("/v1/exports/get/", json=body)
        if answer.status_code != 202 or time.monotonic() > deadline:
            return answer
        assert answer.json()["status"] in ("PENDING", "RUNNING")
        time.sleep(0.05)


def test_schema_export_by_id_and_by_filters(admin: httpx.Client) -> None:
    add_now(admin, "My name is Alex.")
    add_now(admin, "I live in Berlin.")
    add_now(admin, "I live in Oslo.", user="bo")
    made = admin.post("/v1/exports/", json={"schema": SCHEMA, "filters": {"user_id": "alex"}})
    assert made.status_code == 201, made.text
    assert made.json()["id"] and "export" in made.json()["message"].lower()
    expected = {
        "name": "Alex",
        "location": "Berlin",
        "memories": ["Lives in Berlin", "Name is Alex"],
    }
    by_id = _ready(admin, {"memory_export_id": made.json()["id"]})
    assert by_id.status_code == 200 and by_id.json() == expected
    # the 1.x style (scope at the top level, schema as JSON text) names the same filters
    again = admin.post("/v1/exports/", json={"schema": json.dumps(SCHEMA), "user_id": "alex"})
    assert again.status_code == 201
    assert _ready(admin, {"filters": {"user_id": "alex"}}).json() == expected
    events = admin.get("/v1/events/").json()["results"]
    assert {e["event_type"] for e in events} == {"EXPORT"}
    assert admin.post("/v1/exports/get/", json={"memory_export_id": "nope"}).status_code == 404
    assert admin.post("/v1/exports/get/", json={"filters": {"user_id": "zed"}}).status_code == 404


def test_bad_exports_are_refused_and_failures_reported(admin: httpx.Client) -> None:
    for body, message in [
        ({"filters": {"user_id": "a"}}, "schema is required"),
        ({"schema": {"type": "object", "anyOf": []}, "user_id": "a"}, "unsupported"),
        ({"schema": SCHEMA, "filters": {"user_id": "a", "bogus": {"$x": 1}}}, "unknown operator"),
        ({"schema": SCHEMA, "user_id": "a", "format": "csv"}, "unknown export parameters"),
        ({"schema": SCHEMA, "filters": {"user_id": {"regex": "a"}}}, "regex"),
    ]:
        answer = admin.post("/v1/exports/", json=body)
        assert answer.status_code == 400 and message in answer.json()["detail"], answer.text
    assert admin.get("/v1/events/").json()["count"] == 0  # nothing was queued
    add_now(admin, "I like tea.")
    made = admin.post("/v1/exports/", json={"schema": SCHEMA, "user_id": "alex"}).json()
    failed = _ready(admin, {"memory_export_id": made["id"]})
    assert failed.status_code == 400
    assert "cannot fill required properties $.location" in failed.json()["detail"]
    event = admin.get(f"/v1/event/{made['id']}/").json()
    assert event["status"] == "FAILED" and "location" in event["error"]


def test_summary(admin: httpx.Client) -> None:
    add_now(admin, "I live in Berlin.")
    add_now(admin, "I love sushi.")
    summary = admin.post("/v1/summary/", json={"filters": {"user_id": "alex"}}).json()
    assert summary["memory_count"] == 2 and summary["method"] == "offline"
    assert "Lives in Berlin" in summary["summary"] and "Loves sushi" in summary["summary"]
    add_now(admin, "I like jazz.", user="bo")
    everyone = admin.post("/v1/summary/", json={"filters": None}).json()  # the key's project
    assert everyone["memory_count"] == 3


def test_project_jsonl_round_trips(server: LiveServer, admin: httpx.Client) -> None:
    first = add_now(admin, "I live in Berlin.", metadata={"source": "chat"})["results"][0]["id"]
    add_now(admin, "I love sushi.", user="bo", infer=False)
    admin.put(f"/v1/memories/{first}/", json={"text": "Lives in Paris"})
    admin.post("/v1/feedback/", json={"memory_id": first, "feedback": "POSITIVE"})
    pong = admin.get("/v1/ping/").json()
    project = f"/api/v1/orgs/organizations/{pong['org_id']}/projects/{pong['project_id']}/"
    admin.patch(project, json={"custom_instructions": "Short facts.",
                               "agent_custom_instructions": "Tools only."})  # fmt: skip
    exported = admin.get("/v1/exports/jsonl/")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = exported.text.splitlines()
    assert json.loads(lines[0]) == {"type": "project", "custom_instructions": "Short facts.",
                                    "custom_categories": None,
                                    "agent_custom_instructions": "Tools only."}  # fmt: skip
    assert [json.loads(line)["type"] for line in lines[1:]].count("memory") == 2
    _, _, key = new_project(admin, "copy")
    with server.client(key) as copy:
        imported = copy.post("/v1/imports/jsonl/", content=exported.content)
        assert imported.status_code == 200, imported.text
        assert imported.json()["memories"] == 2 and imported.json()["history"] == 3
        assert copy.get("/v1/exports/jsonl/").text == exported.text  # exactly the same
        assert copy.get(f"/v1/memories/{first}/").json()["memory"] == "Lives in Paris"
        found = copy.post("/v3/memories/search/", json={"query": "Paris", "user_id": "alex"})
        assert found.json()["results"][0]["id"] == first  # embeddings were made on import
        again = copy.post("/v1/imports/jsonl/", content=exported.content)
        assert again.status_code == 409  # the ids exist: nothing written
        bad = copy.post("/v1/imports/jsonl/", content=b'{"type": "memory", "oops": 1}\n')
        assert bad.status_code == 400 and "line 1" in bad.json()["detail"]
        assert copy.post("/v1/imports/jsonl/", content=b"\xff\xfe").status_code == 400
        assert copy.post("/v3/memories/", json={"user_id": "alex"}).json()["count"] == 1
