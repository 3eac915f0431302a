"""LlamaIndex over Engram: `EngramMemoryBlock` (long-term memory for llama-index-core's
`Memory`) and `EngramRetriever` (memories as `NodeWithScore`s, for query engines and agents).

Each takes an engram `Memory` / `AsyncMemory`, or mem0's `MemoryClient` / `AsyncMemoryClient`
pointed at `engram serve`, and a scope (user_id, agent_id, run_id). Needs
`pip install 'engram-llm[llama-index]'`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engram.errors import MissingDependencyError
from engram.integrations._backend import Backend

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.memory.memory import BaseMemoryBlock
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
    from pydantic import Field, PrivateAttr
except ImportError as exc:  # pragma: no cover - the extra is installed wherever this runs
    raise MissingDependencyError(
        "engram.integrations.llama_index needs LlamaIndex: pip install 'engram-llm[llama-index]'"
    ) from exc

__all__ = ["EngramMemoryBlock", "EngramRetriever"]

QUERY_CHARS = 2000  # of the latest messages, as a search query (the embedder reads fewer)
ROLES = {"user": "user", "assistant": "assistant", "chatbot": "assistant", "model": "assistant"}


class EngramMemoryBlock(BaseMemoryBlock[str]):
    """Long-term memory for llama-index-core's `Memory` (`memory_blocks=[...]`).

    When messages leave the short-term queue (past its token limit), their user and assistant
    turns are added to Engram, facts extracted and reconciled (`infer=False`: verbatim). When
    the memory is read, the latest `query_messages` messages are the search query and the
    `top_k` best memories come back as lines of text, for the memory blocks template.
    The scope is fixed by `user_id` / `agent_id` / `run_id`, not by the `Memory`'s session, so
    what is learnt in one session is recalled in the next."""

    name: str = Field(default="engram_memories", description="The name of the memory block.")
    memory: Any = Field(
        exclude=True, description="An engram Memory / AsyncMemory or a mem0 MemoryClient."
    )
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    infer: bool = Field(default=True, description="Extract facts (True) or store verbatim.")
    top_k: int = Field(default=5, description="How many memories to recall.")
    query_messages: int = Field(default=5, description="How many latest messages to search by.")
    threshold: float | None = Field(default=None, description="The lowest score recalled.")
    _backend: Backend = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._backend = Backend(
            self.memory, user_id=self.user_id, agent_id=self.agent_id, run_id=self.run_id
        )

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        query = _query(messages or [], self.query_messages)
        if not query:
            return ""
        found = await self._backend.asearch(query, top_k=self.top_k, threshold=self.threshold)
        return "\n".join(f"- {item['memory']}" for item in found)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        if turns := _turns(messages):
            await self._backend.acall("add", **self._backend.add_args(turns, infer=self.infer))


def _turns(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """The user and assistant turns with text, as mem0's messages (tool calls and their results
    are the agent's working, not what to remember; system messages are instructions)."""
    turns = []
    for message in messages:
        role = ROLES.get(str(getattr(message.role, "value", message.role)))
        text = message.content or ""
        if role and text.strip():
            turns.append({"role": role, "content": text})
    return turns


def _query(messages: Sequence[ChatMessage], count: int) -> str:
    texts = [m.content for m in messages[-count:] if m.content and m.content.strip()]
    return "\n".join(texts)[-QUERY_CHARS:].strip()


class EngramRetriever(BaseRetriever):
    """The memories of a scope that best match the query, best first, as `NodeWithScore`s:
    the memory's text is the node's text and its id the node's id; the memory's fields (ids,
    timestamps, categories, its own metadata under `metadata`) are the node's metadata, of
    which the LLM sees `created_at` and `categories`.

    `filters` (mem0's filter language) narrow the scope; `threshold` drops weaker matches.
    Other keyword arguments go to LlamaIndex's `BaseRetriever` (`callback_manager`, ...)."""

    def __init__(
        self,
        memory: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        top_k: int = 5,
        filters: dict[str, Any] | None = None,
        threshold: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._backend = Backend(memory, user_id=user_id, agent_id=agent_id, run_id=run_id)
        self._options = {"top_k": top_k, "filters": filters, "threshold": threshold}

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        found = self._backend.search(query_bundle.query_str, **self._options)
        return [_node(item) for item in found]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        found = await self._backend.asearch(query_bundle.query_str, **self._options)
        return [_node(item) for item in found]


SEEN_BY_LLM = ("created_at", "categories")


def _node(item: Mapping[str, Any]) -> NodeWithScore:
    metadata = {k: v for k, v in item.items() if k not in ("memory", "hash", "score")}
    node = TextNode(
        id_=item["id"], text=item["memory"], metadata=metadata,
        excluded_embed_metadata_keys=list(metadata),
        excluded_llm_metadata_keys=[k for k in metadata if k not in SEEN_BY_LLM],
    )  # fmt: skip
    return NodeWithScore(node=node, score=item.get("score"))
