"""Rerankers: a second, finer look at the best fused candidates."""

from __future__ import annotations

from typing import Protocol

from engram.prompts import rerank
from engram.prompts.rerank import RerankInput
from engram.providers.llm.base import LLM, Usage


class Reranker(Protocol):
    name: str

    async def scores(self, query: str, documents: list[str], usage: Usage) -> list[float]:
        """Relevance in [0, 1] of each document to the query, in order."""
        ...


class LLMReranker:
    """One LLM call judges all candidates; a candidate the model skips scores 0."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.name = f"llm:{llm.model}"

    async def scores(self, query: str, documents: list[str], usage: Usage) -> list[float]:
        answer = await self.llm.generate(rerank.render(RerankInput(query, documents)), usage=usage)
        out = [0.0] * len(documents)
        for judgement in answer.scores:
            if 0 <= judgement.id < len(documents):
                out[judgement.id] = judgement.score
        return out
