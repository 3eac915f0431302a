"""Split a search query into the simpler queries that together find what it asks for."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from engram.prompts.base import Prompt

NAME = "decompose"
VERSION = "decompose-v1"
MAX_QUERIES = 4


class DecomposeOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    queries: list[str] = Field(default_factory=list, description="at most 4 search queries")


_SYSTEM = """\
You help search a person's memories (facts, events and conversation turns). Split the query \
into at most 4 short search queries that together find everything needed to answer it: one per \
person, event, item or time period it asks about (a question about several activities, places \
or occasions needs one query for each kind). Keep names and dates as written. A simple query \
stays as one query. Answer with JSON only: {"queries": ["...", "..."]}."""


def render(query: str) -> Prompt[DecomposeOutput]:
    return Prompt(NAME, VERSION, _SYSTEM, f"Query: {query}", DecomposeOutput)
