"""AutoGen 0.7 memory kept by Engram: `EngramMemory`, an `autogen_core.memory.Memory` for an
agent's `memory=[...]` (`pip install 'engram-llm[autogen]'`).

```python
memory = EngramMemory(AsyncMemory(), user_id="alex")
await memory.add(MemoryContent(content="Alex is vegetarian", mime_type=MemoryMimeType.TEXT))
agent = AssistantAgent("assistant", model_client=client, memory=[memory])
```

Before each model call the agent asks `update_context`: the memories most relevant to the latest
user message go into the model's context as one system message. `add` stores a memory as mem0
does (facts extracted; `infer=False` keeps the text as given); `query` searches; `clear` deletes
the scope's memories. The store is an engram `Memory` / `AsyncMemory`, or a mem0 `MemoryClient` /
`AsyncMemoryClient` pointed at `engram serve`; `EngramMemory(config={...}, user_id=...)` builds
its own `AsyncMemory`, closes it in `close()`, and is an AutoGen component
(`dump_component()` / `EngramMemory.load_component(...)`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from engram.errors import MissingDependencyError
from engram.integrations._backend import Backend
from engram.memory import AsyncMemory

try:
    from autogen_core import CancellationToken, Component, Image
    from autogen_core.memory import (
        Memory,
        MemoryContent,
        MemoryMimeType,
        MemoryQueryResult,
        UpdateContextResult,
    )
    from autogen_core.model_context import ChatCompletionContext
    from autogen_core.models import LLMMessage, SystemMessage
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise MissingDependencyError(
        "engram.integrations.autogen needs AutoGen: pip install 'engram-llm[autogen]'"
    ) from exc

__all__ = ["EngramMemory", "EngramMemoryConfig"]

T = TypeVar("T")
HEADER = "Memories of earlier conversations (from Engram), most relevant first:"
TEXT_TYPES = {MemoryMimeType.TEXT.value, MemoryMimeType.MARKDOWN.value}


class EngramMemoryConfig(BaseModel):
    """`EngramMemory`'s component config: the scope, the options, and the Engram config (mem0's
    dict) of the `AsyncMemory` it builds."""

    config: dict[str, Any] | None = None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    limit: int = 10
    threshold: float | None = None
    infer: bool = True


class EngramMemory(Memory, Component[EngramMemoryConfig]):
    """An AutoGen `Memory` over Engram, for the scope `user_id` / `agent_id` / `run_id` (at least
    one). `memory` is an engram `Memory` / `AsyncMemory` or a mem0 `MemoryClient` /
    `AsyncMemoryClient`; without it, `AsyncMemory(config)` is built here. `limit` and
    `threshold` bound what `query` and `update_context` recall; `infer=False` stores contents
    verbatim instead of extracting facts from them."""

    component_type = "memory"
    component_config_schema = EngramMemoryConfig
    component_provider_override = "engram.integrations.autogen.EngramMemory"

    def __init__(
        self,
        memory: Any = None,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        limit: int = 10,
        threshold: float | None = None,
        infer: bool = True,
        config: dict[str, Any] | None = None,
    ) -> None:
        if memory is not None and config is not None:
            raise ValueError("give a memory or a config to build one from, not both")
        if user_id is None and agent_id is None and run_id is None:  # before building a store
            raise ValueError("give at least one of user_id, agent_id or run_id")
        self._config = config
        self._owned = AsyncMemory(config) if memory is None else None
        self._backend = Backend(
            memory if self._owned is None else self._owned,
            user_id=user_id, agent_id=agent_id, run_id=run_id,
        )  # fmt: skip
        self._limit = limit
        self._threshold = threshold
        self._infer = infer

    async def add(self, content: MemoryContent, cancellation_token: CancellationToken | None = None
                  ) -> None:  # fmt: skip
        """Store `content` (text, Markdown, or JSON, stored as its JSON text) with its metadata."""
        args = self._backend.add_args(
            _text_of(content), infer=self._infer, metadata=dict(content.metadata or {})
        )
        await _cancellable(self._backend.acall("add", **args), cancellation_token)

    async def query(
        self,
        query: str | MemoryContent = "",
        cancellation_token: CancellationToken | None = None,
        *,
        limit: int | None = None,
        threshold: float | None = None,
        filters: dict[str, Any] | None = None,
    ) -> MemoryQueryResult:
        """The memories that best match `query`, best first: text contents whose metadata holds
        the memory's own plus `id`, `score`, `created_at`, `updated_at` and `categories`.
        `filters` (mem0's filter language) narrows the search within the scope."""
        text = query if isinstance(query, str) else _text_of(query)
        if not text.strip():
            return MemoryQueryResult(results=[])
        search = self._backend.asearch(
            text, top_k=limit or self._limit, filters=filters,
            threshold=self._threshold if threshold is None else threshold,
        )  # fmt: skip
        found = await _cancellable(search, cancellation_token)
        return MemoryQueryResult(results=[_content(item) for item in found])

    async def update_context(self, model_context: ChatCompletionContext) -> UpdateContextResult:
        """Add the memories relevant to the latest user message to `model_context`, as one
        system message (nothing when none is found)."""
        found = await self.query(_latest_user_text(await model_context.get_messages()))
        if found.results:
            lines = [f"{i}. {item.content}" for i, item in enumerate(found.results, 1)]
            await model_context.add_message(SystemMessage(content="\n".join([HEADER, *lines])))
        return UpdateContextResult(memories=found)

    async def clear(self) -> None:
        """Delete every memory of this scope."""
        await self._backend.acall("delete_all", **self._backend.scope)

    async def close(self) -> None:
        """Close the `AsyncMemory` built here; a memory passed in stays open (it is the
        caller's)."""
        if self._owned is not None:
            await self._owned.close()

    def _to_config(self) -> EngramMemoryConfig:
        if self._owned is None:
            raise TypeError(
                "only an EngramMemory built from a config can be dumped: "
                "EngramMemory(config={...}, user_id=...)"
            )
        return EngramMemoryConfig(
            config=self._config, limit=self._limit, threshold=self._threshold,
            infer=self._infer, **self._backend.scope,
        )  # fmt: skip

    @classmethod
    def _from_config(cls, config: EngramMemoryConfig) -> EngramMemory:
        return cls(**config.model_dump())


async def _cancellable(call: Awaitable[T], token: CancellationToken | None) -> T:
    """`call`, cancelled when `token` is (at once if it already is)."""
    if token is None:
        return await call
    future = asyncio.ensure_future(call)
    token.link_future(future)
    return await future


def _text_of(content: MemoryContent) -> str:
    """The text to store or search for: text and Markdown as they are, JSON as its JSON text."""
    kind = getattr(content.mime_type, "value", content.mime_type)
    if kind == MemoryMimeType.JSON.value:
        value = content.content
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if kind in TEXT_TYPES and isinstance(content.content, str):
        return content.content
    raise ValueError(
        f"Engram stores text: a {kind} memory content cannot be stored or searched for "
        "(give text/plain, text/markdown or application/json)"
    )


def _content(item: dict[str, Any]) -> MemoryContent:
    facts = {key: item.get(key) for key in ("id", "score", "created_at", "updated_at")}
    facts["categories"] = item.get("categories") or None
    metadata = {**(item.get("metadata") or {}), **{k: v for k, v in facts.items() if v is not None}}
    return MemoryContent(content=item["memory"], mime_type=MemoryMimeType.TEXT, metadata=metadata)


def _latest_user_text(messages: Sequence[LLMMessage]) -> str:
    """The text of the latest user message (its text parts, when it also holds images)."""
    for message in reversed(messages):
        if getattr(message, "type", None) != "UserMessage":
            continue
        if isinstance(message.content, str):
            return message.content
        return "\n".join(p for p in message.content if not isinstance(p, Image))
    return ""
