"""AsyncMemory: the one implementation of mem0's Memory API. `Memory` wraps it for blocking code."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from datetime import datetime
from typing import Any

from engram.config import MemoryConfig, build_embedder, build_llm, build_reranker, build_store
from engram.core.filters import Node, scope_of
from engram.core.ids import clean_memory_id
from engram.core.scope import resolve_delete, resolve_filters, scope_ids
from engram.core.timeutil import normalize_date
from engram.errors import DimensionMismatchError, ValidationError
from engram.pipeline.add import run_add
from engram.pipeline.context import Context, utc_now
from engram.pipeline.export import export_scope, summarize_scope
from engram.pipeline.extractors import Extractor, LLMExtractor, OfflineExtractor
from engram.pipeline.items import history_item, memory_item
from engram.pipeline.requests import (
    AddRequest,
    Guidance,
    batch_items,
    build_request,
    clean_categories,
    clean_metadata,
    decode_cursor,
    encode_cursor,
    limit_of,
    paging_of,
)
from engram.pipeline.rerank import Reranker, close_reranker
from engram.pipeline.search import SearchRequest, pick_recipe, run_search
from engram.providers.documents import DocumentFetcher
from engram.providers.embedders.base import Embedder
from engram.providers.llm.base import LLM
from engram.store.base import Delete, Store, Update
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

logger = logging.getLogger("engram")

FEEDBACK_VALUES: dict[str | None, float] = {
    "POSITIVE": 1.0, "NEGATIVE": -0.5, "VERY_NEGATIVE": -1.0, None: 0.0,
}  # fmt: skip
V1_DEFAULT_LIMIT = 100  # mem0 1.x search default, used when ids come at the top level
V2_DEFAULT_TOP_K = 20  # mem0 2.x search default, used when the scope comes in `filters`


class AsyncMemory:
    """Long-term memory with mem0's API, on an embedded SQLite store by default.

    `config` is a `MemoryConfig` or mem0's config dict; `embedder`, `store` and `llm` instances,
    when given, take precedence over it. Without an LLM (none given, configured, or found through
    OPENAI_API_KEY / ANTHROPIC_API_KEY), `add(infer=True)` uses the offline rule-based extractor.
    Reads and deletes need a user_id, agent_id or run_id somewhere in their ids or filters
    (mem0's rule); `require_scope=False` lets `search`, `get_all`, `export` and `summary` read the
    whole store without one (the server does so: an API key's project is its scope). The local
    embedding model starts loading on a background thread at once (`warm=False`: when first
    needed, for a tool that may only read); a process that ends meanwhile waits for it.
    Use `async with AsyncMemory() as memory:` or call `close()`.
    """

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
        if config is None:
            config = MemoryConfig()
        elif isinstance(config, Mapping):
            config = MemoryConfig.from_dict(config)
        self.config = config
        self.embedder = embedder or build_embedder(config)
        self.store: Store = store or build_store(config)
        llm = llm or build_llm(config)
        self.llm = llm
        self.extractor: Extractor = LLMExtractor(llm) if llm else OfflineExtractor()
        self.documents = documents or DocumentFetcher(**config.documents)
        self.reranker = reranker or build_reranker(config, llm)
        self._ctx = Context(
            self.store, self.embedder, self.extractor, self.documents, clock or utc_now,
            self.reranker, llm,
        )  # fmt: skip
        self._ready: asyncio.Future[None] | None = None
        warming = getattr(self.embedder, "warm", None)
        if warm and warming is not None:  # the local model loads while the caller goes on
            # Not a daemon: a process that ends while the model loads waits for it (a few
            # hundred ms), as the runtime aborts the process when killed mid-load.
            threading.Thread(target=warming, name="engram-warm").start()
        self.require_scope = require_scope

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any]) -> AsyncMemory:
        """Build from mem0's config dict (`{"embedder": ..., "vector_store": ...}`)."""
        return cls(MemoryConfig.from_dict(config_dict))

    async def _open(self) -> Context:
        if self._ready is None:
            self._ready = asyncio.ensure_future(self._open_store())
        try:
            await asyncio.shield(self._ready)
        except BaseException:
            ready = self._ready
            if ready.done() and (ready.cancelled() or ready.exception() is not None):
                self._ready = None  # let the next call try again
            raise
        return self._ctx

    async def _open_store(self) -> None:
        probe = getattr(self.embedder, "probe", None)
        if probe is not None:
            await probe()
        try:
            await self.store.open(dims=self.embedder.dims, model_id=self.embedder.model_id)
        except DimensionMismatchError as exc:  # the model's other graph wrote this store?
            twin = getattr(self.embedder, "for_model", None)
            stored = exc.details.get("stored_model_id")
            other = twin(stored) if twin is not None and isinstance(stored, str) else None
            if other is None:
                raise
            await self.store.open(dims=other.dims, model_id=other.model_id)
            self.embedder = other
            self._ctx = dataclasses.replace(self._ctx, embedder=other)

    # -- writes ---------------------------------------------------------------------------------

    async def add(
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
        """Store memories from messages: facts extracted and reconciled (`infer=True`) or the
        messages verbatim (`infer=False`).

        Returns `{"results": [{"id", "memory", "event", "previous_memory"?}], "usage": {...}}`,
        plus `"warnings"` when something was not applied as the extractor asked. `prompt` (this
        call's extraction instructions), `includes`, `excludes`, `custom_instructions` and
        `custom_categories` override the config's for this call; `timestamp` is the event time
        (relative dates resolve against it; it becomes `created_at`). With graph memory on
        (config `graph_store` or `enable_graph=True`), the facts' relations are stored too and
        the result has `relations: {"added_entities", "deleted_entities"}`. With an
        `idempotency_key` (an Engram extension), a retried add is applied once: a key applied
        before returns what was written then, with `"replayed": True`."""
        args = {k: v for k, v in locals().items() if k not in ("self", "messages")}
        request = self._add_request(messages, args)
        return await run_add(await self._open(), request)

    async def check_add(self, messages: Any, **kwargs: Any) -> None:
        """Validate an `add` call without running it (the server checks a queued add first)."""
        try:
            bound = inspect.signature(AsyncMemory.add).bind(self, messages, **kwargs)
        except TypeError as exc:
            raise ValidationError(f"add: {exc}") from None
        bound.apply_defaults()
        args = {k: v for k, v in bound.arguments.items() if k not in ("self", "messages")}
        self._add_request(messages, args)

    def _add_request(self, messages: Any, args: dict[str, Any]) -> AddRequest:
        """The checked request of one `add` call (`args`: its keyword arguments, all of them)."""
        ids = ("user_id", "agent_id", "run_id", "app_id")
        scope = scope_ids(**{name: args[name] for name in ids})
        cfg = self.config
        guidance = Guidance(
            custom_instructions=args["custom_instructions"] or cfg.custom_instructions,
            custom_categories=args["custom_categories"] or cfg.custom_categories,
            includes=args["includes"],
            excludes=args["excludes"],
            custom_fact_prompt=args["prompt"] or cfg.custom_fact_extraction_prompt,
            custom_update_prompt=cfg.custom_update_memory_prompt,
        )
        passed = ("metadata", "infer", "memory_type", "expiration_date", "immutable",
                  "categories", "timestamp", "idempotency_key")  # fmt: skip
        return build_request(
            messages,
            scope,
            now=self._ctx.now(),
            guidance=guidance,
            graph=self._graph(args["enable_graph"]),
            limits=cfg.limits,
            **{name: args[name] for name in passed},
        )

    def _graph(self, enable_graph: bool | None) -> bool:
        return self.config.graph if enable_graph is None else bool(enable_graph)

    async def update(
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
        """Change a memory's text (`data` or `text`), metadata, expiration or categories;
        `clear_expiration_date=True` removes its expiration (it never expires again)."""
        if clear_expiration_date and expiration_date is not None:
            raise ValidationError("give an expiration_date or clear it, not both")
        op = await self._update_op(
            memory_id, data, text, metadata, expiration_date, categories, clear_expiration_date
        )
        await self._ctx.store.apply([op], cause="update")
        return {"message": "Memory updated successfully!"}

    async def _update_op(
        self,
        memory_id: str,
        data: str | None,
        text: str | None,
        metadata: dict[str, Any] | None,
        expiration_date: str | None,
        categories: list[str] | None,
        clear_expiration_date: bool = False,
    ) -> Update:
        ctx = await self._open()
        memory_id = clean_memory_id(memory_id)
        if data is not None and text is not None and data != text:
            raise ValidationError("pass the new text as 'data' or 'text', not both")
        new_text = text if text is not None else data
        if new_text is not None and (not isinstance(new_text, str) or not new_text.strip()):
            raise ValidationError("the new memory text must be a non-empty string")
        if new_text is not None:
            self.config.limits.text(new_text, "the new memory text")
        given = (new_text, metadata, expiration_date, categories)
        if all(v is None for v in given) and not clear_expiration_date:
            raise ValidationError(
                "nothing to update: give text, metadata, expiration_date or categories"
            )
        op = Update(memory_id, at=ctx.now())
        if new_text is not None:
            op.memory = new_text
            op.embedding = (await ctx.embedder.embed([new_text], purpose="update"))[0]
        if metadata is not None:
            op.metadata = clean_metadata(metadata, self.config.limits)
        if expiration_date is not None:
            op.expiration_date = normalize_date(expiration_date, what="expiration_date")
        elif clear_expiration_date:
            op.expiration_date = None
        if categories is not None:
            op.categories = clean_categories(categories)
        return op

    async def delete(self, memory_id: str) -> MessageResult:
        ctx = await self._open()
        await ctx.store.apply([Delete(clean_memory_id(memory_id), at=ctx.now())], cause="delete")
        return {"message": "Memory deleted successfully!"}

    async def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
    ) -> MessageResult:
        """Delete every memory in the scope (no cap); returns how many were deleted."""
        where = resolve_delete(
            filters, limits=self.config.limits, user_id=user_id, agent_id=agent_id, run_id=run_id
        )
        ctx = await self._open()
        count = await ctx.store.delete_where(where, at=ctx.now(), cause="delete_all")
        return {"message": "Memories deleted successfully!", "deleted_count": count}

    async def batch_update(self, memories: Sequence[Mapping[str, Any]]) -> MessageResult:
        """Update up to 1000 memories at once: `[{"memory_id", "text"?, "metadata"?}]`, atomic."""
        items = batch_items(memories, "batch_update")
        ops = [
            await self._update_op(
                item["memory_id"],
                None,
                item.get("text", item.get("memory")),
                item.get("metadata"),
                item.get("expiration_date"),
                item.get("categories"),
            )
            for item in items
        ]
        await self._ctx.store.apply(ops, cause="batch_update")
        return {"message": f"Successfully updated {len(ops)} memories", "updated_count": len(ops)}

    async def batch_delete(self, memories: Sequence[Mapping[str, Any] | str]) -> MessageResult:
        """Delete up to 1000 memories at once (`[{"memory_id"}]` or ids), all or none."""
        items = batch_items(
            [m if isinstance(m, Mapping) else {"memory_id": m} for m in memories], "batch_delete"
        )
        ctx = await self._open()
        now = ctx.now()
        ops = [Delete(clean_memory_id(item["memory_id"]), at=now) for item in items]
        await ctx.store.apply(ops, cause="batch_delete")
        return {"message": f"Successfully deleted {len(ops)} memories", "deleted_count": len(ops)}

    async def feedback(
        self,
        memory_id: str,
        feedback: str | None = None,
        feedback_reason: str | None = None,
    ) -> FeedbackResult:
        """Feedback on a memory (mem0 Platform's values): POSITIVE, NEGATIVE, VERY_NEGATIVE, or
        None to clear it. It becomes the memory's ranking signal in search (+1, -0.5, -1, 0)."""
        if feedback not in FEEDBACK_VALUES:
            raise ValidationError(
                "feedback must be POSITIVE, NEGATIVE, VERY_NEGATIVE or None, got " + repr(feedback)
            )
        if feedback_reason is not None and not isinstance(feedback_reason, str):
            raise ValidationError("feedback_reason must be a string")
        ctx = await self._open()
        memory_id = clean_memory_id(memory_id)
        value = FEEDBACK_VALUES[feedback]
        await ctx.store.set_feedback(memory_id, feedback, feedback_reason, value, at=ctx.now())
        return {"id": memory_id, "feedback": feedback, "feedback_reason": feedback_reason}

    async def reset(self) -> None:
        """Delete every memory and all history in this store."""
        ctx = await self._open()
        await ctx.store.reset()

    # -- reads ----------------------------------------------------------------------------------

    async def get(self, memory_id: str) -> MemoryItem | None:
        ctx = await self._open()
        record = await ctx.store.get(clean_memory_id(memory_id))
        return memory_item(record) if record else None

    async def get_all(
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
        """Every memory in scope, newest first; `limit`/`top_k` or `page`/`page_size` to page.

        `total` counts all matches, so a shorter list is never mistaken for everything. With
        graph memory on, `relations` lists the scope's valid relations. `after` (an Engram
        extension) pages by position instead of by number, as fast on the last page as on the
        first: `""` for the first `limit` memories, then each result's `next_cursor` (`None`
        after the last)."""
        where = self._reading(filters, user_id, agent_id, run_id)
        paging = paging_of(page, page_size, limit_of(limit, top_k))
        if after is not None and paging.page is not None:
            raise ValidationError("use either after (a cursor) or page/page_size")
        ctx = await self._open()
        result = await ctx.store.list_memories(
            where, today=ctx.today(), show_expired=show_expired, offset=paging.offset,
            limit=paging.limit, before=decode_cursor(after) if after else None,
        )  # fmt: skip
        out: ListResult = {
            "results": [memory_item(r) for r in result.records],
            "total": result.total,
        }
        if after is not None:
            full = paging.limit is not None and len(result.records) == paging.limit
            out["next_cursor"] = encode_cursor(result.last) if full and result.last else None
        if paging.page is not None:
            out["page"], out["page_size"] = paging.page
            more = paging.offset + len(result.records) < result.total
            out["next_page"] = paging.page[0] + 1 if more else None
        if self._graph(enable_graph):
            out["relations"] = [
                {"source": r["source"], "relationship": r["relationship"], "target": r["target"]}
                for r in await ctx.store.relations(scope_of(where), where=where)
            ]
        return out

    async def entities(self) -> list[dict[str, Any]]:
        """Every user, agent, app and run with memories, with counts (the Platform's users()).
        An Engram extension: mem0's library has no such call."""
        ctx = await self._open()
        return [{"id": e["name"], **e} for e in await ctx.store.entities()]

    async def get_profile(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        include_history: bool = False,
    ) -> ProfileResult:
        """The scope's profile facts (single-valued attributes such as location, employer,
        diet), key -> value, each with the memory it came from; kept by the add pipeline when
        graph memory is on. `include_history` adds every change, oldest first."""
        scope = scope_ids(user_id=user_id, agent_id=agent_id, run_id=run_id)
        if not scope:
            raise ValidationError("at least one of 'user_id', 'agent_id' or 'run_id' is required")
        ctx = await self._open()
        facts = await ctx.store.profile(scope)
        out: ProfileResult = {
            "profile": {key: fact["value"] for key, fact in facts.items()},
            "results": [{"key": key, **fact} for key, fact in facts.items()],
        }
        if include_history:
            out["history"] = await ctx.store.profile_history(scope)
        return out

    async def get_relations(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        include_ended: bool = False,
    ) -> list[dict[str, Any]]:
        """The scope's graph: `{"source", "relationship", "target", "valid_at", "invalid_at",
        "memory_id"}` per relation, oldest first; ended ones (a later fact replaced them) too
        with `include_ended`. An Engram extension (mem0 keeps its graph in a separate store)."""
        scope = scope_ids(user_id=user_id, agent_id=agent_id, run_id=run_id)
        if not scope:
            raise ValidationError("at least one of 'user_id', 'agent_id' or 'run_id' is required")
        ctx = await self._open()
        return await ctx.store.relations(scope, include_ended=include_ended)

    async def export(
        self,
        schema: Mapping[str, Any] | str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
        instructions: str | None = None,
    ) -> dict[str, Any]:
        """The scope's memories as one object that fits `schema` (a JSON Schema, or its JSON
        text; the subset in `core.jsonschema`). With an LLM, one call fills it (`instructions`
        guide it) and the answer is validated; offline, the known fields are mapped
        deterministically (see `pipeline.export`). An Engram extension behind the Platform's
        memory exports; for a lossless copy of a store use `engram.transfer`."""
        where = self._reading(filters, user_id, agent_id, run_id)
        return await export_scope(await self._open(), self.llm, where, schema, instructions)

    async def summary(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
    ) -> SummaryResult:
        """A short summary of the scope's memories: `{"summary", "memory_count", "method"}`,
        written by the LLM when one is configured, else assembled from the memories by category."""
        where = self._reading(filters, user_id, agent_id, run_id)
        return await summarize_scope(await self._open(), self.llm, where)

    async def search(
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
        """The memories that best match `query` within the scope and filters, best first.

        `recipe` picks the retrievers and their weights (`vector`, `keyword`, `hybrid` (the
        default), `hybrid_graph`, and `hybrid_llm`, which asks the configured LLM to split the
        query and rerank what its parts found, and says what that cost in `usage`); mem0's
        `keyword_search=False` means `vector`, `True` `hybrid`.
        Scores are in [0, 1] in every recipe (see `engram.core.scoring`); `explain=True` adds
        each component's score. Without `limit`/`top_k`, 1.x-style calls (ids at the top level)
        get up to 100 results and 2.x-style calls (`filters`) up to 20. `rerank=True` has the
        configured reranker reorder the best 20 fused candidates (its relevance becomes the
        score); with none configured the result says so in `warnings`."""
        if not isinstance(query, str) or not query.strip():
            raise ValidationError("query must be a non-empty string")
        self.config.limits.query(query)
        if threshold is not None and (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0.0 <= threshold <= 1.0
        ):
            raise ValidationError(f"threshold must be a number between 0 and 1, got {threshold!r}")
        top_level = any(v is not None for v in (user_id, agent_id, run_id))
        where = self._reading(filters, user_id, agent_id, run_id)
        k = limit_of(limit, top_k) or (V1_DEFAULT_LIMIT if top_level else V2_DEFAULT_TOP_K)
        request = SearchRequest(
            query=query, where=where, top_k=k,
            threshold=None if threshold is None else float(threshold),
            recipe=pick_recipe(recipe, keyword_search, graph=self._graph(enable_graph)),
            explain=explain, show_expired=show_expired, graph=self._graph(enable_graph),
            rerank=rerank,
        )  # fmt: skip
        return await run_search(await self._open(), request)

    def _reading(
        self, filters: Any, user_id: str | None, agent_id: str | None, run_id: str | None
    ) -> Node | None:
        """The filter tree of a read: top-level ids and `filters` merged, the scope checked."""
        return resolve_filters(
            filters, require_scope=self.require_scope, limits=self.config.limits,
            user_id=user_id, agent_id=agent_id, run_id=run_id,
        )  # fmt: skip

    async def history(self, memory_id: str) -> list[HistoryItem]:
        """Every version of a memory, oldest first (also after it was deleted)."""
        ctx = await self._open()
        return [history_item(h) for h in await ctx.store.history(clean_memory_id(memory_id))]

    # -- lifecycle ------------------------------------------------------------------------------

    async def close(self) -> None:
        await self.store.close()
        await self.embedder.aclose()
        await self.extractor.aclose()
        await close_reranker(self.reranker)

    async def __aenter__(self) -> AsyncMemory:
        return self

    def __await__(self) -> Generator[Any, None, AsyncMemory]:
        """`await AsyncMemory.from_config(...)` (mem0's async form) opens the store and returns
        the instance; the plain call works too and opens the store on first use."""
        yield from self._open().__await__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
