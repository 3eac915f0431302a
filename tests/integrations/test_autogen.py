"""engram.integrations.autogen against the real AutoGen 0.7 (its own virtualenv, made by
`make integrations` from tests/integrations/requirements-autogen.txt), and autogen-ext's own
Mem0Memory pointed at `engram serve`. The scripts assert inside the virtualenv; an agent's model
is the fake OpenAI-compatible server of this process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import FakeOpenAI
from tests.integrations.venv import docs_blocks, mem0_env, ok, run_in
from tests.server.live import ADMIN_KEY, LiveServer

HEADER = "Memories of earlier conversations (from Engram), most relevant first:"


def chat_messages(fake: FakeOpenAI) -> list[list[dict[str, Any]]]:
    """The messages of each chat request the agent (not Engram's extraction) sent."""
    return [
        r["json"]["messages"]
        for r in fake.chat_requests
        if "response_format" not in r["json"]  # Engram's calls ask for structured output
    ]


def test_engram_memory_over_the_library() -> None:
    ok(run_in("autogen", "autogen_memory.py", "library"), "ok autogen library")


def test_engram_memory_over_mem0_clients(server: LiveServer, tmp_path: Path) -> None:
    done = run_in("autogen", "autogen_memory.py", "remote", server.url, ADMIN_KEY,
                  env=mem0_env(tmp_path))  # fmt: skip
    ok(done, "ok autogen remote")


def test_an_agent_sees_its_memories(fake: FakeOpenAI) -> None:
    """An AssistantAgent with `memory=[EngramMemory(...)]`: the memories relevant to the task
    reach the model's prompt as a system message, the others do not."""
    fake.responder = lambda _: "You could make a chickpea curry."
    done = run_in("autogen", "autogen_agent.py", fake.base_url)
    ok(done, "ok autogen agent")
    (messages,) = chat_messages(fake)
    system = [m["content"] for m in messages if m["role"] == "system"]
    memories = next(s for s in system if s.startswith(HEADER))
    assert "Alex is vegetarian." in memories
    assert "cello" not in memories  # below the agent memory's threshold
    assert messages[-1]["role"] == "system"  # after the user's task, as update_context puts it
    assert any(m["role"] == "user" and "dinner" in m["content"] for m in messages)


def test_autogen_ext_mem0memory_against_engram_serve(server: LiveServer, tmp_path: Path) -> None:
    """autogen-ext's Mem0Memory: its defects reproduced, then the docs' workaround (the
    ```python autogen-mem0 block, as written but for the server's address and key) pointing it
    at the server."""
    (block,) = docs_blocks("autogen-mem0")
    for placeholder, value in (('host="http://127.0.0.1:8000"', f"host={server.url!r}"),
                               ('api_key="eg-..."', f"api_key={ADMIN_KEY!r}")):  # fmt: skip
        assert placeholder in block, block
        block = block.replace(placeholder, value)
    workaround = tmp_path / "workaround.py"
    workaround.write_text(block)
    done = run_in("autogen", "autogen_mem0memory.py", server.url, ADMIN_KEY, str(workaround),
                  env=mem0_env(tmp_path))  # fmt: skip
    ok(done, "ok autogen mem0memory")


def test_docs_example_runs(fake: FakeOpenAI, tmp_path: Path) -> None:
    """The ```python autogen example as written: OpenAI (here the fake) is the agent's model
    and Engram's fact extractor."""
    (block,) = docs_blocks("autogen")
    script = tmp_path / "example.py"
    script.write_text(block)

    def answer(body: dict[str, Any]) -> str:
        if body.get("response_format", {}).get("json_schema", {}).get("name") == "extract":
            return json.dumps({"facts": [
                {"text": "Is vegetarian", "event": "ADD", "categories": ["food"]},
                {"text": "Lives in Lisbon", "event": "ADD", "categories": ["personal_details"]},
            ]})  # fmt: skip
        return "A mushroom risotto."

    fake.responder = answer
    env = {"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": fake.base_url}
    done = run_in("autogen", "autogen_docs.py", str(script), env=env)
    ok(done, "ok autogen docs")
    assert "A mushroom risotto." in done.stdout
    (messages,) = chat_messages(fake)
    assert any(m["role"] == "system" and "Is vegetarian" in m["content"] for m in messages)
