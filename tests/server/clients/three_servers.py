"""Run inside a virtualenv with the official `mem0ai` package: one MemoryClient per server of
three sharing one database; what one writes the others read at once. Usage: three_servers.py
API_KEY URL URL URL."""

from __future__ import annotations

import importlib.metadata
import sys
import time
from typing import Any

from mem0 import MemoryClient

KEY, URLS = sys.argv[1], sys.argv[2:]
V2 = importlib.metadata.version("mem0ai").startswith("2.")


def added(client: MemoryClient, answer: dict[str, Any]) -> str:
    """The memory id of an add (2.x queues it: its event is polled, here through `client`)."""
    if "event_id" not in answer:
        return str(answer["results"][0]["id"])
    for _ in range(600):
        event = client.client.get(f"/v1/event/{answer['event_id']}/").json()
        if event["status"] == "SUCCEEDED":
            return str(event["results"][0]["id"])
        assert event["status"] in ("PENDING", "RUNNING"), event
        time.sleep(0.05)
    raise AssertionError("the add did not finish")


def scope(user: str) -> dict[str, Any]:
    return {"filters": {"user_id": user}} if V2 else {"user_id": user}


def main() -> None:
    a, b, c = (MemoryClient(api_key=KEY, host=url) for url in URLS)
    extra = {} if V2 else {"async_mode": False}
    # Queued through the first server, its event read through the second.
    memory_id = added(b, a.add("I keep bees on the roof.", user_id="kim", infer=False, **extra))
    assert c.get(memory_id)["memory"] == "I keep bees on the roof."
    hits = b.search("bees", **scope("kim"))
    hits = hits["results"] if isinstance(hits, dict) else hits
    assert [h["id"] for h in hits] == [memory_id]
    c.update(memory_id, text="I keep bees and hens on the roof.")
    assert a.get(memory_id)["memory"] == "I keep bees and hens on the roof."
    assert [h["event"] for h in b.history(memory_id)] == ["ADD", "UPDATE"]
    listed = a.get_all(**scope("kim"))
    listed = listed["results"] if isinstance(listed, dict) else listed
    assert [m["id"] for m in listed] == [memory_id]
    b.delete(memory_id)
    for client in (a, b, c):
        listed = client.get_all(**scope("kim"))
        assert (listed["results"] if isinstance(listed, dict) else listed) == []
    print("ok", importlib.metadata.version("mem0ai"))


if __name__ == "__main__":
    main()
