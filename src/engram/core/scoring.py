"""Fusing search signals into one score in [0, 1], per named recipe.

Each candidate has, per component, a normalised score in [0, 1]:
- `vector`: cosine similarity, clipped to [0, 1] (absolute: comparable across queries);
- `keyword`: BM25, divided by the best BM25 among this query's candidates (relative);
- `graph`: how closely the memory is linked to entities named in the query (1 direct, 0.5 one hop);
- `speaker`: 1 when the memory was said by the one speaker (`actor_id`) the query names
  ("what does Maria think of ..." favours what Maria said);
- `recency`: 0.5 ** (age / half_life), 1 for a memory created now, 0.5 one half-life later;
- `detail`: how much the memory states, ln(1 + w) / ln(1 + DETAIL_WORDS) for its w distinct
  content words (`core.text.content_words`), at most 1. Both retrievers rank by topic, and a
  short line that only echoes it ("How was the trip?", "Thanks, Maria!") can outrank the one that
  tells what happened; of two equally close memories, the one that says more is likelier to hold
  the answer. A prior that does not depend on the query, as recency: at `hybrid`'s 0.2, a memory
  of one content word scores 0.15 below one of 20, so it needs that much more of the other
  components to rank above it (and reaches at most 0.85);
and `feedback` in [-1, 1] (0 neutral). The fused score is
`clip(sum(weight[c] * score[c]) + feedback_weight * feedback, 0, 1)`; the positive weights of a
recipe sum to 1, so a `threshold` in [0, 1] means the same thing in every recipe. Then, for
conversation turns, `neighbours` (a recipe weight) adds that share of the best adjacent turn's
score (a turn next to a relevant one is often part of the answer), clipped to 1 again.

A query that asks what to avoid ("what should I not cook for Alex?", `core.text.asks_to_avoid`)
is answered by what the user cannot have or does not like, while both retrievers rank by topic:
"Loves grilled sardines" is as close to it as "Is allergic to peanuts". So for such a query the
best fused candidates (at least 20) have `stance` (a recipe weight) added for a memory stating a
restriction and taken off for one stating a liking (`core.text.stance`, shown in `explain`),
clipped to [0, 1]. Other queries are not touched.

A query that asks for a place or a named work ("Which city have both Jean and John visited?",
"What book was John reading?", `core.answers.asks_for_name`) is answered by a memory that names
one, while both retrievers rank by topic: "Took a short trip last week to Rome" is no closer to
it than "Still working on my biz". So for such a query the candidates that name something (in
their first `core.text.CONTENT_CHARS` characters: `core.answers.names_something`) have `names`
(a recipe weight) added last, shown in `explain` as `names: 1`, clipped to 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

COMPONENTS = ("vector", "keyword", "graph", "speaker", "recency", "detail")
DETAIL_WORDS = 20  # content words at which `detail` reaches 1


@dataclass(frozen=True, slots=True)
class Recipe:
    name: str
    weights: dict[str, float]
    feedback: float = 0.1  # weight of the feedback signal
    neighbours: float = 0.0  # share of the best adjacent turn's score added to a turn's
    stance: float = 0.0  # added for a restriction, taken off for a liking, when asked to avoid
    names: float = 0.0  # added for a memory that names something, when asked for a name
    time: float = 0.0  # added x a memory's place in the period the query asks about
    half_life_days: float = 124.8  # recency halves in this time (an e-fold of 180 days)
    candidates: int = 50  # taken from each retriever before fusion
    decompose: bool = False  # the LLM splits the query; each part is searched (llm_search)
    llm_rerank: bool = False  # the LLM reranks the best fused results (llm_search)

    def uses(self, component: str) -> bool:
        return self.weights.get(component, 0.0) > 0


# `hybrid`'s weights are the ones leave-one-conversation-out cross-validation on LoCoMo dev chose
# for verbatim turns and offline-extracted memories together (bench/locomo/cv.py --mode both,
# grid coarse-time-tiebreak; four folds of five chose them, the fifth the same but recency):
# vector 0.6, keyword 0.235, speaker 0.16, recency 0.005. Recency is a tie-breaker: LoCoMo's
# questions never prefer newer memories, but of two equal ones the newer comes first. Then
# `detail` 0.2, its share taken from the others alike (grid detail: every fold chose 0.2):
# turns, all@10 0.733 in-sample (0.720 without it), 0.724-0.733 held out; extracted memories
# 0.604-0.607 held out (bench/README.md). `names` 0.1 (grid names: the folds chose 0.1-0.15;
# grid detail-names: four of five chose detail 0.2 beside it or 0.15): turns 0.734-0.741 held
# out (multi-hop 0.296-0.310), extracted memories 0.636-0.639.
_HYBRID = {"vector": 0.48, "keyword": 0.188, "speaker": 0.128, "recency": 0.004, "detail": 0.2}
RECIPES: dict[str, Recipe] = {
    "vector": Recipe("vector", {"vector": 1.0}, feedback=0.0),
    "keyword": Recipe("keyword", {"keyword": 1.0}, feedback=0.0),
    "hybrid": Recipe("hybrid", _HYBRID, neighbours=0.15, stance=0.3, time=0.2, names=0.1),
    "hybrid_llm": Recipe(
        "hybrid_llm",
        _HYBRID,
        neighbours=0.15,
        stance=0.3,
        time=0.2,
        names=0.1,
        decompose=True,
        llm_rerank=True,
    ),
    "hybrid_graph": Recipe(  # `hybrid`'s, about x 0.91, and the graph
        "hybrid_graph",
        {
            "vector": 0.437,
            "keyword": 0.171,
            "graph": 0.09,
            "speaker": 0.116,
            "recency": 0.004,
            "detail": 0.182,
        },
        neighbours=0.15,
        stance=0.3,
        time=0.2,
        names=0.1,
    ),
}
DEFAULT_RECIPE = "hybrid"


@dataclass(slots=True)
class Scores:
    vector: float = 0.0
    keyword_raw: float = 0.0  # BM25 (higher is better), normalised in fuse()
    graph: float = 0.0
    speaker: float = 0.0
    age_days: float = 0.0
    words: int = 0  # distinct content words: `detail`
    feedback: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    total: float = 0.0


def smooth(candidates: list[Scores], neighbours: list[list[int]], recipe: Recipe) -> None:
    """Add `recipe.neighbours` x the best adjacent candidate's score (indexes into the list)."""
    if not recipe.neighbours:
        return
    base = [c.total for c in candidates]
    for c, adjacent in zip(candidates, neighbours, strict=True):
        best = max((base[i] for i in adjacent), default=0.0)
        if best > 0:
            c.parts["neighbours"] = best
            c.total = min(1.0, c.total + recipe.neighbours * best)


def lift_in_time(candidates: list[Scores], places: list[float], recipe: Recipe) -> None:
    """Add `recipe.time` x each candidate's place in the query's period (`core.periods`: 1 in
    it, less just after it, 0 otherwise)."""
    for c, value in zip(candidates, places, strict=True):
        c.parts["time"] = value
        if value:
            c.total = min(1.0, c.total + recipe.time * value)


def lift_named(candidates: list[Scores], named: list[bool], recipe: Recipe) -> None:
    """Add `recipe.names` to each candidate that names something (`core.answers`)."""
    for c, value in zip(candidates, named, strict=True):
        if value:
            c.parts["names"] = 1.0
            c.total = min(1.0, c.total + recipe.names)


def take_stance(candidates: list[Scores], stances: list[float], recipe: Recipe) -> None:
    """Add `recipe.stance` x each candidate's stance (+1 restriction, -1 liking, 0 neither)."""
    for c, value in zip(candidates, stances, strict=True):
        if value:
            c.parts["stance"] = value
            c.total = min(1.0, max(0.0, c.total + recipe.stance * value))


def fuse(candidates: list[Scores], recipe: Recipe) -> None:
    """Fill `parts` (the components the recipe uses, unrounded) and `total` of every candidate.
    One pass of plain arithmetic: it runs for every candidate of every search."""
    weight = recipe.weights.get
    w_vector, w_keyword, w_graph, w_speaker, w_recency, w_detail = (
        weight(n, 0.0) for n in COMPONENTS
    )
    best_keyword = max((c.keyword_raw for c in candidates), default=0.0)
    per_keyword = 1.0 / best_keyword if best_keyword > 0 else 0.0
    decay = -math.log(2) / recipe.half_life_days
    used = [n for n in COMPONENTS if recipe.uses(n)]
    per_word = 1.0 / math.log1p(DETAIL_WORDS)
    feedback_weight = recipe.feedback
    for c in candidates:
        vector = min(1.0, max(0.0, c.vector))
        keyword = c.keyword_raw * per_keyword
        graph = min(1.0, max(0.0, c.graph))
        speaker = min(1.0, max(0.0, c.speaker))
        recency = math.exp(max(0.0, c.age_days) * decay)
        feedback = max(-1.0, min(1.0, c.feedback))
        detail = min(1.0, math.log1p(c.words) * per_word) if w_detail else 0.0
        total = (
            w_vector * vector + w_keyword * keyword + w_graph * graph + w_speaker * speaker
            + w_recency * recency + w_detail * detail + feedback_weight * feedback
        )  # fmt: skip
        values = (vector, keyword, graph, speaker, recency, detail)
        c.parts = {n: v for n, v in zip(COMPONENTS, values, strict=True) if n in used}
        if feedback_weight:
            c.parts["feedback"] = c.feedback
        c.total = min(1.0, max(0.0, total))


def rounded(parts: dict[str, float]) -> dict[str, float]:
    """Components as `explain` shows them (6 decimals)."""
    return {name: round(value, 6) for name, value in parts.items()}
