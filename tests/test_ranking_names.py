"""A query that asks for a place or a named work lifts the memories that name one (issue 18).

The rules on their own (`core.answers`), the lift (`core.scoring.lift_named`), then search on
both stores: `explain` shows `names`, the lifted memory comes first, and a memory's score still
does not depend on how many results are asked for.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from engram import Memory
from engram.core.answers import asks_for_name, names_something
from engram.core.scoring import RECIPES, Scores, lift_named


@pytest.mark.parametrize(
    "query",
    [
        "Where did Caroline move from 4 years ago?",
        "Which city have both Jean and John visited?",
        "What European countries has Maria been to?",
        "In which state did they vacation?",
        "What book was John reading during his recovery?",
        "What is Zoe's horse called?",
        "What is the name of Kenji's band?",
        "Which restaurant does Ana recommend?",
        "What is my dog called?",
        "What's the name of the user's cat?",
        "So, where did we go last summer?",
        "What board games has Nate played?",
    ],
)
def test_questions_that_ask_for_a_name(query: str) -> None:
    assert asks_for_name(query)


@pytest.mark.parametrize(
    "query",
    [
        "Would Linh enjoy a ski trip?",  # yes or no
        "Should I book Sam a flight to Rome?",
        "How does Nguyen get around the city?",  # a manner
        "Why did Maria leave the band?",  # a reason
        "When did John visit the museum?",  # a time
        "Who wrote the book Tim loves?",  # a person
        "What does Melanie like to paint?",  # no kind of named thing
        "What activities has Melanie done with her family?",
        "What time does the store open?",  # the kind is not what is asked for
        "What is the state of the project?",
        "What did she say about the game?",
        "",
    ],
)
def test_questions_that_do_not(query: str) -> None:
    assert not asks_for_name(query)


@pytest.mark.parametrize(
    "memory",
    [
        "Took a short trip last week to Rome to clear my mind.",
        "I got the idea from that trip to England a few years ago",
        "Ana moved from Sweden four years ago",
        "I visited Paris with my sister",
        'I just finished "Charlotte\'s Web" with the kids',
        "John signed with the Minnesota Wolves",
        "We queued for hours at the Star Wars exhibition",
        "Lives in the Netherlands",
        "We moved to Zürich last year",
        "She works for a start-up in the USA now",
        "I'm reading 'The Name of the Wind' again",
        "Our trip to the Great Barrier Reef was amazing",
        "Has a dog called Biscuit",
        "We've watched 'Frozen' twice",  # the apostrophe before is not a quote
        "Just finished \u2018Dune\u2019",
        "Moved to NYC in 2019",  # capitals after a place word
    ],
)
def test_memories_that_name_something(memory: str) -> None:
    assert names_something(memory, speakers={"Jean", "John"})


@pytest.mark.parametrize(
    "memory",
    [
        "Still working on my biz, it keeps me busy",
        "I said that to Jean yesterday",  # a speaker
        "We went to the beach in June",  # a month
        "See you on Friday!",  # a weekday
        "Paris is lovely in the spring",  # the start of the text: a word as any other there
        "Great news. Really happy for you",  # the start of a sentence
        "I Love it, I'm so happy, I'll go again",  # "I"
        "Honestly? Best day ever: Loved it",
        "Went to bed early\nFeeling Great today",  # a line's first word
        "- Likes Coffee\n- Hates Tea",  # an item's
        "## Meeting Notes\nDiscussed the budget",
        "Best day ever \U0001f60d Loved It",
        "OMG I LOVE IT SO MUCH",
        "Talked to Mom about it",
        "I said that to John's sister",  # a speaker's
        "Had coffee with O'Brien, she's doing well",
        "We went to the beach in Aug",
        "Here's our latest painting [image: a photo of a sunset over Lake Tahoe]",  # attached
        "",
    ],
)
def test_memories_that_do_not(memory: str) -> None:
    assert not names_something(memory, speakers={"Jean", "John"})


def test_speakers_are_not_names_whatever_their_case() -> None:
    assert not names_something("I said that to Jean yesterday", speakers=["jean"])
    assert names_something("I said that to Jean yesterday", speakers={"John"})
    assert names_something("I said that to Jean yesterday")


def test_the_lift_is_added_last_and_bounded() -> None:
    recipe = RECIPES["hybrid"]
    a, b, c = Scores(total=0.5), Scores(total=0.5), Scores(total=0.97)
    lift_named([a, b, c], [True, False, True], recipe)
    assert a.total == pytest.approx(0.5 + recipe.names) and a.parts["names"] == 1.0
    assert b.total == 0.5 and "names" not in b.parts
    assert c.total == 1.0  # clipped
    assert all(RECIPES[n].names > 0 for n in ("hybrid", "hybrid_graph", "hybrid_llm"))
    assert RECIPES["vector"].names == 0 and RECIPES["keyword"].names == 0


def chat(memory: Memory) -> None:
    lines = [
        ("Jean", "Trips are the best way to clear your mind, I always come back happier."),
        ("John", "Took a short trip last week to Rome to clear my mind."),
        ("Jean", "A trip to clear the mind sounds perfect, which city is next on your list?"),
        ("John", "No idea yet, I just want another trip to clear my mind soon."),
    ]
    for speaker, text in lines:
        memory.add({"role": "user", "name": speaker, "content": text}, user_id="chat",
                   infer=False)  # fmt: skip


def test_search_lifts_the_memory_that_names_a_place(
    memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat(memory)
    query = "Which city did John visit to clear his mind?"
    asked = memory.search(query, user_id="chat", explain=True)["results"]
    rome = next(r for r in asked if "Rome" in r["memory"])
    assert rome["explain"]["names"] == 1.0
    assert all("names" not in r["explain"] for r in asked if r is not rome)
    monkeypatch.setitem(RECIPES, "unnamed", replace(RECIPES["hybrid"], name="unnamed", names=0.0))
    unlifted = memory.search(query, user_id="chat", recipe="unnamed")["results"]
    before = {r["id"]: r["score"] for r in unlifted}
    assert rome["score"] == pytest.approx(before[rome["id"]] + RECIPES["hybrid"].names, abs=2e-6)
    assert all(r["score"] == before[r["id"]] for r in asked if r is not rome)
    ids = [r["id"] for r in unlifted]
    assert [r["id"] for r in asked].index(rome["id"]) < ids.index(rome["id"])  # it moved up
    for recipe in ("vector", "keyword"):  # no lift in the single retrievers
        plain = memory.search(query, user_id="chat", explain=True, recipe=recipe)["results"]
        assert all("names" not in r["explain"] for r in plain)
    other = memory.search("How did John clear his mind?", user_id="chat", explain=True)
    assert all("names" not in r["explain"] for r in other["results"])  # not asked for a name


def test_a_lifted_score_does_not_depend_on_how_many_results_are_asked_for(
    memory: Memory,
) -> None:
    chat(memory)
    for i in range(40):
        memory.add({"role": "user", "name": ("Jean", "John")[i % 2],
                    "content": f"Another trip note {i}: the city was calm, then we flew to Oslo"
                    if i % 5 == 0 else f"Another trip note {i}: the city was calm"},
                   user_id="chat", infer=False)  # fmt: skip
    query = "Which city did John visit on his trip?"
    found = {k: memory.search(query, user_id="chat", top_k=k)["results"] for k in (3, 20, 100)}
    scores = {k: {r["id"]: r["score"] for r in hits} for k, hits in found.items()}
    for k in found:
        for other in found:
            assert all(scores[other][i] == s for i, s in scores[k].items() if i in scores[other])
    assert [r["id"] for r in found[100][:3]] == [r["id"] for r in found[3]]
