"""Rerank search candidates: how well each one answers the query."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from engram.prompts.base import Prompt

NAME = "rerank"
VERSION = "rerank-v1"


class Judgement(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    score: float = Field(ge=0.0, le=1.0, description="1: answers the query; 0: unrelated")


class RerankOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    scores: list[Judgement] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RerankInput:
    query: str
    documents: list[str]


_SYSTEM = """\
Score how well each memory helps answer the query, from 0 (unrelated) to 1 (answers it). \
Judge every memory by its id. Answer with JSON only: {"scores": [{"id": 0, "score": 0.9}, ...]}."""


def render(data: RerankInput) -> Prompt[RerankOutput]:
    memories = "\n".join(f"{i}: {text}" for i, text in enumerate(data.documents))
    return Prompt(
        NAME, VERSION, _SYSTEM, f"Query: {data.query}\n\nMemories:\n{memories}", RerankOutput
    )
