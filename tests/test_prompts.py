"""Golden files for every rendered prompt. Regenerate with ENGRAM_UPDATE_GOLDEN=1 after an
intended change, bump the prompt's VERSION, and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engram.core.messages import Message
from engram.prompts import decompose, extract, procedural, rerank, vision
from engram.prompts.base import Prompt
from engram.prompts.extract import ExtractInput
from engram.prompts.rerank import RerankInput

GOLDEN = Path(__file__).parent / "golden"
CONVERSATION = [
    Message("user", "Hi! I'm Alex. I've turned vegetarian and I'm moving to Lisbon next month."),
    Message("assistant", "Congratulations! I'm Ada, I'll remember that."),
]

CASES: dict[str, Prompt] = {  # type: ignore[type-arg]
    "extract_minimal": extract.render(ExtractInput(messages=CONVERSATION[:1], today="2026-03-10")),
    "extract_full": extract.render(
        ExtractInput(
            messages=CONVERSATION,
            today="2026-03-10",
            existing=["Loves chicken dishes", "Lives in Porto"],
            recent=[Message("user", "My sister Maria lives in Lisbon.", name="alex")],
            categories={"food": "diets", "travel": "moves and trips"},
            instructions="Only remember facts about: food",
            with_agent=True,
            custom_fact_prompt="Keep dates exact.",
            custom_update_prompt="Prefer UPDATE over ADD.",
        )
    ),
    "extract_graph": extract.render(
        ExtractInput(
            messages=CONVERSATION[:1], today="2026-03-10", existing=["Lives in Porto"], graph=True
        )
    ),
    "extract_agent_scope": extract.render(
        ExtractInput(messages=CONVERSATION, today="2026-03-10", agent_scope=True)
    ),
    "procedural": procedural.render(CONVERSATION),
    "decompose": decompose.render("What activities has Melanie done with her family?"),
    "rerank": rerank.render(RerankInput("Where does Alex live?", ["Lives in Lisbon", "Likes tea"])),
    "vision": vision.render("https://example.org/cat.png", "What is this?"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendered_prompt_matches_golden(name: str) -> None:
    rendered = CASES[name]
    text = f"# {rendered.name} {rendered.version}\n{rendered.text()}"
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("ENGRAM_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text


def test_render_is_pure() -> None:
    again = extract.render(ExtractInput(messages=CONVERSATION[:1], today="2026-03-10"))
    assert again == CASES["extract_minimal"]


def test_extract_prompt_is_compact() -> None:
    """The fixed part stays small: mem0 2.2.1 sends 33,600 characters of system prompt."""
    assert len(CASES["extract_minimal"].system) < 2500
