"""MCP over streamable HTTP in `engram serve` (`/mcp`, `/mcp/{client}/http/{user}`), through the
official SDK's client over real HTTP, on both databases; and `engram mcp --url` (stdio) on a
live server."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.server.live import ADMIN_KEY, LiveServer, add_now, member_key, new_project
from tests.test_mcp import MEM0_TOOLS, OPENMEMORY_TOOLS, call, failure

ROOT = Path(__file__).resolve().parents[2]


def connect(url: str, key: str = ADMIN_KEY) -> tuple[httpx2.AsyncClient, Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Token {key}"}, timeout=30)
    return http, Client(streamable_http_client(url, http_client=http))


async def test_mem0_tools_on_the_keys_project(server: LiveServer, admin: httpx.Client) -> None:
    http, client = connect(f"{server.url}/mcp?user_id=hana")
    async with http, client as mem0:
        assert {t.name for t in (await mem0.list_tools()).tools} == MEM0_TOOLS
        # Queued, as on the Platform: the event's status shows it through.
        queued = await call(mem0, "add_memory", text="Hana keeps bees", infer=False)
        assert queued["status"] == "PENDING"
        for _ in range(200):
            event = await call(mem0, "get_event_status", event_id=queued["event_id"])
            if event["status"] == "SUCCEEDED":
                break
            await asyncio.sleep(0.05)
        assert event["status"] == "SUCCEEDED", event
        memory_id = event["results"][0]["id"]
        events = await call(mem0, "list_events")
        assert events["results"][0]["id"] == queued["event_id"]
        # Waited for: the memories come back.
        now = await call(mem0, "add_memory", text="Hana lives in Gent", async_mode=False,
                         infer=False, metadata={"topic": "home"})  # fmt: skip
        assert now["results"][0]["event"] == "ADD"
        found = await call(mem0, "search_memories", query="beekeeping bees")
        assert found["results"][0]["id"] == memory_id
        listed = await call(mem0, "get_memories", filters={"metadata": {"topic": "home"}})
        assert [m["memory"] for m in listed["results"]] == ["Hana lives in Gent"]
        await call(mem0, "update_memory", memory_id=memory_id, text="Hana keeps two hives")
        assert (await call(mem0, "get_memory", memory_id=memory_id))["memory"].endswith("hives")
        await call(mem0, "delete_memory", memory_id=memory_id)
        assert "not_found" in await failure(mem0, "get_memory", memory_id=memory_id)
        assert "validation_error" in await failure(mem0, "get_memory", memory_id="../v1/ping")
        users = {e["name"] for e in (await call(mem0, "list_entities"))["results"]}
        assert users == {"hana"}
        assert (await call(mem0, "delete_all_memories"))["deleted_count"] == 1
    # What the tools wrote is what the REST API reads: the same project and user.
    assert admin.get("/v1/memories/", params={"user_id": "hana"}).json()["count"] == 0


async def test_openmemory_path(server: LiveServer, admin: httpx.Client) -> None:
    other = add_now(admin, "Ivo hates olives", user="ivo", infer=False)["results"][0]["id"]
    http, client = connect(f"{server.url}/mcp/claude/http/jun")
    async with http, client as om:
        assert {t.name for t in (await om.list_tools()).tools} == OPENMEMORY_TOOLS
        added = await call(om, "add_memories", text="Jun loves olives", infer=False)
        mine = added["results"][0]["id"]
        stored = admin.get(f"/v1/memories/{mine}/").json()
        assert stored["user_id"] == "jun" and stored["metadata"] == {"mcp_client": "claude"}
        found = await call(om, "search_memory", query="olives")
        assert [r["id"] for r in found["results"]] == [mine]
        assert "not_found" in await failure(om, "delete_memories", memory_ids=[mine, other])
        assert admin.get(f"/v1/memories/{mine}/").status_code == 200  # nothing was deleted
        await call(om, "delete_memories", memory_ids=[mine])
        assert admin.get(f"/v1/memories/{mine}/").status_code == 404
    assert admin.get(f"/v1/memories/{other}/").status_code == 200


async def test_keys_roles_and_projects(server: LiveServer, admin: httpx.Client) -> None:
    # No key, a wrong key: refused at the door, with the API's error body.
    async with httpx.AsyncClient(base_url=server.url) as raw:
        ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        for headers in ({}, {"Authorization": "Token not-a-key"}):
            answer = await raw.post("/mcp", json=ping, headers=headers)
            assert answer.status_code == 401, answer.text
            assert answer.json()["code"] == "unauthenticated"
        assert (await raw.post("/mcp/a/b", json=ping, headers=headers)).status_code == 404
    # A READER key reads but cannot write.
    org_id, project_id, owner_key = new_project(admin, "mcp-roles")
    reader = member_key(admin, org_id, project_id, "reader@example.com", "READER")
    http, client = connect(f"{server.url}/mcp", owner_key)
    async with http, client as mem0:
        await call(mem0, "add_memory", text="Kai sails", user_id="kai", async_mode=False,
                   infer=False)  # fmt: skip
    http, client = connect(f"{server.url}/mcp", reader)
    async with http, client as mem0:
        assert (await call(mem0, "get_memories", filters={"user_id": "kai"}))["count"] == 1
        refused = await failure(mem0, "add_memory", text="x", user_id="kai", async_mode=False)
        assert "permission_denied" in refused
        assert "permission_denied" in await failure(mem0, "delete_all_memories", user_id="kai")
    # The admin's key is another project's: it does not see Kai.
    http, client = connect(f"{server.url}/mcp")
    async with http, client as mem0:
        assert (await call(mem0, "get_memories", filters={"user_id": "kai"}))["count"] == 0


async def test_engram_mcp_url_over_stdio(server: LiveServer) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "engram.cli", "mcp", "--url", server.url],
        env={**os.environ, "ENGRAM_API_KEY": ADMIN_KEY},
    )  # fmt: skip
    async with Client(params) as mem0:
        added = await call(mem0, "add_memory", text="Lea paints", user_id="lea",
                           async_mode=False, infer=False)  # fmt: skip
        found = await call(mem0, "search_memories", query="painting", filters={"user_id": "lea"})
        assert found["results"][0]["id"] == added["results"][0]["id"]


async def test_the_docs_python_example(server: LiveServer, capsys: Any) -> None:
    block = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "mcp.md").read_text(), re.DOTALL)
    assert block
    scope: dict[str, Any] = {}
    exec(compile(block.group(1), "docs/mcp.md", "exec"), scope)
    await scope["remember"](server.url, ADMIN_KEY)
    assert "window seats" in capsys.readouterr().out  # as the offline extractor phrased it
