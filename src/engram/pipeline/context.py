"""What every pipeline step works with: the store, the embedder, the extractor and the clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engram.core.timeutil import format_timestamp
from engram.pipeline.extractors import Extractor
from engram.pipeline.queries import QueryVectors, Vector
from engram.pipeline.rerank import Reranker
from engram.providers.documents import DocumentFetcher
from engram.providers.embedders.base import Embedder, Purpose, Vectors
from engram.providers.llm.base import LLM, Usage
from engram.store.base import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Context:
    store: Store
    embedder: Embedder
    extractor: Extractor
    documents: DocumentFetcher
    clock: Callable[[], datetime] = utc_now
    reranker: Reranker | None = None
    llm: LLM | None = None  # the configured LLM, for the recipes that ask it (llm_search)
    queries: QueryVectors = field(init=False)

    def __post_init__(self) -> None:
        self.queries = QueryVectors(self.embedder)

    def now(self) -> str:
        return format_timestamp(self.clock())

    def today(self) -> str:
        return self.now()[:10]

    async def embed(self, texts: Sequence[str], purpose: Purpose, usage: Usage) -> Vectors:
        """Embed and count the call in the operation's usage."""
        usage.embedding_calls += 1
        return await self.embedder.embed(texts, purpose=purpose)

    async def embed_query(self, text: str, usage: Usage) -> Vector:
        """A search query's vector (remembered for recent queries: see `QueryVectors`)."""
        vector, called = await self.queries.vector(text)
        usage.embedding_calls += called
        return vector
