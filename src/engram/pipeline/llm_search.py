"""Recipes that ask the LLM (`hybrid_llm`): the query split into simpler queries (one LLM call),
each searched with the recipe's fusion, their results merged, and the best `RERANK_POOL`
reranked by the LLM against the original query (a second call). Searches that need several
memories from several places ("what activities has Melanie done with her family?") are what
the split is for; the reranker then orders what was found by how well it answers.

The result carries `usage`: the search's LLM calls and tokens.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engram.errors import ValidationError
from engram.pipeline.context import Context
from engram.pipeline.rerank import LLMReranker
from engram.prompts import decompose
from engram.providers.llm.base import Usage
from engram.types import MemoryItem, SearchResult

RERANK_POOL = 20


async def run_llm_search(ctx: Context, request: Any) -> SearchResult:
    """`request` is a `pipeline.search.SearchRequest` whose recipe asks for the LLM."""
    from engram.pipeline.search import run_search  # the plain search (it imports this module)

    if ctx.llm is None:
        raise ValidationError(
            f"the {request.recipe.name} recipe needs an LLM: configure 'llm' (any "
            "OpenAI-compatible endpoint, Anthropic, Ollama, ...)"
        )
    usage = Usage()
    queries = [request.query]
    if request.recipe.decompose:
        queries += await _sub_queries(ctx, request.query, usage)
    fusion = replace(request.recipe, decompose=False, llm_rerank=False)
    plain = replace(request, recipe=fusion, top_k=max(request.top_k, RERANK_POOL),
                    threshold=None, rerank=False)  # fmt: skip
    best: dict[str, MemoryItem] = {}
    relations: list[Any] = []
    for query in queries:
        found = await run_search(ctx, replace(plain, query=query))
        relations += [r for r in found.get("relations", []) if r not in relations]
        for item in found["results"]:
            kept = best.get(item["id"])
            if kept is None or item.get("score", 0.0) > kept.get("score", 0.0):
                best[item["id"]] = item
    pool = sorted(best.values(), key=lambda item: -item.get("score", 0.0))[:RERANK_POOL]
    if request.recipe.llm_rerank and pool:
        pool = await _rerank(ctx, request.query, pool, usage)
    if request.threshold is not None:
        pool = [item for item in pool if item.get("score", 0.0) >= request.threshold]
    for item in pool:
        if request.explain:
            item.setdefault("explain", {})["queries"] = queries
        elif "explain" in item:
            del item["explain"]
    out: SearchResult = {"results": pool[: request.top_k]}
    out["usage"] = {k: v for k, v in usage.as_dict().items() if k != "calls"}
    if request.graph:
        out["relations"] = relations
    return out


async def _sub_queries(ctx: Context, query: str, usage: Usage) -> list[str]:
    assert ctx.llm is not None
    answer = await ctx.llm.generate(decompose.render(query), usage=usage)
    seen = {query.strip().casefold()}
    out: list[str] = []
    for text in answer.queries:
        cleaned = " ".join(str(text).split())
        if cleaned and cleaned.casefold() not in seen and len(out) < decompose.MAX_QUERIES:
            seen.add(cleaned.casefold())
            out.append(cleaned)
    return out


async def _rerank(ctx: Context, query: str, pool: list[MemoryItem], usage: Usage) -> list[
    MemoryItem
]:  # fmt: skip
    """The LLM's relevance becomes the score; the fused one stays in `explain`."""
    from engram.pipeline.search import reranker_text

    assert ctx.llm is not None
    reranker = ctx.reranker or LLMReranker(ctx.llm)
    texts = [reranker_text(i["created_at"], i.get("actor_id"), i["memory"]) for i in pool]
    relevance = await reranker.scores(query, texts, usage)
    for item, value in zip(pool, relevance, strict=True):
        parts = item.setdefault("explain", {})
        parts["fused"], parts["rerank"] = item.get("score", 0.0), value
        item["score"] = round(min(1.0, max(0.0, value)), 6)
    return sorted(pool, key=lambda item: -item.get("score", 0.0))
