"""The memory behind an adapter: Engram's `Memory` / `AsyncMemory`, or mem0's `MemoryClient` /
`AsyncMemoryClient` pointed at `engram serve`, reached through the calls they share (mem0 2.x's
form: the scope in `filters`) and answering in one shape.

An adapter's sync methods call `Backend.call`, its async ones `Backend.acall`: a blocking
backend runs in a worker thread under `acall`; an async backend under `call` is an error that
says what to do instead, since its event loop is not ours to block.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Mapping
from typing import Any

PAGE_SIZE = 100  # the Platform's default page


class Backend:
    """`memory` with the scope the adapter reads and writes (at least one id is required)."""

    def __init__(
        self,
        memory: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> None:
        if not callable(getattr(memory, "search", None)):
            raise TypeError(
                "expected an engram Memory / AsyncMemory or a mem0 MemoryClient / "
                f"AsyncMemoryClient, got {type(memory).__name__}"
            )
        ids = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
        self.scope = {k: v for k, v in ids.items() if v is not None}
        if not self.scope:
            raise ValueError("give at least one of user_id, agent_id or run_id")
        self.memory = memory
        self.is_async = inspect.iscoroutinefunction(memory.search)
        # mem0's clients queue an add unless told otherwise; the adapters' callers expect to
        # read what they just wrote.
        self.remote = hasattr(memory, "api_key") and hasattr(memory, "host")

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            raise TypeError(
                f"{type(self.memory).__name__} is async: use the adapter's async methods "
                "(ainvoke, aget_messages, ...) or pass its blocking twin (Memory, MemoryClient)"
            )
        return getattr(self.memory, name)(*args, **kwargs)

    async def acall(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.memory, name)
        if self.is_async:
            return await method(*args, **kwargs)
        return await asyncio.to_thread(method, *args, **kwargs)

    # -- the arguments of each call, and its answer in one shape --------------------------------

    def add_args(
        self, messages: Any, *, infer: bool, metadata: dict[str, Any] | None = None,
        scope: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        args: dict[str, Any] = {"messages": messages, "infer": infer, **(scope or self.scope)}
        if metadata:
            args["metadata"] = metadata
        if self.remote:
            args["async_mode"] = False  # stored when the call returns (engram serve honours it)
        return args

    def search_args(
        self, query: str, *, top_k: int, filters: Mapping[str, Any] | None = None,
        threshold: float | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        args: dict[str, Any] = {"query": query, "top_k": top_k, "filters": self.filters(filters)}
        if threshold is not None:
            args["threshold"] = threshold
        return args

    def list_args(self, page: int, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"filters": self.filters(filters), "page": page, "page_size": PAGE_SIZE}

    def filters(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The scope as mem0 2.x filters, AND the caller's own."""
        if not extra:
            return dict(self.scope)
        return {"AND": [dict(self.scope), dict(extra)]}

    def in_scope(self, item: Mapping[str, Any]) -> bool:
        """Whether a memory (from `get`) belongs to this scope."""
        return all(item.get(k) == v for k, v in self.scope.items())

    # -- the operations the adapters share ------------------------------------------------------

    def search(self, query: str, **options: Any) -> list[dict[str, Any]]:
        return results(self.call("search", **self.search_args(query, **options)))

    async def asearch(self, query: str, **options: Any) -> list[dict[str, Any]]:
        return results(await self.acall("search", **self.search_args(query, **options)))

    def list_all(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every memory in scope (page after page), newest first."""
        found: list[dict[str, Any]] = []
        for page in itertools.count(1):
            batch = results(self.call("get_all", **self.list_args(page, filters)))
            found += batch
            if len(batch) < PAGE_SIZE:
                break
        return found

    async def alist_all(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in itertools.count(1):
            batch = results(await self.acall("get_all", **self.list_args(page, filters)))
            found += batch
            if len(batch) < PAGE_SIZE:
                break
        return found

    def get(self, memory_id: str) -> dict[str, Any] | None:
        try:
            return item_or_none(self.call("get", memory_id))
        except Exception as exc:
            if not_found(exc):
                return None
            raise

    async def aget(self, memory_id: str) -> dict[str, Any] | None:
        try:
            return item_or_none(await self.acall("get", memory_id))
        except Exception as exc:
            if not_found(exc):
                return None
            raise


def results(answer: Any) -> list[dict[str, Any]]:
    """The memories of an answer: Engram's and mem0 2.x's `{"results": [...]}` (a page of the
    Platform's list included), or the bare list older clients return."""
    if isinstance(answer, list):
        return answer
    if isinstance(answer, Mapping) and isinstance(answer.get("results"), list):
        return list(answer["results"])
    raise TypeError(f"unexpected answer from the memory: {answer!r:.200}")


def item_or_none(answer: Any) -> dict[str, Any] | None:
    return dict(answer) if isinstance(answer, Mapping) and "id" in answer else None


def not_found(exc: Exception) -> bool:
    """Whether `exc` says the memory is not there (mem0's clients raise `MemoryNotFoundError`)."""
    return isinstance(exc, LookupError) or "NotFound" in type(exc).__name__
