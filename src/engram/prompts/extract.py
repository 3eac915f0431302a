"""The add task: extract facts from new messages and reconcile them with existing memories, in one
call. Existing memories are shown under short integer ids, never their UUIDs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from engram.core.messages import Message
from engram.prompts.base import Prompt

NAME = "extract"
VERSION = "extract-v3"
DEFAULT_CATEGORIES: dict[str, str] = {
    "personal_details": "name, age, birthday, where they live, languages",
    "family": "family members and relationships",
    "professional_details": "job, employer, career, education",
    "sports": "sports played or followed",
    "travel": "trips, places visited or planned",
    "food": "food and drink preferences, diets",
    "music": "music tastes, instruments",
    "health": "health, allergies, fitness, medical",
    "technology": "devices, software, tech interests",
    "hobbies": "hobbies and pastimes",
    "fashion": "clothing and style",
    "entertainment": "films, series, books, games",
    "milestones": "life events and achievements",
    "user_preferences": "general likes, dislikes and preferences",
    "misc": "anything else worth remembering",
}

Event = Literal["ADD", "UPDATE", "DELETE", "NONE"]


class Relation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source: str
    relationship: str = Field(description="snake_case, e.g. lives_in, works_at, sister_of")
    target: str


class Fact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(description="the fact: short, self-contained, in the conversation's language")
    event: Event = Field(description="ADD new; UPDATE/DELETE/NONE an existing memory by id")
    id: int | None = Field(default=None, description="the existing memory's id (not for ADD)")
    categories: list[str] = Field(default_factory=list)
    about: Literal["user", "agent"] = "user"
    relations: list[Relation] = Field(default_factory=list)
    _speaker: str | None = PrivateAttr(default=None)

    @property
    def speaker(self) -> str | None:
        """The name of who said it (the memory's `actor_id`), when the extractor knows it. Set by
        the extractor, never by the model: not part of the schema."""
        return self._speaker

    @speaker.setter
    def speaker(self, name: str | None) -> None:
        self._speaker = name


class ExtractOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    facts: list[Fact] = Field(default_factory=list)
    _notes: list[str] = PrivateAttr(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """Why the extractor found nothing to store, in words for the user. Filled by the
        extractor, never by the model: not part of the schema, not parsed from its answer."""
        return self._notes


@dataclass(frozen=True, slots=True)
class ExtractInput:
    messages: list[Message]
    today: str  # the event date, YYYY-MM-DD
    existing: list[str] = field(default_factory=list)  # shown as ids 0..n-1
    recent: list[Message] = field(default_factory=list)  # earlier turns, context only
    categories: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    instructions: str | None = None  # custom_instructions, includes, excludes
    with_agent: bool = False  # facts the assistant states about itself belong to the agent
    agent_scope: bool = False  # an agent_id without a user_id: the memories are the agent's
    existing_about: list[str] = field(default_factory=list)  # "user"/"agent" per existing memory
    existing_speakers: list[str | None] = field(default_factory=list)  # who said each (actor_id)
    user_id: str | None = None  # the scope's user: a speaker of that name is the user
    custom_fact_prompt: str | None = None  # mem0 1.x custom_fact_extraction_prompt
    custom_update_prompt: str | None = None  # mem0 1.x custom_update_memory_prompt
    graph: bool = False  # ask for each fact's relations (entity triples)


_SYSTEM = """\
You keep a long-term memory of a conversation's participants. Read the NEW messages, extract the \
facts worth remembering, and reconcile each with the EXISTING memories.

What is a fact:
- personal details, preferences, plans, relationships, events, decisions, opinions;
- short and self-contained, without pronouns for the person ("Loves sci-fi movies", \
"Moved to Lisbon in March 2025"), in the language the person wrote in;
- not greetings, questions, small talk, or general knowledge;
- relative dates ("next month", "yesterday") resolved against today's date, {today}.
{about}
Reconcile with EXISTING memories (by id):
- ADD: new information (no id);
- UPDATE: changes or adds detail to memory id; text is the whole new memory;
- DELETE: memory id is no longer true (contradicted or retracted); text is the memory removed;
- NONE: memory id already says it.
Use each existing id at most once. Categories, any that fit: {categories}.
{graph}{custom}Answer with JSON only: {{"facts": [{{"text": ..., "event": ..., "id": ..., \
"categories": [...], "about": ...{relations}}}]}}. No facts: {{"facts": []}}."""
_GRAPH = """\
Relations: for each fact, the entity triples it states, as {"source", "relationship", "target"} \
with a snake_case relationship ("lives_in", "works_at", "sister_of", "likes"); write "user" for \
the user and "agent" for the assistant.
"""

_ABOUT_USER = '- every fact is about the user ("about": "user").'
_ABOUT_AGENT = (
    '- facts from the user\'s messages are about the user ("about": "user"); facts the '
    'assistant states about itself are about the agent ("about": "agent").'
)
_ABOUT_AGENT_SCOPE = (
    "- these are the agent's own memories: what the assistant states about itself (its plans, "
    'preferences, decisions; "about": "agent") and what it learns that it should keep ("about": '
    '"user" for facts about the person it talks to).'
)


def _about(data: ExtractInput) -> str:
    if data.with_agent:
        return _ABOUT_AGENT
    return _ABOUT_AGENT_SCOPE if data.agent_scope else _ABOUT_USER


def _transcript(messages: list[Message]) -> str:
    return "\n".join(f"{m.name or m.role}: {m.content.strip()}" for m in messages)


def render(data: ExtractInput) -> Prompt[ExtractOutput]:
    custom = ""
    if data.custom_fact_prompt:
        custom += f"Extraction instructions from the application:\n{data.custom_fact_prompt}\n"
    if data.custom_update_prompt:
        custom += (
            f"Reconciliation instructions from the application:\n{data.custom_update_prompt}\n"
        )
    if data.instructions:
        custom += f"Also follow:\n{data.instructions}\n"
    system = _SYSTEM.format(
        today=data.today,
        about=_about(data),
        categories=", ".join(data.categories),
        custom=custom,
        graph=_GRAPH if data.graph else "",
        relations=', "relations": [...]' if data.graph else "",
    )
    sections = [f"Today: {data.today}"]
    existing = "\n".join(f"{i}: {text}" for i, text in enumerate(data.existing)) or "(none)"
    sections.append(f"EXISTING memories:\n{existing}")
    if data.recent:
        sections.append(f"Earlier conversation (context only):\n{_transcript(data.recent)}")
    sections.append(f"NEW messages:\n{_transcript(data.messages)}")
    return Prompt(NAME, VERSION, system, "\n\n".join(sections), ExtractOutput)
