"""search(): candidates from every retriever the recipe uses, fused into one ranked list.

The scope's own subject is not evidence inside the scope. Every memory of `user_id="alex"` is
about Alex, so the word "Alex" in "what should I not cook for Alex?" tells no memory from
another, yet it matched the one memory that spells it ("Name is Alex") by full text and pulled
it up by meaning. So the query is searched with the subject's names left out: its full-text
terms lose them, and it is embedded with a stand-in ("what should I not cook for the user?";
"the assistant" for an agent's names). The names are the scope's `user_id` and `agent_id` and
the names their memories state ("Name is Alex Moreno", "Hi, my name is Rosa"; the profile's
`name` with graph memory), found as words (`core.text.subject_spans`). A memory said by a named
speaker (`actor_id`) names that speaker, not the scope, and an agent's own memories are those
without a user. A query that says nothing but the name ("Who is Alex?") is searched as asked.
The speaker and graph signals still read the query as asked.

The stated names of a scope id are read once (the best full-text matches of "name" in its
memories: one `candidates` and one `get_many` call, and `profile` with graph memory) and then
remembered (`queries.ScopeNames`); a name stated later is learnt from the results of the first
search that returns its memory, and that search runs again (once) if its query uses the name.

A query that asks what to avoid is answered by restrictions, not likings: its best candidates
take the recipe's `stance` (see `core.scoring`), read from their loaded texts.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engram.core.filters import And, Cond, Field, Node, Not, scope_of
from engram.core.scoring import (
    DEFAULT_RECIPE,
    RECIPES,
    Recipe,
    Scores,
    fuse,
    rounded,
    smooth,
    take_stance,
)
from engram.core.text import (
    Name,
    asks_to_avoid,
    names_of,
    query_terms,
    replace_spans,
    stance,
    stated_name,
    subject_spans,
)
from engram.errors import FilterError, ValidationError
from engram.pipeline.context import Context
from engram.pipeline.items import memory_item
from engram.providers.llm.base import Usage
from engram.store.base import Candidate, MemoryRecord


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


@dataclass(frozen=True, slots=True)
class Phrasing:
    """The query as searched: the text embedded and the full-text terms."""

    embedded: str
    terms: list[str]


RERANK_POOL = 20  # fused candidates the reranker looks at (at least top_k)
STAND_IN = {"user_id": "the user", "agent_id": "the assistant"}  # for a subject's name
NAME_LOOKUP = 32  # best full-text matches of "name" read to find a scope id's stated names


async def _rerank(
    ctx: Context,
    query: str,
    winners: list[tuple[Candidate, Scores]],
    records: dict[str, MemoryRecord],
) -> list[tuple[Candidate, Scores]]:
    """The reranker's relevance becomes the score (the fused one stays in `explain`). It sees
    each memory as `[date] speaker: text` (the speaker when the memory has one): "when" and
    "who said" questions need them."""
    assert ctx.reranker is not None
    texts = [_for_reranker(records[c.memory_id]) for c, _ in winners]
    relevance = await ctx.reranker.scores(query, texts, Usage())
    for (_, score), value in zip(winners, relevance, strict=True):
        score.parts["fused"] = score.total
        score.parts["rerank"] = value
        score.total = min(1.0, max(0.0, value))
    return sorted(winners, key=lambda pair: -pair[1].total)


def _for_reranker(record: MemoryRecord) -> str:
    speaker = f"{record.actor_id}: " if record.actor_id else ""
    return f"[{record.created_at[:10]}] {speaker}{record.memory}"


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


async def run_search(ctx: Context, request: SearchRequest) -> dict[str, Any]:
    names = await subject_names(ctx, request)
    out, learnt = await _search(ctx, request, names)
    if learnt:  # the results state a name the query uses: search again without it
        out, _ = await _search(ctx, request, await subject_names(ctx, request))
    return out


async def _search(
    ctx: Context, request: SearchRequest, names: list[Name] | None
) -> tuple[dict[str, Any], bool]:
    """The results, and whether they taught a new name of the subject that the query uses."""
    found, linked, relations = await _gather(ctx, request, phrase(request.query, names or []))
    scores = _score(ctx, request, found, linked)
    ranked = sorted(zip(found, scores, strict=True), key=lambda pair: -pair[1].total)
    reranking = request.rerank and ctx.reranker is not None
    avoiding = request.recipe.stance > 0 and asks_to_avoid(request.query)
    winners = ranked[: max(request.top_k, RERANK_POOL) if reranking or avoiding else request.top_k]
    records = await ctx.store.get_many([c.memory_id for c, _ in winners])
    winners = [(c, s) for c, s in winners if c.memory_id in records]  # not deleted meanwhile
    if avoiding:
        stances = [_stance(records[c.memory_id]) for c, _ in winners]
        take_stance([s for _, s in winners], stances, request.recipe)
        winners.sort(key=lambda pair: -pair[1].total)
    if request.threshold is not None:
        winners = [(c, s) for c, s in winners if s.total >= request.threshold]
    if names is not None and _learn(ctx, request, list(records.values())):
        return {}, True
    if reranking:
        winners = await _rerank(ctx, request.query, winners, records)
    results = []
    for candidate, score in winners[: request.top_k]:
        item = memory_item(records[candidate.memory_id])
        item["score"] = round(score.total, 6)
        if request.explain:
            item["explain"] = {"recipe": request.recipe.name, **rounded(score.parts)}
        results.append(item)
    out: dict[str, Any] = {"results": results}
    if request.rerank and ctx.reranker is None:
        out["warnings"] = ["rerank was asked for but no reranker is configured; results are fused"]
    if request.graph:
        out["relations"] = relations
    return out, False


def phrase(query: str, names: list[Name]) -> Phrasing:
    """The query with the subject's names left out: its terms lose them, its embedded text has
    a stand-in. As asked when it names nobody, or says nothing else."""
    spans = subject_spans(query, names) if names else []
    if spans:
        terms = query_terms(replace_spans(query, spans, dict.fromkeys(STAND_IN, " ")))
        if terms:
            return Phrasing(replace_spans(query, spans, STAND_IN), terms)
    return Phrasing(query, query_terms(query))


async def subject_names(ctx: Context, request: SearchRequest) -> list[Name] | None:
    """The names of the scope's user and agent: their ids and what their memories state (None
    when the request searches the query as written)."""
    scope = _scope(request)
    if scope is None:
        return None
    names: list[Name] = []
    for field in STAND_IN:
        if field not in scope:
            continue
        key = (field, scope[field])
        stated = ctx.queries.names.get(key)
        if stated is None:
            stated = await _stated_names(ctx, key, graph=request.graph)
            ctx.queries.names.put(key, stated)
        names += names_of(scope[field], stated=False, of=field)
        for name in stated:
            names += names_of(name, stated=True, of=field)
    return names


async def _stated_names(ctx: Context, key: tuple[str, str], *, graph: bool) -> tuple[str, ...]:
    """What the id's own memories (and profile) say its name is."""
    field, value = key
    found = await ctx.store.candidates(
        None, ["name"], _own_memories(key), today=ctx.today(), n_vector=0,
        n_keyword=NAME_LOOKUP,
    )  # fmt: skip
    records = await ctx.store.get_many([c.memory_id for c in found if c.actor_id is None])
    names = {n: None for r in records.values() if (n := stated_name(r.memory))}
    if graph and field == "user_id":
        profiled = (await ctx.store.profile({field: value})).get("name", {}).get("value")
        if isinstance(profiled, str) and profiled.strip():
            names[profiled.strip()] = None
    return tuple(names)


def _stance(record: MemoryRecord) -> float:
    """A memory's stance (`core.text.stance`); none for a turn a named speaker said: it is a
    line of a conversation, not a statement of what the scope's subject likes or cannot have."""
    return 0.0 if record.actor_id is not None else stance(record.memory)


def _scope(request: SearchRequest) -> dict[str, str] | None:
    if not request.subject:
        return None
    try:
        return scope_of(request.where)
    except FilterError:  # conflicting ids: nothing can match anyway
        return None


def _own_memories(key: tuple[str, str]) -> Node:
    """A user's memories (with any agent); an agent's own, those of no user."""
    field, value = key
    own = Cond(Field("text", field), "eq", value)
    if field == "user_id":
        return own
    return And((own, Not(Cond(Field("text", "user_id"), "exists", None))))


def _learn(ctx: Context, request: SearchRequest, records: list[MemoryRecord]) -> bool:
    """Learn the names the records state for the scope's ids; whether the query uses a new one."""
    scope = _scope(request) or {}
    learnt = False
    for record in records:
        if record.actor_id is not None or "name" not in record.memory.casefold():
            continue
        name = stated_name(record.memory)
        key = _owner(record, scope)
        if name is None or key is None or not ctx.queries.names.learn(key, name):
            continue
        learnt |= bool(subject_spans(request.query, names_of(name, stated=True, of=key[0])))
    return learnt


def _owner(record: MemoryRecord, scope: dict[str, str]) -> tuple[str, str] | None:
    """Whose memory the record is, among the scope's user and agent."""
    if "user_id" in scope and record.user_id == scope["user_id"]:
        return ("user_id", scope["user_id"])
    if "agent_id" in scope and record.agent_id == scope["agent_id"] and record.user_id is None:
        return ("agent_id", scope["agent_id"])
    return None


async def _gather(
    ctx: Context, request: SearchRequest, phrasing: Phrasing
) -> tuple[list[Candidate], dict[str, float], list[dict[str, str]]]:
    """Candidates from every retriever. The full-text query and the graph lookup need no
    embedding: they run in the store's threads while the query is embedded. When the query's
    vector is remembered, the full-text query runs in the same store call as the rest."""
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
            ctx.store.neighbourhood(scope_of(request.where), request.query)
        )
    try:
        if recipe.uses("vector") and vector is None:
            await asyncio.sleep(0)  # let those tasks hand their work to the threads first
            vector = await ctx.embed_query(phrasing.embedded, Usage())
        linked, relations = await graph if graph else ({}, [])
        matches = await keyword if keyword else None
    except BaseException:
        for task in (keyword, graph):
            if task is not None:
                task.cancel()
        raise
    found = await ctx.store.candidates(
        vector, terms, request.where, today=today,
        n_vector=(request.top_k if recipe.name == "vector" else pool) if vector is not None else 0,
        n_keyword=pool if terms else 0, show_expired=request.show_expired,
        extra_ids=list(linked) if recipe.uses("graph") else [], keyword=matches,
    )  # fmt: skip
    return found, linked, relations


def _score(
    ctx: Context, request: SearchRequest, found: list[Candidate], linked: dict[str, float]
) -> list[Scores]:
    """Every candidate's components, fused by the recipe, then lifted by its neighbours."""
    now = ctx.clock()
    speaker = named_speaker(request.query, {c.actor_id for c in found if c.actor_id})
    scores = [
        Scores(
            vector=c.vector,
            keyword_raw=c.keyword,
            age_days=(now - datetime.fromisoformat(c.created_at)).total_seconds() / 86400,
            feedback=c.feedback,
            graph=linked.get(c.memory_id, 0.0),
            speaker=1.0 if speaker is not None and c.actor_id == speaker else 0.0,
        )
        for c in found
    ]
    fuse(scores, request.recipe)
    position = {c.memory_id: i for i, c in enumerate(found)}
    adjacent = [[position[n] for n in c.neighbours if n in position] for c in found]
    smooth(scores, adjacent, request.recipe)
    return scores
