"""Run by the CrewAI virtualenv (tests/integrations/test_crewai.py): a crew whose memory is
Engram's (EngramStorage), its LLM the fake OpenAI-compatible server at BASE_URL (the test scripts
the answers and reads the prompts). Usage: crewai_crew.py BASE_URL. Prints "ok crewai crew".

Two kickoffs: the first recalls a memory another app wrote into Engram and leaves what CrewAI
extracted from its result in Engram; the second recalls that too.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

from crewai import LLM, Agent, Crew, Task

from engram import Memory
from engram.integrations.crewai import EngramStorage


def crewai_memories(store: Memory) -> list[Any]:
    """The memories of alex CrewAI wrote."""
    found = store.get_all(filters={"user_id": "alex"})["results"]
    return [m for m in found if "crewai_id" in m["metadata"]]


def main(base_url: str, data_dir: str) -> None:
    with Memory({"embedder": {"provider": "hashing"}, "data_dir": data_dir}) as store:
        store.add("Alex is vegetarian and allergic to peanuts.", user_id="alex", infer=False)
        storage = EngramStorage(store, user_id="alex")
        llm = LLM(model="openai/gpt-4o-mini", base_url=base_url, api_key="test-key")
        chef = Agent(role="Chef", goal="Plan meals Alex will enjoy", backstory="A home cook.",
                     llm=llm)  # fmt: skip
        memory = storage.crew_memory(llm=llm)

        dinner = Task(description="Plan a dinner for Alex.", expected_output="A menu.", agent=chef)
        result = Crew(agents=[chef], tasks=[dinner], memory=memory).kickoff()
        assert "chickpea curry" in result.raw, result.raw
        (kept,) = crewai_memories(store)
        assert kept["memory"] == "Alex had chickpea curry for dinner, without peanuts.", kept
        assert kept["categories"] == ["food"], kept
        assert kept["metadata"]["crewai_scope"] == "/meals", kept
        assert kept["metadata"]["crewai_importance"] == 0.9, kept
        assert kept["metadata"]["topics"] == ["dinner"], kept

        lunch = Task(description="Plan a lunch for Alex.", expected_output="A menu.", agent=chef)
        result = Crew(agents=[chef], tasks=[lunch], memory=memory).kickoff()
        assert "lentil salad" in result.raw, result.raw
        assert len(crewai_memories(store)) == 2


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        main(sys.argv[1], directory)
    print("ok crewai crew")
