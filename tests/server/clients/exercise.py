"""Run inside a virtualenv with the official `mem0ai` package: every MemoryClient and
AsyncMemoryClient method against a live Engram server. Usage: exercise.py URL API_KEY."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mem0 import AsyncMemoryClient, MemoryClient

URL, KEY = sys.argv[1], sys.argv[2]
V2 = importlib.metadata.version("mem0ai").startswith("2.")


def scope(user: str) -> dict[str, Any]:
    return {"filters": {"user_id": user}} if V2 else {"user_id": user}


def wait(client: MemoryClient, answer: dict[str, Any]) -> list[dict[str, Any]]:
    """2.x adds are queued; 1.x adds here run synchronously (async_mode=False)."""
    if "event_id" not in answer:
        done: list[dict[str, Any]] = answer["results"]
        return done
    for _ in range(300):
        event = client.client.get(f"/v1/event/{answer['event_id']}/").json()
        if event["status"] == "SUCCEEDED":
            results: list[dict[str, Any]] = event["results"]
            return results
        assert event["status"] in ("PENDING", "RUNNING"), event
        time.sleep(0.05)
    raise AssertionError("the add did not finish")


def add(client: MemoryClient, text: str, user: str | None, **ids: str) -> str:
    extra = {} if V2 else {"async_mode": False}
    answer = client.add(text, user_id=user, infer=False, metadata={"k": 1}, **ids, **extra)
    return str(wait(client, answer)[0]["id"])


def run_order_independent(client: MemoryClient) -> None:
    """Calls whose success must not depend on what an earlier call already removed."""
    add(client, "Two scope ids.", "ru", run_id="rr")
    add(client, "Three of them.", "ua", agent_id="ag", app_id="ap")
    add(client, "Agent and run.", None, agent_id="ag2", run_id="rr2")
    client.reset()  # deleting user ru also removes run rr's memories before rr's turn comes
    assert client.users()["results"] == []
    add(client, "Soon gone.", "gone", run_id="gr")
    client.delete_users(user_id="gone")
    client.delete_users(user_id="gone")  # nothing left to delete: still a success
    client.delete_users(run_id="gr")
    client.delete_all(user_id="gone")
    assert client.get_all(**scope("gone"))["results"] == []


def feedback(client: MemoryClient, memory_id: str) -> None:
    if V2:
        assert client.feedback(memory_id, feedback="POSITIVE")["feedback"] == "POSITIVE"
        return
    # mem0ai 1.0.11's feedback() sends the request, then fails in its own telemetry call
    # (capture_client_event gets one argument too many): check the request went through.
    try:
        client.feedback(memory_id, feedback="POSITIVE")
    except TypeError as exc:
        if "capture_client_event" not in str(exc):
            raise
    answer = client.client.post(
        "/v1/feedback/", json={"memory_id": memory_id, "feedback": "POSITIVE"}
    )
    assert answer.json()["feedback"] == "POSITIVE"


def run_sync() -> None:
    client = MemoryClient(api_key=KEY, host=URL)
    assert client.org_id and client.project_id
    first = add(client, "I love hiking in the Alps.", "alex")
    second = add(client, "My sister lives in Oslo.", "alex")
    assert client.get(first)["memory"] == "I love hiking in the Alps."
    listed = client.get_all(**scope("alex"))
    assert len(listed["results"]) == 2, listed
    found = client.search("hiking", **scope("alex"))
    assert found["results"][0]["id"] == first, found
    client.update(first, text="I love hiking in Norway.")
    assert client.get(first)["memory"] == "I love hiking in Norway."
    assert [h["event"] for h in client.history(first)] == ["ADD", "UPDATE"]
    feedback(client, first)
    client.batch_update([{"memory_id": second, "text": "My sister lives in Bergen."}])
    assert client.get(second)["memory"] == "My sister lives in Bergen."
    client.batch_delete([{"memory_id": second}])
    client.delete(first)
    assert client.get_all(**scope("alex"))["results"] == []
    add(client, "Prefers tea.", "bo")
    assert [u["name"] for u in client.users()["results"]] == ["bo"]
    client.delete_all(user_id="bo")
    add(client, "Prefers coffee.", "cy")
    client.delete_users(user_id="cy")
    add(client, "Likes jazz.", "di")
    client.reset()
    assert client.users()["results"] == []
    run_order_independent(client)
    project = client.get_project(fields=["name"]) if V2 else client.get_project()
    assert "name" in project
    client.update_project(custom_instructions="Keep facts short.")
    assert client.get_project()["custom_instructions"] == "Keep facts short."
    hook = client.create_webhook(
        url="http://127.0.0.1:9/h",
        name="h",
        project_id=client.project_id,
        event_types=["memory_add"],
    )
    assert client.get_webhooks(client.project_id)[0]["name"] == "h"
    client.update_webhook(hook["webhook_id"], name="h2")
    client.delete_webhook(hook["webhook_id"])
    assert client.get_webhooks(client.project_id) == []
    run_exports(client)
    if V2:
        run_profiles(client)
    run_project(client)
    client.reset()


def _status(result: Any) -> Any:
    return result.get("status")


def ready(fetch: Callable[[], Any], status_of: Callable[[Any], Any] = _status) -> Any:
    """Poll `fetch()` until the queued work it reports is done."""
    for _ in range(300):
        result = fetch()
        if status_of(result) not in ("PENDING", "RUNNING", "pending", "running"):
            return result
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


SCHEMA = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "memories": {"type": "array", "items": {"type": "string"}},
    },
}


def run_exports(client: MemoryClient) -> None:
    add(client, "Ships code on Fridays.", "ex")
    made = client.create_memory_export(schema=json.dumps(SCHEMA), filters={"user_id": "ex"})
    assert made["id"], made
    expected = {"user_id": "ex", "memories": ["Ships code on Fridays."]}
    assert ready(lambda: client.get_memory_export(memory_export_id=made["id"])) == expected
    assert client.get_memory_export(filters={"user_id": "ex"}) == expected
    summary = client.get_summary(filters={"user_id": "ex"})
    assert summary["memory_count"] == 1 and "Ships code on Fridays" in summary["summary"]


def run_profiles(client: MemoryClient) -> None:
    """mem0ai 2.x memory profiles."""
    client.update_profile_settings(enabled=True, custom_instructions="Short.")
    settings = client.get_profile_settings()
    assert settings["enabled"] and settings["entities"]["user"]["custom_instructions"] == "Short."
    job = client.generate_profile("ex")
    done = ready(lambda: client.get_profile_job(job["status_url"]), lambda r: r["job"]["status"])
    assert done["job"]["succeeded"] == 1, done
    assert client.get_profile_job(job["job_id"])["job"]["status"] == "succeeded"
    assert client.get_profile("ex")["status"] == "succeeded"
    sample = client.sample_profiles(limit=1)
    assert sample["entity_ids"] == ["ex"]


def run_project(client: MemoryClient) -> None:
    """The `client.project` manager, on a project made for it (it ends by deleting it)."""
    assert client.project.get()["project_id"] == client.project_id
    made = client.project.create(name="scratch", description="for the client test")
    other = MemoryClient(api_key=made["api_key"], host=URL)
    assert other.project_id == made["id"] != client.project_id
    assert other.project.update(custom_instructions="Be brief.")["custom_instructions"] == (
        "Be brief."
    )
    other.project.add_member("reader@example.com", role="READER")
    other.project.update_member("reader@example.com", role="OWNER")
    emails = {m["email"]: m["role"] for m in other.project.get_members()["members"]}
    assert emails["reader@example.com"] == "OWNER", emails
    other.project.remove_member("reader@example.com")
    assert "reader@example.com" not in {m["email"] for m in other.project.get_members()["members"]}
    other.project.delete()
    try:
        other.chat()
    except NotImplementedError:
        return  # the client's own stub: it never reaches a server
    raise AssertionError("chat() is a stub in the official client")


async def run_async() -> None:
    client = AsyncMemoryClient(api_key=KEY, host=URL)
    extra = {} if V2 else {"async_mode": False}
    answer = await client.add("Async memories work.", user_id="as", infer=False, **extra)
    if "event_id" in answer:
        for _ in range(300):
            event = (await client.async_client.get(f"/v1/event/{answer['event_id']}/")).json()
            if event["status"] == "SUCCEEDED":
                break
            await asyncio.sleep(0.05)
    listed = await client.get_all(**scope("as"))
    memory_id = listed["results"][0]["id"]
    assert (await client.get(memory_id))["memory"] == "Async memories work."
    assert (await client.search("async", **scope("as")))["results"][0]["id"] == memory_id
    await run_async_extras(client)
    await client.update(memory_id, text="Async updates work.")
    assert len(await client.history(memory_id)) == 2
    if V2:
        await client.feedback(memory_id, feedback="NEGATIVE", feedback_reason="stale")
    await client.batch_update([{"memory_id": memory_id, "text": "Batched."}])
    assert [u["name"] for u in (await client.users())["results"]] == ["as"]
    await client.batch_delete([{"memory_id": memory_id}])
    await client.delete_all(user_id="as")
    await client.add("One more.", user_id="at", infer=False, **extra)
    await asyncio.sleep(0.5)
    await client.reset()


async def poll(
    fetch: Callable[[], Awaitable[Any]], status_of: Callable[[Any], Any] = _status
) -> Any:
    for _ in range(300):
        result = await fetch()
        if status_of(result) not in ("PENDING", "RUNNING", "pending", "running"):
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not finish")


async def run_async_extras(client: AsyncMemoryClient) -> None:
    """Exports, summary, profiles (2.x) and the project manager, through the async client."""
    made = await client.create_memory_export(schema=json.dumps(SCHEMA), filters={"user_id": "as"})
    got = await poll(lambda: client.get_memory_export(memory_export_id=made["id"]))
    assert got == {"user_id": "as", "memories": ["Async memories work."]}, got
    assert (await client.get_summary(filters={"user_id": "as"}))["memory_count"] == 1
    if V2:
        await client.update_profile_settings(enabled=True)
        assert (await client.get_profile_settings())["enabled"] is True
        job = await client.generate_profile("as")
        done = await poll(lambda: client.get_profile_job(job["status_url"]),
                          lambda r: r["job"]["status"])  # fmt: skip
        assert done["job"]["succeeded"] == 1
        assert (await client.get_profile("as"))["status"] == "succeeded"
        assert (await client.sample_profiles(limit=1))["entity_ids"] == ["as"]
    project = await client.project.get()
    assert project["project_id"] == client.project_id
    members = (await client.project.get_members())["members"]
    assert members and members[0]["role"] == "OWNER"


run_sync()
asyncio.run(run_async())
print("ok", importlib.metadata.version("mem0ai"))
