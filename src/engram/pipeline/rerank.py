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


async def close_reranker(reranker: Reranker | None) -> None:
    """A reranker may hold a client (`LLMReranker` with an LLM of its own): its `aclose`, when
    it has one, releases it. A reranker without `aclose` holds nothing to release."""
    close = getattr(reranker, "aclose", None)
    if close is not None:
        await close()


class LLMReranker:
    """One LLM call judges all candidates; a candidate the model skips scores 0. With
    `owns_llm` (a reranker configured with an LLM of its own), `aclose` closes that LLM's client;
    the memory's main LLM is closed by its extractor."""

    def __init__(self, llm: LLM, *, owns_llm: bool = False) -> None:
        self.llm = llm
        self.name = f"llm:{llm.model}"
        self._owns_llm = owns_llm

    async def aclose(self) -> None:
        if self._owns_llm:
            await self.llm.aclose()

    async def scores(self, query: str, documents: list[str], usage: Usage) -> list[float]:
        answer = await self.llm.generate(rerank.render(RerankInput(query, documents)), usage=usage)
        out = [0.0] * len(documents)
        for judgement in answer.scores:
            if 0 <= judgement.id < len(documents):
                out[judgement.id] = judgement.score
        return out
