"""search(): candidates from every retriever the recipe uses, fused into one ranked list.

The query is searched without the scope's own subject in it (`pipeline.subject`: "what should I
not cook for Alex?" in Alex's scope is "what should I not cook for the user?"), and a query that
asks what to avoid is answered by restrictions, not likings: its best candidates take the
recipe's `stance` (see `core.scoring`), read from their loaded texts. A query that asks for a
place or a named work lifts the candidates that name one (`names`).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from engram.core.answers import asks_for_name, names_something
from engram.core.filters import And, Cond, Field, Node, combine, scope_of
from engram.core.periods import TOLD_AFTER, Period, query_period
from engram.core.scoring import (
    DEFAULT_RECIPE,
    RECIPES,
    Recipe,
    Scores,
    fuse,
    lift_in_time,
    lift_named,
    rounded,
    smooth,
    take_stance,
)
from engram.core.text import Name, asks_to_avoid, stance
from engram.core.timeutil import normalize_timestamp
from engram.errors import ValidationError
from engram.pipeline.context import Context
from engram.pipeline.items import memory_item
from engram.pipeline.rerank import Reranker
from engram.pipeline.subject import Phrasing, learn, phrase, subject_names
from engram.providers.llm.base import Usage
from engram.store.base import Candidate, MemoryRecord
from engram.types import Relation, SearchResult


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    where: Node | None
    top_k: int
    threshold: float | None
    recipe: Recipe
    explain: bool
    show_expired: bool
    graph: bool = False
    rerank: bool = False
    subject: bool = True  # the scope's subject names are left out of the query (see above)


RERANK_POOL = 20  # fused candidates the reranker looks at (at least top_k)


async def _rerank(
    reranker: Reranker,
    query: str,
    winners: list[tuple[Candidate, Scores]],
    records: dict[str, MemoryRecord],
) -> list[tuple[Candidate, Scores]]:
    """The reranker's relevance becomes the score (the fused one stays in `explain`). It sees
    each memory as `[date] speaker: text` (the speaker when the memory has one): "when" and
    "who said" questions need them."""
    texts = [
        reranker_text(r.created_at, r.actor_id, r.memory)
        for r in (records[c.memory_id] for c, _ in winners)
    ]
    relevance = await reranker.scores(query, texts, Usage())
    for (_, score), value in zip(winners, relevance, strict=True):
        score.parts["fused"] = score.total
        score.parts["rerank"] = value
        score.total = min(1.0, max(0.0, value))
    return sorted(winners, key=lambda pair: -pair[1].total)


def reranker_text(created_at: str, actor_id: str | None, memory: str) -> str:
    """A memory as a reranker sees it: `[date] speaker: text` (the speaker when it has one and
    the text does not start with the name already, as an extracted "Ana lives in Oslo" does)."""
    speaker = f"{actor_id}: " if actor_id and not memory.startswith(actor_id) else ""
    return f"[{created_at[:10]}] {speaker}{memory}"


def named_speaker(query: str, speakers: set[str]) -> str | None:
    """The one speaker among the candidates' that the query names (none when it names several)."""
    text = query.casefold()
    named = [s for s in speakers if re.search(rf"(?<!\w){re.escape(s.casefold())}(?!\w)", text)]
    return named[0] if len(named) == 1 else None


def pick_recipe(name: str | None, keyword_search: bool | None, *, graph: bool = False) -> Recipe:
    """A named recipe; mem0's `keyword_search=False` means semantic only, `True` hybrid. With
    graph memory on, the default is `hybrid_graph`."""
    if name is None and keyword_search is not None:
        name = "hybrid" if keyword_search else "vector"
    elif name is None:
        name = "hybrid_graph" if graph else DEFAULT_RECIPE
    elif keyword_search is not None:
        raise ValidationError("pass either 'recipe' or 'keyword_search', not both")
    if name not in RECIPES:
        raise ValidationError(f"unknown search recipe {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]


async def run_search(ctx: Context, request: SearchRequest) -> SearchResult:
    if request.recipe.decompose or request.recipe.llm_rerank:
        from engram.pipeline.llm_search import run_llm_search

        return await run_llm_search(ctx, request)
    out, learnt = await _search(ctx, request, await _names(ctx, request))
    if learnt:  # the results state a name the query uses: search again without it
        out, _ = await _search(ctx, request, await _names(ctx, request))
    return out


async def _names(ctx: Context, request: SearchRequest) -> list[Name] | None:
    if not request.subject:
        return None
    return await subject_names(ctx, request.where, graph=request.graph)


async def _search(
    ctx: Context, request: SearchRequest, names: list[Name] | None
) -> tuple[SearchResult, bool]:
    """The results, and whether they taught a new name of the subject that the query uses."""
    period = _period(ctx, request)
    found, base, linked, relations = await _gather(
        ctx, request, phrase(request.query, names or []), period
    )
    scores = _score(ctx, request, found, base, linked, period)
    # Best first; of two equal scores, the newer memory first (created_at is UTC ISO 8601).
    pairs = zip(found, scores, strict=True)
    ranked = sorted(pairs, key=lambda pair: pair[0].created_at, reverse=True)
    ranked.sort(key=lambda pair: -pair[1].total)
    reranker = ctx.reranker if request.rerank else None
    avoiding = request.recipe.stance > 0 and asks_to_avoid(request.query)
    pool = max(request.top_k, RERANK_POOL) if reranker or avoiding else request.top_k
    winners = ranked[:pool]
    records = await ctx.store.get_many([c.memory_id for c, _ in winners])
    winners = [(c, s) for c, s in winners if c.memory_id in records]  # not deleted meanwhile
    if avoiding:
        stances = [_stance(records[c.memory_id]) for c, _ in winners]
        take_stance([s for _, s in winners], stances, request.recipe)
        winners.sort(key=lambda pair: -pair[1].total)
    if request.threshold is not None:
        winners = [(c, s) for c, s in winners if s.total >= request.threshold]
    if names is not None and learn(ctx, request.where, request.query, list(records.values())):
        return {"results": []}, True
    if reranker is not None:
        winners = await _rerank(reranker, request.query, winners, records)
    results = []
    for candidate, score in winners[: request.top_k]:
        item = memory_item(records[candidate.memory_id])
        item["score"] = round(score.total, 6)
        if request.explain:
            item["explain"] = {"recipe": request.recipe.name, **rounded(score.parts)}
        results.append(item)
    out: SearchResult = {"results": results}
    if request.rerank and ctx.reranker is None:
        out["warnings"] = ["rerank was asked for but no reranker is configured; results are fused"]
    if request.graph:
        out["relations"] = relations
    return out, False


def _base_pool(found: list[Candidate], recipe: Recipe, top_k: int) -> set[str] | None:
    """When more results are asked for than the recipe's `candidates`, the retrievers are asked
    for more, and the candidates a search for fewer would have (each retriever's best
    `candidates`, and the graph's) are its base pool: what is read from the other candidates
    (a turn's neighbours, the speaker the query names, whether the period's memories are few)
    is read from it alone. So a memory's score does not depend on how many results are asked
    for: a wider pool only adds candidates (a v1-style call's 100 and a v2-style call's 20
    give the same scores). None when every candidate is in it."""
    if top_k <= recipe.candidates:
        return None
    by_vector = sorted(found, key=lambda c: -c.vector)[: recipe.candidates]
    matched = [c for c in found if c.keyword > 0]
    by_keyword = sorted(matched, key=lambda c: -c.keyword)[: recipe.candidates]
    vector = recipe.uses("vector")
    base = {c.memory_id for c in (*(by_vector if vector else ()), *by_keyword)}
    return base | {c.memory_id for c in found if not c.vector and not c.keyword}  # the graph's


def _stance(record: MemoryRecord) -> float:
    """A memory's stance (`core.text.stance`); none for a turn a named speaker said verbatim: it
    is a line of a conversation, not a statement of what the scope's subject likes or cannot
    have (a fact extracted from it is one)."""
    said = record.actor_id is not None and record.role is not None
    return 0.0 if said else stance(record.memory)


PERIOD_CANDIDATES = 20  # the period's nearest memories taken when the candidates hold fewer


def _period(ctx: Context, request: SearchRequest) -> Period | None:
    """The period the query asks about, when the recipe weighs it (`core.periods`)."""
    if not request.recipe.time:
        return None
    return query_period(request.query, date.fromisoformat(ctx.today()))


async def _gather(
    ctx: Context, request: SearchRequest, phrasing: Phrasing, period: Period | None
) -> tuple[list[Candidate], set[str] | None, dict[str, float], list[Relation]]:
    """Candidates from every retriever. The full-text query and the graph lookup need no
    embedding: they run in the store's threads (or connections) while the query is embedded,
    and the full text may still be running while the store finds the nearest vectors. When the
    query's vector is remembered, the full-text query runs in the same store call as the rest.
    A query about a period of a given year also takes the nearest memories of that period (and
    of the days after it, when it may have been told) when the whole scope's best hold few of
    them."""
    recipe = request.recipe
    terms = phrasing.terms if recipe.uses("keyword") else []
    today = ctx.today()
    pool = max(request.top_k, recipe.candidates)
    vector = ctx.queries.remembered(phrasing.embedded) if recipe.uses("vector") else None
    keyword = graph = None
    if terms and recipe.uses("vector") and vector is None:  # ahead, while the query is embedded
        keyword = asyncio.ensure_future(
            ctx.store.keyword_matches(
                terms, request.where, today=today, show_expired=request.show_expired, want=pool
            )
        )
    if request.graph:
        graph = asyncio.ensure_future(
            ctx.store.neighbourhood(scope_of(request.where), request.query, request.where)
        )
    try:
        if recipe.uses("vector") and vector is None:
            await asyncio.sleep(0)  # let those tasks hand their work to the threads first
            vector = await ctx.embed_query(phrasing.embedded, Usage())
        linked, relations = await graph if graph else ({}, [])
        found = await ctx.store.candidates(
            vector, terms, request.where, today=today,
            n_vector=(request.top_k if recipe.name == "vector" else pool) if vector is not None
            else 0,
            n_keyword=pool if terms else 0, show_expired=request.show_expired,
            extra_ids=list(linked) if recipe.uses("graph") else [], keyword=keyword,
        )  # fmt: skip
        base = _base_pool(found, recipe, request.top_k)
        based = found if base is None else [c for c in found if c.memory_id in base]
        if period is not None and not period.any_year and _few_in(period, based):
            more = await ctx.store.candidates(
                vector, terms, combine(request.where, _within(period)), today=today,
                n_vector=PERIOD_CANDIDATES if vector is not None else 0, n_keyword=0,
                show_expired=request.show_expired,
            )  # fmt: skip
            found = _merged(found, more)
            base = None if base is None else base | {c.memory_id for c in more}
    except BaseException:
        for task in (keyword, graph):
            if task is not None:
                task.cancel()
        raise
    return found, base, linked, relations


def _few_in(period: Period, found: list[Candidate]) -> bool:
    """Whether the candidates hold fewer than PERIOD_CANDIDATES of the period's memories."""
    inside = sum(period.score(date.fromisoformat(c.created_at[:10])) > 0 for c in found)
    return inside < PERIOD_CANDIDATES


def _within(period: Period) -> Node:
    """Memories whose event time is in the period or in the days after it."""
    created = Field("timestamp", "created_at")
    until = period.last + TOLD_AFTER + timedelta(days=1)
    return And((
        Cond(created, "gte", normalize_timestamp(period.first.isoformat(), what="period")),
        Cond(created, "lt", normalize_timestamp(until.isoformat(), what="period")),
    ))  # fmt: skip


def _merged(found: list[Candidate], more: list[Candidate]) -> list[Candidate]:
    seen = {c.memory_id for c in found}
    return found + [c for c in more if c.memory_id not in seen]


def _score(
    ctx: Context,
    request: SearchRequest,
    found: list[Candidate],
    base: set[str] | None,
    linked: dict[str, float],
    period: Period | None,
) -> list[Scores]:
    """Every candidate's components, fused by the recipe, lifted when it happened in the period
    the query asks about, then by its neighbours (those in the base pool: `_base_pool`), then
    when it names something and the query asks for a name (`core.answers`: a speaker's name is
    not one)."""
    now = ctx.clock()
    speakers = {c.actor_id for c in found if c.actor_id and (base is None or c.memory_id in base)}
    speaker = named_speaker(request.query, speakers)
    scores = [
        Scores(
            vector=c.vector,
            keyword_raw=c.keyword,
            age_days=(now - datetime.fromisoformat(c.created_at)).total_seconds() / 86400,
            feedback=c.feedback,
            graph=linked.get(c.memory_id, 0.0),
            speaker=1.0 if speaker is not None and c.actor_id == speaker else 0.0,
            words=c.words,
        )
        for c in found
    ]
    fuse(scores, request.recipe)
    if period is not None:
        places = [period.score(date.fromisoformat(c.created_at[:10])) for c in found]
        lift_in_time(scores, places, request.recipe)
    position = {c.memory_id: i for i, c in enumerate(found)}
    adjacent = [
        [position[n] for n in c.neighbours if n in position
         and (base is None or n in base)]
        for c in found
    ]  # fmt: skip
    smooth(scores, adjacent, request.recipe)
    if request.recipe.names and asks_for_name(request.query):
        named = [names_something(c.text, speakers) for c in found]
        lift_named(scores, named, request.recipe)
    return scores
