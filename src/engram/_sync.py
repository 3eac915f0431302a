"""Memory: the blocking facade over AsyncMemory, one line per method.

Each `Memory` runs its own event loop in a daemon thread, so it works the same from plain scripts,
from threads, and from inside a running event loop (notebooks), where `asyncio.run` would fail.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from engram.config import MemoryConfig
from engram.errors import EngramError
from engram.memory import AsyncMemory
from engram.pipeline.rerank import Reranker
from engram.providers.documents import DocumentFetcher
from engram.providers.embedders.base import Embedder
from engram.providers.llm.base import LLM
from engram.store.base import Store
from engram.types import (
    AddResult,
    FeedbackResult,
    HistoryItem,
    ListResult,
    MemoryItem,
    MessageResult,
    ProfileResult,
    SearchResult,
    SummaryResult,
)

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, daemon=True, name="engram-loop"
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.loop.is_closed():
            coro.close()
            raise EngramError("this Memory is closed; create a new one")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking Memory method was called from its own event loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Memory:
    """mem0's `Memory` API, blocking. See `AsyncMemory` for the documentation of each method."""

    def __init__(
        self,
        config: MemoryConfig | Mapping[str, Any] | None = None,
        *,
        embedder: Embedder | None = None,
        store: Store | None = None,
        llm: LLM | None = None,
        documents: DocumentFetcher | None = None,
        reranker: Reranker | None = None,
        clock: Callable[[], datetime] | None = None,
        require_scope: bool = True,
        warm: bool = True,
    ) -> None:
        self._async = AsyncMemory(
            config, embedder=embedder, store=store, llm=llm, documents=documents,
            reranker=reranker, clock=clock, require_scope=require_scope, warm=warm,
        )  # fmt: skip
        self._loop = _LoopThread()
        self._closed = False

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any]) -> Memory:
        return cls(MemoryConfig.from_dict(config_dict))

    @property
    def async_memory(self) -> AsyncMemory:
        return self._async

    def add(
        self,
        messages: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        app_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        infer: bool = True,
        memory_type: str | None = None,
        prompt: str | None = None,
        expiration_date: str | None = None,
        immutable: bool = False,
        categories: list[str] | None = None,
        timestamp: str | int | float | None = None,
        includes: str | None = None,
        excludes: str | None = None,
        custom_instructions: str | None = None,
        custom_categories: list[dict[str, str]] | None = None,
        enable_graph: bool | None = None,
        idempotency_key: str | None = None,
    ) -> AddResult:
        return self._loop.run(self._async.add(messages, user_id=user_id, agent_id=agent_id, run_id=run_id, app_id=app_id, metadata=metadata, infer=infer, memory_type=memory_type, prompt=prompt, expiration_date=expiration_date, immutable=immutable, categories=categories, timestamp=timestamp, includes=includes, excludes=excludes, custom_instructions=custom_instructions, custom_categories=custom_categories, enable_graph=enable_graph, idempotency_key=idempotency_key))  # noqa: E501  # fmt: skip

    def check_add(self, messages: Any, **kwargs: Any) -> None:
        return self._loop.run(self._async.check_add(messages, **kwargs))

    def entities(self) -> list[dict[str, Any]]:
        return self._loop.run(self._async.entities())

    def update(
        self,
        memory_id: str,
        data: str | None = None,
        *,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        expiration_date: str | None = None,
        categories: list[str] | None = None,
        clear_expiration_date: bool = False,
    ) -> MessageResult:
        return self._loop.run(self._async.update(memory_id, data, text=text, metadata=metadata, expiration_date=expiration_date, categories=categories, clear_expiration_date=clear_expiration_date))  # noqa: E501  # fmt: skip

    def delete(self, memory_id: str) -> MessageResult:
        return self._loop.run(self._async.delete(memory_id))

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
    ) -> MessageResult:
        return self._loop.run(self._async.delete_all(user_id=user_id, agent_id=agent_id, run_id=run_id, filters=filters))  # noqa: E501  # fmt: skip

    def batch_update(self, memories: Sequence[Mapping[str, Any]]) -> MessageResult:
        return self._loop.run(self._async.batch_update(memories))

    def batch_delete(self, memories: Sequence[Mapping[str, Any] | str]) -> MessageResult:
        return self._loop.run(self._async.batch_delete(memories))

    def feedback(
        self,
        memory_id: str,
        feedback: str | None = None,
        feedback_reason: str | None = None,
    ) -> FeedbackResult:
        return self._loop.run(self._async.feedback(memory_id, feedback, feedback_reason))

    def reset(self) -> None:
        return self._loop.run(self._async.reset())

    def get(self, memory_id: str) -> MemoryItem | None:
        return self._loop.run(self._async.get(memory_id))

    def get_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
        limit: int | None = None,
        top_k: int | None = None,
        page: int | None = None,
        page_size: int | None = None,
        show_expired: bool = False,
        enable_graph: bool | None = None,
        after: str | None = None,
    ) -> ListResult:
        return self._loop.run(self._async.get_all(user_id=user_id, agent_id=agent_id, run_id=run_id, filters=filters, limit=limit, top_k=top_k, page=page, page_size=page_size, show_expired=show_expired, enable_graph=enable_graph, after=after))  # noqa: E501  # fmt: skip

    def get_profile(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        include_history: bool = False,
    ) -> ProfileResult:
        return self._loop.run(self._async.get_profile(user_id=user_id, agent_id=agent_id, run_id=run_id, include_history=include_history))  # noqa: E501  # fmt: skip

    def get_relations(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        include_ended: bool = False,
    ) -> list[dict[str, Any]]:
        return self._loop.run(self._async.get_relations(user_id=user_id, agent_id=agent_id, run_id=run_id, include_ended=include_ended))  # noqa: E501  # fmt: skip

    def export(
        self,
        schema: Mapping[str, Any] | str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
        instructions: str | None = None,
    ) -> dict[str, Any]:
        return self._loop.run(self._async.export(schema, user_id=user_id, agent_id=agent_id, run_id=run_id, filters=filters, instructions=instructions))  # noqa: E501  # fmt: skip

    def summary(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
    ) -> SummaryResult:
        return self._loop.run(self._async.summary(user_id=user_id, agent_id=agent_id, run_id=run_id, filters=filters))  # noqa: E501  # fmt: skip

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
        top_k: int | None = None,
        filters: dict[str, Any] | None = None,
        threshold: float | None = None,
        rerank: bool = False,
        explain: bool = False,
        show_expired: bool = False,
        keyword_search: bool | None = None,
        recipe: str | None = None,
        enable_graph: bool | None = None,
    ) -> SearchResult:
        return self._loop.run(self._async.search(query, user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit, top_k=top_k, filters=filters, threshold=threshold, rerank=rerank, explain=explain, show_expired=show_expired, keyword_search=keyword_search, recipe=recipe, enable_graph=enable_graph))  # noqa: E501  # fmt: skip

    def history(self, memory_id: str) -> list[HistoryItem]:
        return self._loop.run(self._async.history(memory_id))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.run(self._async.close())
        self._loop.stop()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
