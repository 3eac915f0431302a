"""Run by the AutoGen virtualenv (tests/integrations/test_autogen.py): an AssistantAgent with
`memory=[EngramMemory(...)]` whose model is the fake OpenAI-compatible server at BASE_URL (the
test reads the prompt it received). Usage: autogen_agent.py BASE_URL. Prints "ok autogen agent".
"""

from __future__ import annotations

import asyncio
import sys
import tempfile

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import MemoryQueryEvent
from autogen_core.memory import MemoryContent, MemoryMimeType
from autogen_ext.models.openai import OpenAIChatCompletionClient

from engram.integrations.autogen import EngramMemory


async def main(base_url: str, data_dir: str) -> None:
    config = {"embedder": {"provider": "hashing"}, "data_dir": data_dir}
    memory = EngramMemory(config=config, user_id="alex", infer=False, threshold=0.3)
    for fact in ("Alex is vegetarian.", "Alex plays the cello on Sundays."):
        await memory.add(MemoryContent(content=fact, mime_type=MemoryMimeType.TEXT))
    client = OpenAIChatCompletionClient(
        model="gpt-4o-mini-2024-07-18", base_url=base_url, api_key="test-key"
    )
    agent = AssistantAgent("assistant", model_client=client, memory=[memory],
                           system_message="You are a helpful assistant.")  # fmt: skip

    result = await agent.run(task="What should I cook for dinner? I am vegetarian.")
    events = [m for m in result.messages if isinstance(m, MemoryQueryEvent)]
    assert [c.content for c in events[0].content] == ["Alex is vegetarian."], events
    assert result.messages[-1].content == "You could make a chickpea curry.", result.messages

    # The agent, its memory included, is an AutoGen component: saved and loaded again.
    dumped = agent.dump_component()
    assert dumped.config["memory"][0]["provider"] == "engram.integrations.autogen.EngramMemory"
    loaded = AssistantAgent.load_component(dumped)
    (again,) = loaded._memory or []
    assert [c.content for c in (await again.query("vegetarian")).results] == ["Alex is vegetarian."]
    await again.close()
    await memory.close()
    await client.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(sys.argv[1], directory))
    print("ok autogen agent")
