"""engram.integrations.crewai against the real CrewAI 1.15 (its own virtualenv, made by
`make integrations` from tests/integrations/requirements-crewai.txt). The scripts assert inside
the virtualenv; a crew's LLM is the fake OpenAI-compatible server of this process, answering
the agent and CrewAI's memory analysis by the structured output each call asks for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import FakeOpenAI
from tests.integrations.venv import docs_blocks, mem0_env, ok, run_in
from tests.server.live import ADMIN_KEY, LiveServer

ANALYSIS = {"suggested_scope": "/meals", "categories": ["food"], "importance": 0.9,
            "extracted_metadata": {"entities": ["Alex"], "dates": [], "topics": ["dinner"]}}  # fmt: skip


def crewai_env(home: Path) -> dict[str, str]:
    """No telemetry or tracing (each tries the network and waits), CrewAI's files and mem0's
    under the test's directory."""
    return {**mem0_env(home), "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true",
            "CREWAI_TRACING_ENABLED": "false"}  # fmt: skip


def schema_of(body: dict[str, Any]) -> str | None:
    name: str | None = body.get("response_format", {}).get("json_schema", {}).get("name")
    return name


def chef(body: dict[str, Any]) -> str:
    """The crew's LLM: the agent's answers, CrewAI's memory extraction and analysis."""
    text = json.dumps(body["messages"])
    lunch = "Plan a lunch" in text
    if schema_of(body) == "ExtractedMemories":
        meal = "Alex had a lentil salad for lunch." if lunch else (
            "Alex had chickpea curry for dinner, without peanuts.")  # fmt: skip
        return json.dumps({"memories": [meal]})
    if schema_of(body) == "MemoryAnalysis":
        return json.dumps(ANALYSIS)
    assert schema_of(body) is None, body  # nothing else is expected of the fake
    return "Menu: lentil salad." if lunch else "Menu: chickpea curry, no peanuts."


def test_storage_over_the_library(tmp_path: Path) -> None:
    ok(run_in("crewai", "crewai_storage.py", "library", env=crewai_env(tmp_path)),
       "ok crewai library")  # fmt: skip


def test_storage_over_mem0_client(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "server-data")
    try:
        done = run_in("crewai", "crewai_storage.py", "remote", server.url, ADMIN_KEY,
                      env=crewai_env(tmp_path))  # fmt: skip
    finally:
        server.close()
    ok(done, "ok crewai remote")


def test_a_crew_remembers_through_engram(fake: FakeOpenAI, tmp_path: Path) -> None:
    """The agent's prompt carries what Engram holds (another app's memory on the first run,
    the first run's own on the second); what CrewAI extracted is in Engram (the script)."""
    fake.responder = chef
    ok(run_in("crewai", "crewai_crew.py", fake.base_url, env=crewai_env(tmp_path)),
       "ok crewai crew")  # fmt: skip
    prompts = [json.dumps(r["json"]["messages"]) for r in fake.chat_requests
               if schema_of(r["json"]) is None]  # fmt: skip
    first, second = (
        next(p for p in prompts if f"Plan a {meal}" in p) for meal in ("dinner", "lunch")
    )
    assert "Alex is vegetarian and allergic to peanuts." in first
    assert "chickpea curry" not in first
    assert "Alex had chickpea curry for dinner, without peanuts." in second


def test_docs_example_runs(fake: FakeOpenAI, tmp_path: Path) -> None:
    """The ```python crewai example as written: OpenAI (here the fake) is the crew's LLM and
    Engram's fact extractor."""
    (block,) = docs_blocks("crewai")
    script = tmp_path / "example.py"
    script.write_text(block)

    def answer(body: dict[str, Any]) -> str:
        if schema_of(body) == "extract":  # Engram's fact extraction
            return json.dumps({"facts": [{"text": "Is vegetarian", "event": "ADD"}]})
        return chef(body)

    fake.responder = answer
    env = {**crewai_env(tmp_path), "OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": fake.base_url}
    done = run_in("crewai", "crewai_docs.py", str(script), env=env)
    ok(done, "ok crewai docs")
    assert "Menu: chickpea curry, no peanuts." in done.stdout
    assert "Alex had chickpea curry for dinner, without peanuts. /meals" in done.stdout
    prompts = [json.dumps(r["json"]["messages"]) for r in fake.chat_requests
               if schema_of(r["json"]) is None]  # fmt: skip
    assert any("Is vegetarian" in p for p in prompts), prompts
