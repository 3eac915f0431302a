"""The MCP tools on the embedded store, through the official `mcp` SDK's own client: in-process
(both stores) and over stdio (`engram mcp`, a real subprocess)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from engram import AsyncMemory
from engram.mcp.backends import LocalBackend
from engram.mcp.tools import Session, mem0_tools, openmemory_tools

MEM0_TOOLS = {
    "add_memory", "search_memories", "get_memories", "get_memory", "update_memory",
    "delete_memory", "delete_all_memories", "delete_entities", "list_entities", "list_events",
    "get_event_status",
}  # fmt: skip
OPENMEMORY_TOOLS = {
    "add_memories",
    "search_memory",
    "list_memories",
    "delete_memories",
    "delete_all_memories",
}


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The tool's structured result; the call must succeed."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def failure(client: Client, tool: str, **arguments: Any) -> str:
    """The text of the tool's error result; the call must fail."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


def connect(memory: AsyncMemory, build: Any = mem0_tools, **session: Any) -> Client:
    """An in-process client of the tools on `memory` (entered by the test: the SDK's task
    groups must be entered and left by the same task)."""
    fixed = Session(LocalBackend(memory), **session)

    async def resolve(_: Any) -> Session:
        return fixed

    return Client(build(resolve))


async def test_the_hosted_servers_tools_with_descriptions(amemory: AsyncMemory) -> None:
    async with connect(amemory, default_user_id="dana") as mem0:
        tools = {t.name: t for t in (await mem0.list_tools()).tools}
        assert set(tools) == MEM0_TOOLS
        for tool in tools.values():  # a model picks a tool by its description and arguments'
            assert tool.description and len(tool.description) > 40, tool.name
            for name, schema in tool.input_schema.get("properties", {}).items():
                assert schema.get("description"), (tool.name, name)
        assert tools["delete_all_memories"].annotations.destructive_hint  # type: ignore[union-attr]
        assert tools["search_memories"].annotations.read_only_hint  # type: ignore[union-attr]
        assert tools["search_memories"].input_schema["required"] == ["query"]


async def test_add_search_get_update_history_delete(amemory: AsyncMemory) -> None:
    async with connect(amemory, default_user_id="dana") as mem0:
        added = await call(mem0, "add_memory", text="Dana is allergic to peanuts", infer=False)
        assert added["status"] == "SUCCEEDED"
        memory_id = added["results"][0]["id"]
        assert (await amemory.get(memory_id))["user_id"] == "dana"  # type: ignore[index]
        found = await call(mem0, "search_memories", query="peanut allergy")
        assert [r["id"] for r in found["results"]] == [memory_id]
        assert found["results"][0]["score"] > 0
        updated = await call(mem0, "update_memory", memory_id=memory_id,
                             text="Dana is allergic to peanuts and cashews")  # fmt: skip
        assert updated["memory"] == "Dana is allergic to peanuts and cashews"
        history = await amemory.history(memory_id)
        assert [h["event"] for h in history] == ["ADD", "UPDATE"]
        assert (await call(mem0, "get_memory", memory_id=memory_id))["memory"].endswith("cashews")
        await call(mem0, "delete_memory", memory_id=memory_id)
        assert await amemory.get(memory_id) is None
        assert "not_found" in await failure(mem0, "get_memory", memory_id=memory_id)


async def test_messages_scopes_and_metadata(amemory: AsyncMemory) -> None:
    async with connect(amemory, default_user_id="dana") as mem0:
        messages = [{"role": "user", "content": "I moved to Lisbon", "name": "Eli"},
                    {"role": "assistant", "content": "Noted, Lisbon it is."}]  # fmt: skip
        added = await call(mem0, "add_memory", messages=messages, agent_id="travel", run_id="r1",
                           metadata={"source": "chat"}, infer=False)  # fmt: skip
        stored = [await amemory.get(r["id"]) for r in added["results"]]
        assert {s["agent_id"] for s in stored if s} == {"travel"}
        assert all(
            s and s.get("user_id") is None for s in stored
        )  # no default user: an agent named
        assert all(s and s["metadata"]["source"] == "chat" for s in stored)
        # The filters name an agent: the default user is not added to them.
        listed = await call(mem0, "get_memories", filters={"agent_id": "travel"})
        assert listed["count"] == 2
        # No scope named: the default user's memories only.
        assert (await call(mem0, "get_memories"))["count"] == 0
        assert "validation_error" in await failure(mem0, "add_memory")
        assert "validation_error" in await failure(mem0, "add_memory", text="   ")


async def test_paging_filters_and_limits(amemory: AsyncMemory) -> None:
    async with connect(amemory, default_user_id="dana") as mem0:
        for n in range(7):
            await call(mem0, "add_memory", text=f"Dana visited city number {n}", infer=False,
                       metadata={"n": n})  # fmt: skip
        page = await call(mem0, "get_memories", page=2, page_size=3)
        assert page["count"] == 7 and len(page["results"]) == 3 and page["next"] == 3
        last = await call(mem0, "get_memories", page=3, page_size=3)
        assert len(last["results"]) == 1 and last["next"] is None
        narrowed = await call(mem0, "get_memories", filters={"metadata": {"n": {"gte": 5}}})
        assert narrowed["count"] == 2  # default user ANDed with the filter
        found = await call(mem0, "search_memories", query="city", limit=2)
        assert len(found["results"]) == 2
        assert "page_size" in await failure(mem0, "get_memories", page_size=0)
        assert "filter" in (await failure(mem0, "search_memories", query="x",
                                          filters={"user_id": {"bogus": 1}})).lower()  # fmt: skip


async def test_delete_all_entities_and_events(amemory: AsyncMemory) -> None:
    async with connect(amemory, default_user_id="dana") as mem0:
        await call(mem0, "add_memory", text="Dana likes jazz", infer=False)
        await call(mem0, "add_memory", text="Finn likes rock", user_id="finn", infer=False)
        await call(mem0, "add_memory", text="The bot speaks French", agent_id="bot", infer=False)
        entities = (await call(mem0, "list_entities"))["results"]
        assert {(e["type"], e["name"]) for e in entities} >= {("user", "dana"), ("user", "finn"),
                                                              ("agent", "bot")}  # fmt: skip
        events = await call(mem0, "list_events")
        assert events["count"] == 3 and events["results"][0]["status"] == "SUCCEEDED"
        status = await call(mem0, "get_event_status", event_id=events["results"][0]["id"])
        assert status["results"][0]["event"] == "ADD"
        assert "not_found" in await failure(mem0, "get_event_status", event_id="nope")
        assert "validation_error" in await failure(mem0, "delete_entities")
        await call(mem0, "delete_entities", agent_id="bot")
        gone = await call(mem0, "delete_all_memories")  # the default user's
        assert gone["deleted_count"] == 1
        left = (await amemory.get_all(filters={"user_id": "*"}))["results"]
        assert [m["memory"] for m in left] == ["Finn likes rock"]


async def test_openmemory_tools_act_on_the_connections_user(amemory: AsyncMemory) -> None:
    async with connect(amemory, openmemory_tools, user_id="ola", client_name="cursor") as om:
        assert {t.name for t in (await om.list_tools()).tools} == OPENMEMORY_TOOLS
        mine = await call(om, "add_memories", text="Ola prefers tabs over spaces", infer=False)
        mine_id = mine["results"][0]["id"]
        other = await amemory.add("Piet prefers spaces", user_id="piet", infer=False)
        other_id = other["results"][0]["id"]
        stored = await amemory.get(mine_id)
        assert stored and stored["user_id"] == "ola"
        assert stored["metadata"]["mcp_client"] == "cursor"
        found = await call(om, "search_memory", query="tabs or spaces")
        assert [r["id"] for r in found["results"]] == [mine_id]  # never another user's
        assert (await call(om, "list_memories"))["count"] == 1
        # Another user's id among them: nothing is deleted.
        refused = await failure(om, "delete_memories", memory_ids=[mine_id, other_id])
        assert "not_found" in refused
        assert await amemory.get(mine_id) is not None
        await call(om, "delete_memories", memory_ids=[mine_id])
        assert await amemory.get(mine_id) is None
        await call(om, "add_memories", text="Ola uses vim", infer=False)
        assert (await call(om, "delete_all_memories"))["deleted_count"] == 1
        assert await amemory.get(other_id) is not None


def _engram(home: Path, *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "engram.cli", "--data-dir", str(home), "--embedder", "hashing", *args],
        env={**os.environ, "MEM0_DEFAULT_USER_ID": "stdio-user"},
    )


async def test_engram_mcp_over_stdio(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with Client(_engram(home, "mcp")) as mem0:
        assert {t.name for t in (await mem0.list_tools()).tools} == MEM0_TOOLS
        added = await call(mem0, "add_memory", text="Gus runs marathons", infer=False)
        found = await call(mem0, "search_memories", query="marathon running")
        assert found["results"][0]["id"] == added["results"][0]["id"]
        assert found["results"][0]["user_id"] == "stdio-user"
    async with Client(_engram(home, "mcp", "--tools", "openmemory", "--user-id", "stdio-user",
                              "--client-name", "claude")) as om:  # fmt: skip
        listed = await call(om, "list_memories")
        assert [m["memory"] for m in listed["results"]] == ["Gus runs marathons"]
    # The same store as the CLI's and the library's.
    async with AsyncMemory.from_config({
        "embedder": {"provider": "hashing"}, "data_dir": str(home),
    }) as memory:  # fmt: skip
        assert (await memory.get_all(user_id="stdio-user"))["total"] == 1
