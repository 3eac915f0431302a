"""Run inside a virtualenv with the official `mem0ai` package: every MemoryClient and
AsyncMemoryClient method against a live Engram server. Usage: exercise.py URL API_KEY."""

from __future__ import annotations

import asyncio
import importlib.metadata
import sys
import time

from mem0 import AsyncMemoryClient, MemoryClient

URL, KEY = sys.argv[1], sys.argv[2]
V2 = importlib.metadata.version("mem0ai").startswith("2.")


def scope(user: str) -> dict:
    return {"filters": {"user_id": user}} if V2 else {"user_id": user}


def wait(client: MemoryClient, answer: dict) -> list:
    """2.x adds are queued; 1.x adds here run synchronously (async_mode=False)."""
    if "event_id" not in answer:
        return answer["results"]
    for _ in range(300):
        event = client.client.get(f"/v1/event/{answer['event_id']}/").json()
        if event["status"] == "SUCCEEDED":
            return event["results"]
        assert event["status"] in ("PENDING", "RUNNING"), event
        time.sleep(0.05)
    raise AssertionError("the add did not finish")


def add(client: MemoryClient, text: str, user: str) -> str:
    extra = {} if V2 else {"async_mode": False}
    results = wait(client, client.add(text, user_id=user, infer=False, metadata={"k": 1}, **extra))
    return results[0]["id"]


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


run_sync()
asyncio.run(run_async())
print("ok", importlib.metadata.version("mem0ai"))
