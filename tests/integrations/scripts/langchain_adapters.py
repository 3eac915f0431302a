"""engram.integrations.langchain with the real langchain-core (run in .venv-int-langchain): the
retriever (alone and in a chain), the chat message history (also under
RunnableWithMessageHistory, past one page of messages) and the memory tools (invoked as an
agent's tool calls), sync and async.

`langchain_adapters.py` uses the library store (`Memory`, `AsyncMemory`);
`langchain_adapters.py URL KEY` uses mem0's official clients (`MemoryClient`,
`AsyncMemoryClient`) against that `engram serve`."""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.utils.function_calling import convert_to_openai_tool

from engram.integrations.langchain import EngramChatMessageHistory, EngramRetriever, memory_tools

HIKING = "Alice goes hiking in the Alps every summer"


def check_tools_and_retriever(memory: Any, user: str) -> None:
    remember, recall, forget = memory_tools(memory, user_id=user, infer=False)
    assert [t.name for t in (remember, recall, forget)] == ["remember", "recall", "forget"]
    spec = convert_to_openai_tool(recall)["function"]  # what llm.bind_tools(tools) sends
    assert "long-term memory" in spec["description"], spec
    assert spec["parameters"]["properties"]["query"]["description"], spec
    stored = remember.invoke({"text": HIKING})
    assert stored == f"Memory updated.\nADD: {HIKING}", stored
    remember.invoke({"text": "Alice drinks green tea in the morning"})

    call = {
        "name": "recall",
        "args": {"query": "hiking trips"},
        "id": "call-1",
        "type": "tool_call",
    }
    answer = recall.invoke(call)  # as an agent's tool node runs it
    assert isinstance(answer, ToolMessage) and answer.tool_call_id == "call-1", answer
    assert answer.content.splitlines()[0].startswith(f"- {HIKING} (id: "), answer.content
    memory_id = re.findall(r"id: ([0-9a-f-]{36})", answer.content)[0]

    retriever = EngramRetriever(memory=memory, user_id=user, top_k=2)
    docs = retriever.invoke("hiking in the Alps")
    assert docs and docs[0].page_content == HIKING, docs
    assert docs[0].id == memory_id and docs[0].metadata["id"] == memory_id, docs[0]
    assert docs[0].metadata["user_id"] == user and 0 < docs[0].metadata["score"] <= 1, docs[0]
    assert "memory" not in docs[0].metadata and "created_at" in docs[0].metadata, docs[0]
    chain = retriever | RunnableLambda(lambda found: "; ".join(d.page_content for d in found))
    assert chain.invoke("green tea").startswith("Alice drinks green tea"), chain
    narrowed = EngramRetriever(
        memory=memory, user_id=user, filters={"memory": {"icontains": "tea"}}
    )
    assert [d.page_content for d in narrowed.invoke("hiking")] == [
        "Alice drinks green tea in the morning"
    ]
    assert EngramRetriever(memory=memory, user_id="nobody").invoke("hiking") == []
    assert asyncio.run(retriever.ainvoke("hiking"))[0].page_content == HIKING  # in a worker thread

    assert "No memory" in memory_tools(memory, user_id="bob")[2].invoke({"memory_id": memory_id})
    assert forget.invoke({"memory_id": memory_id}) == f"Forgot: {HIKING}"
    assert "No memory" in forget.invoke({"memory_id": memory_id})
    assert "No memory" in forget.invoke({"memory_id": "the hiking one"})
    assert HIKING not in [d.page_content for d in retriever.invoke("hiking")]
    assert recall.invoke({"query": "hiking"}).startswith("- Alice drinks green tea")
    assert (
        memory_tools(memory, user_id="nobody")[1].invoke({"query": "tea"}) == "No memories match."
    )


def check_history(memory: Any, user: str) -> None:
    history = EngramChatMessageHistory(memory, "session-1", user_id=user)
    tool_call = {"name": "recall", "args": {"query": "name"}, "id": "call-9"}
    history.add_messages([
        SystemMessage("Be brief."),  # instructions, not conversation: not stored
        HumanMessage("Hi, I'm Alice"),
        AIMessage("", tool_calls=[tool_call]),  # no text: not stored
        ToolMessage("No memories match.", tool_call_id="call-9"),
        AIMessage("Hello Alice!", name="helper"),
    ])  # fmt: skip
    history.add_user_message("What's my name?")
    history.add_ai_message("You are Alice.")
    expected = [("human", "Hi, I'm Alice"), ("tool", "No memories match."), ("ai", "Hello Alice!"),
                ("human", "What's my name?"), ("ai", "You are Alice.")]  # fmt: skip
    assert pairs(history.messages) == expected, history.messages
    assert history.messages[1].tool_call_id == "call-9" and history.messages[2].name == "helper"
    assert pairs(EngramChatMessageHistory(memory, "session-1", user_id=user).messages) == expected
    assert EngramChatMessageHistory(memory, "session-2", user_id=user).messages == []
    assert EngramRetriever(memory=memory, user_id=user, run_id="session-1").invoke("name")
    history.clear()
    assert history.messages == []

    def reply(messages: list[BaseMessage]) -> AIMessage:  # stands in for the chat model
        return AIMessage(f"{len(messages)} messages so far")

    chat = RunnableWithMessageHistory(
        RunnableLambda(reply), lambda session: EngramChatMessageHistory(memory, session, user_id=user)
    )  # fmt: skip
    config: Any = {"configurable": {"session_id": "session-3"}}
    assert chat.invoke([HumanMessage("one")], config).content == "1 messages so far"
    assert chat.invoke([HumanMessage("two")], config).content == "3 messages so far"
    long = EngramChatMessageHistory(memory, "session-3", user_id=user)
    long.add_messages([HumanMessage(f"message number {n}") for n in range(3, 103)])
    assert [m.text for m in long.messages][-2:] == ["message number 101", "message number 102"]
    assert len(long.messages) == 104  # past one page of the store's listing

    facts = EngramChatMessageHistory(memory, "session-4", user_id=user, extract=True)
    facts.add_messages([HumanMessage("I'm vegetarian and I live in Lisbon."), AIMessage("Noted!")])
    everything = EngramRetriever(memory=memory, user_id=user, top_k=3).invoke("Lisbon")
    assert {d.metadata.get("run_id") for d in everything} == {None, "session-4"}, everything
    long_term = EngramRetriever(memory=memory, user_id=user, filters={"NOT": [{"run_id": "*"}]})
    assert {d.metadata.get("run_id") for d in long_term.invoke("Lisbon")} == {None}
    facts.clear()  # the session goes; what was learnt about the user stays
    found = EngramRetriever(memory=memory, user_id=user).invoke("lives in Lisbon")
    assert "Lives in Lisbon" in [d.page_content for d in found], found
    assert all(d.metadata.get("run_id") != "session-4" for d in found), found


async def check_async(memory: Any, user: str) -> None:
    remember, recall, forget = memory_tools(memory, user_id=user, infer=False)
    assert (await remember.ainvoke({"text": HIKING})).endswith(HIKING)
    retriever = EngramRetriever(memory=memory, user_id=user)
    docs = await retriever.ainvoke("hiking")
    assert [d.page_content for d in docs] == [HIKING], docs
    assert (await recall.ainvoke({"query": "hiking"})).startswith(f"- {HIKING}")
    assert await forget.ainvoke({"memory_id": docs[0].id}) == f"Forgot: {HIKING}"
    history = EngramChatMessageHistory(memory, "session-a", user_id=user)
    await history.aadd_messages([HumanMessage("Hi"), AIMessage("Hello!")])
    assert pairs(await history.aget_messages()) == [("human", "Hi"), ("ai", "Hello!")]
    await history.aclear()
    assert await history.aget_messages() == []
    # An async backend's event loop is not the adapter's to block:
    refused = type_error(lambda: retriever.invoke("hiking"))
    assert "is async: use the adapter's async methods" in refused, refused


def type_error(call: Any) -> str:
    try:
        call()
    except TypeError as exc:
        return str(exc)
    return "no error"


def pairs(messages: list[BaseMessage]) -> list[tuple[str, str]]:
    return [(m.type, m.text) for m in messages]


def main() -> None:
    if len(sys.argv) == 3:
        from mem0 import AsyncMemoryClient, MemoryClient

        url, key = sys.argv[1:]
        memory: Any = MemoryClient(api_key=key, host=url)
        amemory: Any = AsyncMemoryClient(api_key=key, host=url)
        where = "remote"
    else:
        from engram import AsyncMemory, Memory

        config = {"embedder": {"provider": "hashing"}, "data_dir": tempfile.mkdtemp()}
        memory, amemory = Memory.from_config(config), AsyncMemory.from_config(config)
        where = "library"
    check_tools_and_retriever(memory, "alice")
    check_history(memory, "carol")
    asyncio.run(check_async(amemory, "dave"))
    print(f"ok langchain {where}")


if __name__ == "__main__":
    main()
