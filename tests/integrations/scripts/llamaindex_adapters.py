"""engram.integrations.llama_index with the real llama-index-core (run in .venv-int-llamaindex):
the memory block inside llama-index-core's `Memory` (messages flushed from the short-term queue
are remembered, and recalled in the next session), the retriever (alone and as an agent's
`RetrieverTool`), sync and async; and llama-index-memory-mem0's own `Mem0Memory` on Engram.

`llamaindex_adapters.py` uses the library store (`Memory`, `AsyncMemory`);
`llamaindex_adapters.py URL KEY` uses mem0's official clients (`MemoryClient`,
`AsyncMemoryClient`) against that `engram serve`."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory as ChatMemory
from llama_index.core.schema import MetadataMode
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.core.tools import RetrieverTool

from engram.integrations.llama_index import EngramMemoryBlock, EngramRetriever

CONVERSATION = [
    ("user", "I'm vegetarian and I live in Lisbon."),
    ("assistant", "Good to know: vegetarian, in Lisbon."),
    ("user", "My sister is called Marta."),
    ("assistant", "Nice, say hello to Marta from me."),
    ("user", "Can you plan a weekend trip for us?"),
    ("assistant", "Sure, how about two days in Porto by train?"),
]


def session(block: EngramMemoryBlock, session_id: str) -> ChatMemory:
    """A short-term memory that keeps about 30 words of chat, the rest flushed to the block."""
    return ChatMemory.from_defaults(
        session_id=session_id, token_limit=40, memory_blocks=[block], tokenizer_fn=str.split
    )


def check_block(memory: Any, user: str) -> None:
    block = EngramMemoryBlock(memory=memory, user_id=user)
    first = session(block, f"{user}-1")
    for role, text in CONVERSATION:
        first.put(ChatMessage(role=role, content=text))
    assert first.get_all(status=MessageStatus.ARCHIVED), "nothing left the short-term queue"
    recalled = session(block, f"{user}-2").get(input="Any vegetarian restaurant in Lisbon?")
    system = recalled[0]
    assert system.role == "system" and "<engram_memories>" in system.content, recalled
    assert "- Is vegetarian" in system.content and "- Lives in Lisbon" in system.content, system
    assert session(block, f"{user}-3").get() == []  # nothing to search by, nothing recalled

    retriever = EngramRetriever(memory, user_id=user, top_k=3)
    nodes = retriever.retrieve("Where does the user live? Lisbon")
    top = nodes[0]
    assert top.node.get_content() == "Lives in Lisbon" and 0 < top.score <= 1, nodes
    assert top.node.node_id == top.node.metadata["id"] and top.node.metadata["user_id"] == user
    seen = top.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "created_at: " in seen and user not in seen, seen
    tool = RetrieverTool.from_defaults(retriever, name="recall", description="Long-term memory.")
    assert "Has a sister named Marta" in tool.call("sister").content
    narrowed = EngramRetriever(memory, user_id=user, filters={"categories": {"contains": "family"}})
    assert [n.node.get_content() for n in narrowed.retrieve("Lisbon")] == [
        "Has a sister named Marta"
    ]
    assert EngramRetriever(memory, user_id="nobody").retrieve("Lisbon") == []


async def check_async(memory: Any, user: str) -> None:
    verbatim = EngramMemoryBlock(memory=memory, user_id=user, infer=False, name="engram")
    await verbatim.aput([
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="I'm vegetarian and I live in Lisbon."),
        ChatMessage(role="tool", content="{}"),
    ])  # fmt: skip
    found = await verbatim.aget([ChatMessage(role="user", content="Lisbon?")])
    assert found == "- I'm vegetarian and I live in Lisbon.", found
    chat = session(verbatim, f"{user}-1")
    assert (await chat.aget(input="vegetarian"))[0].content.count("I'm vegetarian") == 1
    nodes = await EngramRetriever(memory, user_id=user).aretrieve("Lisbon")
    assert [n.node.get_content() for n in nodes] == ["I'm vegetarian and I live in Lisbon."]


def check_upstream(client: Any, user: str, *, queued: bool) -> None:
    """llama-index-memory-mem0's `Mem0Memory` with Engram as its client: an engram `Memory`
    (for mem0's `Memory`) or mem0's `MemoryClient` on `engram serve`."""
    from llama_index.memory.mem0 import Mem0Memory

    memory = Mem0Memory(
        primary_memory=ChatMemory.from_defaults(), context={"user_id": user}, client=client
    )
    # Upstream defect: with no message and no input it searches with an empty query, which
    # both clients refuse (mem0's MemoryClient before sending: "Invalid query: cannot be empty").
    refused = error_of(memory.get)
    assert isinstance(refused, ValueError) and "empty" in str(refused), refused
    memory.put(ChatMessage(role="user", content="I'm allergic to peanuts."))
    deadline = time.monotonic() + 30  # MemoryClient.add is queued, as on the Platform
    while queued and not client.get_all(filters={"user_id": user})["results"]:
        assert time.monotonic() < deadline, "the queued add never ran"
        time.sleep(0.1)
    messages = memory.get(input="Should I order the peanut curry?")
    assert messages[0].role == "system", messages
    assert "[health] : Is allergic to peanuts" in messages[0].content, messages[0].content


def check_from_client_defect(url: str, key: str) -> None:
    """llama-index-memory-mem0 2.1.0's `Mem0Memory.from_client` passes org_id= and project_id=
    to `MemoryClient`, which mem0ai 2.x no longer takes: it fails before any request."""
    from llama_index.memory.mem0 import Mem0Memory

    failed = error_of(lambda: Mem0Memory.from_client({"user_id": "frank"}, api_key=key, host=url))
    expected = "MemoryClient.__init__() got an unexpected keyword argument 'org_id'"
    assert isinstance(failed, TypeError) and str(failed) == expected, failed


def error_of(call: Any) -> Exception | None:
    try:
        call()
    except Exception as exc:
        return exc
    return None


def main() -> None:
    if len(sys.argv) == 3:
        from mem0 import AsyncMemoryClient, MemoryClient

        url, key = sys.argv[1:]
        memory: Any = MemoryClient(api_key=key, host=url)
        amemory: Any = AsyncMemoryClient(api_key=key, host=url)
        check_from_client_defect(url, key)
        upstream, queued, where = MemoryClient(api_key=key, host=url), True, "remote"
    else:
        from engram import AsyncMemory, Memory

        config = {"embedder": {"provider": "hashing"}, "data_dir": tempfile.mkdtemp()}
        memory, amemory = Memory.from_config(config), AsyncMemory.from_config(config)
        upstream, queued, where = memory, False, "library"
    check_block(memory, "alice")
    asyncio.run(check_async(amemory, "dave"))
    check_upstream(upstream, "erin", queued=queued)
    print(f"ok llamaindex {where}")


if __name__ == "__main__":
    main()
