"""Memory profiles: settings, generation jobs (trigger, sample, idempotent), reading a profile."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.server.live import add_now

PROFILE = "/v2/entities/user/{}/profile/"


def _settled(client: httpx.Client, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        answer: dict[str, Any] = client.get(path).json()
        status = answer.get("status") or answer["job"]["status"]
        if status not in ("pending", "running") or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_profiles_are_generated_and_refreshed(admin: httpx.Client) -> None:
    add_now(admin, "My name is Alex. I live in Berlin.", "alex")
    add_now(admin, "I love jazz.", "alex")
    assert admin.get(PROFILE.format("nobody")).status_code == 404
    first = admin.get(PROFILE.format("alex")).json()  # none yet: one is queued
    assert first["status"] == "pending" and first["profile"] == {}
    ready = _settled(admin, PROFILE.format("alex"))
    assert ready["status"] == "succeeded" and ready["generation_count"] == 1
    assert ready["profile"]["name"] == "Alex" and ready["profile"]["location"] == "Berlin"
    assert ready["profile"]["likes"] == ["jazz"]
    add_now(admin, "I live in Oslo.", "alex")  # newer than the profile: reading it refreshes it
    assert admin.get(PROFILE.format("alex")).json()["profile"]["location"] == "Berlin"
    deadline = time.monotonic() + 30
    while admin.get(PROFILE.format("alex")).json()["generation_count"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert admin.get(PROFILE.format("alex")).json()["profile"]["location"] == "Oslo"


def test_profile_jobs_and_settings(admin: httpx.Client) -> None:
    for user, count in (("ann", 3), ("bob", 2), ("cy", 1)):
        for i in range(count):
            add_now(admin, f"I like topic {i}.", user)
    made = admin.post("/v2/profiles/jobs/", headers={"Idempotency-Key": "k1"},
                      json={"operation": "trigger", "entity_type": "user", "entity_id": "bob"})  # fmt: skip
    assert made.status_code == 200 and made.json()["replayed"] is False
    again = admin.post("/v2/profiles/jobs/", headers={"Idempotency-Key": "k1"},
                       json={"operation": "trigger", "entity_type": "user", "entity_id": "bob"})  # fmt: skip
    assert again.json()["replayed"] is True and again.json()["job_id"] == made.json()["job_id"]
    job = _settled(admin, made.json()["status_url"])["job"]
    assert job["status"] == "succeeded" and (job["total"], job["succeeded"]) == (1, 1)
    sample = admin.post("/v2/profiles/jobs/", json={"operation": "sample", "limit": 2}).json()
    assert sample["entity_ids"] == ["ann", "bob"] and sample["sampled"] == 2
    assert _settled(admin, sample["status_url"])["job"]["succeeded"] == 2
    for body, status in [
        ({"operation": "trigger", "entity_id": "zed"}, 404),
        ({"operation": "rebuild"}, 400),
        ({"operation": "trigger"}, 400),
        ({"operation": "sample", "limit": 11}, 400),
        ({"operation": "sample", "entity_type": "agent"}, 400),
    ]:
        assert admin.post("/v2/profiles/jobs/", json=body).status_code == status, body
    settings = admin.get("/v2/profiles/settings/").json()
    assert settings["enabled"] is True and settings["entities"]["user"]["schema"] is None
    schema = {"type": "object", "properties": {"likes": {"type": "array",
              "items": {"type": "string"}}}, "required": ["likes"]}  # fmt: skip
    updated = admin.post("/v2/profiles/settings/", json={"entities": {"user": {"schema": schema}}})
    assert updated.json()["entities"]["user"]["schema"] == schema
    trigger = admin.post("/v2/profiles/jobs/", json={"operation": "trigger", "entity_id": "cy"})
    _settled(admin, trigger.json()["status_url"])
    assert admin.get(PROFILE.format("cy")).json()["profile"] == {"likes": ["topic 0"]}
    assert admin.post("/v2/profiles/settings/", json={"schema": schema}).status_code == 400
    bad = admin.post(
        "/v2/profiles/settings/", json={"entities": {"user": {"schema": {"oneOf": []}}}}
    )
    assert bad.status_code == 400
    assert admin.get("/v2/profiles/settings/").json()["entities"]["user"]["schema"] == schema
    admin.post("/v2/profiles/settings/", json={"enabled": False})
    assert admin.get(PROFILE.format("cy")).json()["status"] == "not_enabled"
    off = admin.post("/v2/profiles/jobs/", json={"operation": "trigger", "entity_id": "cy"})
    assert off.status_code == 400 and "not enabled" in off.json()["detail"]
