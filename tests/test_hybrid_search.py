"""Hybrid search: every retriever contributes candidates, fusion is documented and bounded."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engram import AsyncMemory, Memory, ValidationError
from engram.core.scoring import DETAIL_WORDS, RECIPES, Scores, fuse
from engram.core.text import CONTENT_CHARS, content_words
from engram.providers.embedders.hashing import HashingEmbedder
from engram.store.sqlite.store import SQLiteStore


def test_fusion_is_bounded_and_weighted() -> None:
    a = Scores(vector=0.9, keyword_raw=4.0, age_days=0)
    b = Scores(vector=0.2, keyword_raw=8.0, age_days=365)
    c = Scores(vector=-0.3, keyword_raw=0.0, age_days=0, feedback=-1.0)
    fuse([a, b, c], RECIPES["hybrid"])
    w = RECIPES["hybrid"].weights
    assert a.parts["keyword"] == 0.5
    assert b.parts["keyword"] == 1.0
    assert a.total == pytest.approx(
        w["vector"] * 0.9 + w["keyword"] * 0.5 + w.get("recency", 0.0) * 1.0
    )
    assert all(0.0 <= s.total <= 1.0 for s in (a, b, c))
    assert c.total == 0.0  # negative feedback cannot push below 0
    assert sum(v for v in RECIPES["hybrid_graph"].weights.values()) == pytest.approx(1.0)


def test_keyword_only_hits_are_candidates(memory: Memory) -> None:
    memory.add("Passport number is X99-123-ZQ", user_id="a", infer=False)
    for i in range(30):
        memory.add(f"Travel note {i}: went somewhere nice", user_id="a", infer=False)
    hits = memory.search("X99-123-ZQ", user_id="a", top_k=3, explain=True)["results"]
    assert hits[0]["memory"] == "Passport number is X99-123-ZQ"
    assert hits[0]["explain"]["keyword"] == 1.0
    keyword = memory.search("X99-123-ZQ", user_id="a", top_k=3, recipe="keyword")["results"]
    assert [h["memory"] for h in keyword] == ["Passport number is X99-123-ZQ"]


def test_speaker_names_are_searchable(memory: Memory) -> None:
    memory.add(
        {"role": "user", "content": "I adopted a dog last week", "name": "Caroline"},
        user_id="a",
        infer=False,
    )
    memory.add(
        {"role": "user", "content": "I adopted a cat last week", "name": "Melanie"},
        user_id="a",
        infer=False,
    )
    hits = memory.search("What did Caroline adopt?", user_id="a", top_k=1, recipe="keyword")[
        "results"
    ]
    assert hits[0]["actor_id"] == "Caroline"


def test_keyword_search_flag_and_recipes(memory: Memory) -> None:
    memory.add("Enjoys kayaking", user_id="a", infer=False)
    vector = memory.search("kayaking", user_id="a", keyword_search=False, explain=True)["results"][
        0
    ]
    hybrid = memory.search("kayaking", user_id="a", keyword_search=True, explain=True)["results"][0]
    assert vector["explain"]["recipe"] == "vector"
    assert hybrid["explain"]["recipe"] == "hybrid"
    with pytest.raises(ValidationError, match="recipe"):
        memory.search("x", user_id="a", recipe="magic")
    with pytest.raises(ValidationError, match="not both"):
        memory.search("x", user_id="a", recipe="vector", keyword_search=True)


def test_filters_scope_and_expiry_apply_to_keyword_hits(db_path: Path) -> None:
    clock = lambda: datetime(2026, 6, 1, tzinfo=UTC)  # noqa: E731
    with Memory(embedder=HashingEmbedder(64), store=SQLiteStore(db_path), clock=clock) as m:
        m.add("zebra crossing report", user_id="a", infer=False, metadata={"kind": "x"})
        m.add("zebra crossing report", user_id="b", infer=False)
        m.add("zebra crossing old", user_id="a", infer=False, expiration_date="2026-01-01")
        hits = m.search("zebra", user_id="a", recipe="keyword")["results"]
        assert [h["memory"] for h in hits] == ["zebra crossing report"]
        assert (
            len(m.search("zebra", user_id="a", recipe="keyword", show_expired=True)["results"]) == 2
        )
        assert (
            m.search("zebra", filters={"user_id": "a", "kind": "y"}, recipe="keyword")["results"]
            == []
        )


def test_keyword_search_is_confined_to_the_scope_inside_the_index(db_path: Path) -> None:
    """The scope's ids are words of the full-text index (any characters, as hex): the MATCH
    itself keeps other scopes out, for each combination of ids, and a query word cannot match
    those words."""
    from engram.store.sqlite.keyword import scope_word

    odd = 'Zoë"Q"東京-OR-*'
    long = "é" * 255
    with Memory(embedder=HashingEmbedder(64), store=SQLiteStore(db_path)) as m:
        m.add("kayak trip notes", user_id=odd, infer=False)
        m.add("kayak trip plans", user_id=odd, agent_id="planner", infer=False)
        m.add("kayak trip diary", user_id="zoe", infer=False)
        m.add("kayak trip log", user_id=long, infer=False)
        m.add("kayak repair", agent_id="planner", run_id="r-1", infer=False)

        def texts(**ids: str) -> list[str]:
            hits = m.search("kayak", filters=ids, recipe="keyword", top_k=10)["results"]
            return sorted(h["memory"] for h in hits)

        assert texts(user_id=odd) == ["kayak trip notes", "kayak trip plans"]
        assert texts(user_id=odd, agent_id="planner") == ["kayak trip plans"]
        assert texts(agent_id="planner") == ["kayak repair", "kayak trip plans"]
        assert texts(agent_id="planner", run_id="r-1") == ["kayak repair"]
        assert texts(user_id="zoe") == ["kayak trip diary"]
        assert texts(user_id=long) == ["kayak trip log"]
        assert texts(user_id="nobody") == []
        word = scope_word("user_id", "zoe")
        assert m.search(word, user_id="zoe", recipe="keyword")["results"] == []


def test_skipping_rows_with_only_common_terms_gives_the_same_best_matches(db_path: Path) -> None:
    """BM25 is computed only for rows with a rarer query term when the common terms' bound
    allows it: the best rows and their scores are those of reading every match."""
    import random
    import sqlite3

    from engram.store.sqlite import keyword

    rng = random.Random(7)
    words = [f"w{i}" for i in range(60)]
    weights = [1 / (i + 1) for i in range(len(words))]  # a few common words, many rare ones
    with Memory(embedder=HashingEmbedder(64), store=SQLiteStore(db_path)) as m:
        for user in ("a", "b"):
            texts = [
                " ".join(rng.choices(words, weights, k=rng.randint(3, 12))) for _ in range(600)
            ]
            m.add([{"role": "user", "content": t} for t in texts], user_id=user, infer=False)
    conn = sqlite3.connect(db_path)
    skipped = 0
    for _ in range(150):
        terms = rng.sample(words[:3], 1) + rng.sample(words[3:], rng.randint(1, 3))
        limit = rng.choice((5, 20, 60))
        scope = {"user_id": rng.choice(("a", "b"))}
        every = keyword._ranked(conn, keyword.expression(terms, scope), None, None)
        best = keyword.best_matches(conn, terms, scope, limit)
        skipped += keyword._best_past_common_terms(conn, terms, scope, limit) is not None
        assert [round(s, 9) for _, s in best] == [round(s, 9) for _, s in every[:limit]]
        ties = {rid for rid, s in every if s == every[min(limit, len(every)) - 1][1]}
        assert {r for r, _ in best} <= {r for r, _ in every[:limit]} | ties
    assert skipped > 20  # the shortcut was taken, and checked, many times


def test_a_remembered_query_vector_gives_the_same_answer(db_path: Path) -> None:
    """The first search of a text reads full-text matches while the text is embedded; a repeat
    (its vector remembered) reads them in the same store call as the rest: same results."""
    with Memory(embedder=HashingEmbedder(64), store=SQLiteStore(db_path)) as m:
        texts = [f"kayak trip {i} on the river" if i % 3 else f"river note {i}" for i in range(60)]
        m.add([{"role": "user", "content": t} for t in texts], user_id="a", infer=False,
              metadata={"kind": "x"})  # fmt: skip
        for filters in ({"user_id": "a"}, {"user_id": "a", "kind": "x"}):
            for recipe in ("hybrid", "keyword"):
                first = m.search("kayak river", filters=filters, recipe=recipe, explain=True)
                again = m.search("kayak river", filters=filters, recipe=recipe, explain=True)
                assert first == again
                assert len(first["results"]) == 20


def test_remembered_full_text_results_follow_every_change(db_path: Path) -> None:
    """A scope's full-text results are kept for a repeated query only while the database is
    unchanged: a write through this store, through another store on the same file (another
    connection, as another process would be) or an expiry date passing shows at once."""
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    with (
        Memory(
            embedder=HashingEmbedder(64), store=SQLiteStore(db_path), clock=lambda: clock[0]
        ) as a,
        Memory(embedder=HashingEmbedder(64), store=SQLiteStore(db_path)) as b,
    ):

        def found() -> list[str]:
            hits = a.search("kayak", user_id="u", recipe="keyword", top_k=10)["results"]
            return sorted(h["memory"] for h in hits)

        a.add("kayak one", user_id="u", infer=False, expiration_date="2026-01-02")
        assert found() == ["kayak one"]
        assert found() == ["kayak one"]  # the repeat is answered from the kept result
        b.add("kayak two", user_id="u", infer=False)
        assert found() == ["kayak one", "kayak two"]
        kept = a.get_all(user_id="u")["results"]
        a.update(next(m["id"] for m in kept if m["memory"] == "kayak two"), "canoe two")
        assert found() == ["kayak one"]
        clock[0] = datetime(2026, 1, 3, tzinfo=UTC)  # "kayak one" has expired
        assert found() == []
        b.add("kayak three", user_id="u", infer=False)
        b.delete_all(user_id="u")
        assert found() == []


def test_recency_breaks_ties_towards_newer(db_path: Path) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with Memory(
        embedder=HashingEmbedder(64), store=SQLiteStore(db_path), clock=lambda: now[0]
    ) as m:
        old = m.add("Favorite tea is oolong", user_id="a", infer=False)["results"][0]["id"]
        now[0] += timedelta(days=400)
        new = m.add("Favorite tea is oolong", user_id="a", infer=False)["results"][0]["id"]
        hits = m.search("favorite tea", user_id="a", explain=True)["results"]
        assert [h["id"] for h in hits] == [new, old]
        assert hits[0]["explain"]["recency"] > hits[1]["explain"]["recency"]
        plain = m.search("favorite tea", user_id="a", recipe="vector")["results"]
        assert [h["id"] for h in plain] == [new, old]  # an exact tie: the newer first


def test_of_two_equally_close_memories_the_one_that_states_more_is_first() -> None:
    recipe = RECIPES["hybrid"]
    echo = Scores(vector=0.5, keyword_raw=2.0, words=content_words("How was the hike?"))
    told = Scores(vector=0.5, keyword_raw=2.0,
                  words=content_words("We hiked the ridge trail, camped by a lake and saw a bear"))  # fmt: skip
    wordy = Scores(vector=0.5, keyword_raw=2.0, words=DETAIL_WORDS * 3)
    fuse([echo, told, wordy], recipe)
    assert echo.words == 1 and told.words == 7
    assert echo.parts["detail"] == pytest.approx(math.log(2) / math.log(1 + DETAIL_WORDS))
    assert told.parts["detail"] == pytest.approx(math.log(8) / math.log(1 + DETAIL_WORDS))
    assert wordy.parts["detail"] == 1.0  # it saturates
    assert echo.total < told.total < wordy.total
    gap = (told.parts["detail"] - echo.parts["detail"]) * recipe.weights["detail"]
    assert told.total - echo.total == pytest.approx(gap)
    plain = [Scores(vector=0.5, words=1), Scores(vector=0.5, words=20)]
    fuse(plain, RECIPES["vector"])
    assert plain[0].total == plain[1].total and "detail" not in plain[0].parts


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Thanks, see you!", 2),
        ("We hiked the ridge trail, camped by a lake and saw a bear", 7),
        ("我上周和孩子们去了长城，我们在那里野餐。", 8),  # noqa: RUF001 - a Chinese comma
        ("東京で新しい仕事を始めました。", 7),
        ("我爱Python和机器学习", 4),  # "python" apart from the Chinese around it
        ("ผมไปเที่ยวเชียงใหม่กับครอบครัว", 7),  # Thai, with its marks: a word per four
        ("", 0),
    ],
)
def test_what_a_memory_states_is_counted_in_any_script(text: str, words: int) -> None:
    assert content_words(text) == words


def test_each_store_counts_what_a_candidate_states(memory: Memory) -> None:
    """`explain` shows `detail` from the memory's own text on both stores; a long memory's
    words are counted in its first CONTENT_CHARS characters."""
    texts = [
        "Thanks, see you soon!",
        "Dana adopted a grey cat from the shelter on Elm Street last spring",
        " ".join(f"garden{i}" for i in range(400)),  # 400 distinct words over 3,000 characters
    ]
    for text in texts:
        memory.add(text, user_id="a", infer=False)
    hits = memory.search("garden cat shelter see", user_id="a", explain=True)["results"]
    detail = {h["memory"]: h["explain"]["detail"] for h in hits}
    for text in texts:
        words = content_words(text[:CONTENT_CHARS])
        expected = min(1.0, math.log1p(words) / math.log1p(DETAIL_WORDS))
        assert detail[text] == pytest.approx(expected, abs=1e-6)  # `explain` shows 6 decimals
    assert detail[texts[0]] < detail[texts[1]] < detail[texts[2]] == 1.0


def test_a_memorys_score_does_not_depend_on_how_many_results_are_asked_for(
    memory: Memory,
) -> None:
    """More results than the recipe's candidates widen the retrievers; what is read from the
    other candidates (neighbours, the speaker named) is read from those a search for fewer
    has, so a wider pool only adds candidates: mem0 1.x's default of 100 and 2.x's 20 give
    every memory the same score."""
    words = ["garden", "tomatoes", "basil", "hiking", "trail", "lake", "chess", "club", "jazz",
             "piano", "bakery", "bread", "Lisbon", "trip", "kayak", "river"]  # fmt: skip
    turns = []
    for i in range(160):
        a, b, c = words[i % 16], words[(i * 7) % 16], words[(i * 11) % 16]
        speaker = ("Ana", "Bo", "Cy")[i % 3]
        turns.append({"role": "user", "name": speaker, "content": f"{a} and {b}, then {c} {i}"})
    for i in range(0, 160, 8):  # conversations of 8 lines: each line has neighbours
        memory.add(turns[i : i + 8], user_id="u", infer=False)
    for query in ("What did Ana say about the garden and basil?", "jazz piano club", "Lisbon trip"):
        found = {k: memory.search(query, user_id="u", top_k=k, explain=True)["results"]
                 for k in (5, 20, 50, 100, 200)}  # fmt: skip
        scores = {k: {r["id"]: r["score"] for r in hits} for k, hits in found.items()}
        for k, hits in found.items():
            assert len(hits) == min(k, 160)
            assert [r["score"] for r in hits] == sorted((r["score"] for r in hits), reverse=True)
            for other in found:
                assert all(
                    scores[other][i] == s for i, s in scores[k].items() if i in scores[other]
                )
        assert [r["id"] for r in found[50][:20]] == [r["id"] for r in found[20]]
        wider = {r["id"] for r in found[200][:20]}  # it holds the 20's best, and maybe better
        assert all(r["id"] in wider for r in found[20] if r["score"] > found[200][19]["score"])
        assert any("neighbours" in r["explain"] for r in found[200])


def test_replies_are_embedded_with_the_turn_they_answer(memory: Memory) -> None:
    memory.add(
        [
            {"role": "user", "name": "Ann", "content": "Have you ever been skydiving?"},
            {"role": "user", "name": "Bob", "content": "Yes, twice last year!"},
            {"role": "user", "name": "Bob", "content": "Pottery classes start Monday."},
        ],
        user_id="a", infer=False,
    )  # fmt: skip
    hits = memory.search("skydiving", user_id="a", recipe="vector", explain=True)["results"]
    by_text = {h["memory"]: h["explain"]["vector"] for h in hits}
    assert by_text["Yes, twice last year!"] > 0.3  # found through the question it answers
    assert by_text["Pottery classes start Monday."] < 0.1  # same speaker: no context carried
    # the next add's first message is a reply to the scope's last saved message
    memory.add(
        {"role": "user", "name": "Ann", "content": "Cool, mine start Tuesday."},
        user_id="a",
        infer=False,
    )
    pottery = memory.search("pottery classes", user_id="a", recipe="vector", explain=True)[
        "results"
    ]
    assert {h["memory"] for h in pottery[:2]} == {
        "Pottery classes start Monday.",
        "Cool, mine start Tuesday.",
    }


def test_the_speaker_named_in_the_query_is_favoured(memory: Memory) -> None:
    memory.add(
        [
            {"role": "user", "name": "Caroline", "content": "I went hiking in the mountains"},
            {"role": "user", "name": "Melanie", "content": "I went hiking in the mountains too"},
        ],
        user_id="a", infer=False,
    )  # fmt: skip
    for name in ("Caroline", "Melanie"):
        hits = memory.search(f"Where did {name} go hiking?", user_id="a", explain=True)["results"]
        assert hits[0]["actor_id"] == name
        assert hits[0]["explain"]["speaker"] == 1.0
    both = memory.search("Did Caroline and Melanie hike?", user_id="a", explain=True)["results"]
    assert all(h["explain"]["speaker"] == 0.0 for h in both)  # two named: no preference


def test_feedback_is_a_ranking_signal(memory: Memory) -> None:
    import uuid

    from engram import NotFoundError

    first = memory.add("Prefers aisle seats on flights", user_id="a", infer=False)["results"][0][
        "id"
    ]
    second = memory.add("Prefers aisle seats on flights", user_id="a", infer=False)["results"][0][
        "id"
    ]
    assert memory.feedback(first, "VERY_NEGATIVE", feedback_reason="outdated") == {
        "id": first, "feedback": "VERY_NEGATIVE", "feedback_reason": "outdated",
    }  # fmt: skip
    hits = memory.search("aisle seats", user_id="a", explain=True)["results"]
    assert [h["id"] for h in hits] == [second, first]
    assert hits[1]["explain"]["feedback"] == -1.0
    memory.feedback(first, "POSITIVE")
    assert memory.search("aisle seats", user_id="a")["results"][0]["id"] == first
    memory.feedback(first, None)
    with pytest.raises(ValidationError):
        memory.feedback(first, "LOVE_IT")
    with pytest.raises(NotFoundError):
        memory.feedback(str(uuid.uuid4()), "POSITIVE")


def test_the_date_of_a_memory_is_searchable_in_words(memory: Memory) -> None:
    memory.add("Ran a half marathon", user_id="a", infer=False, timestamp="2023-07-09T10:00:00Z")
    memory.add("Ran a half marathon", user_id="a", infer=False, timestamp="2024-03-02T10:00:00Z")
    hits = memory.search("marathon in July 2023", user_id="a", recipe="keyword")["results"]
    assert hits[0]["created_at"].startswith("2023-07-09")


def test_a_turn_next_to_a_relevant_one_is_lifted(memory: Memory) -> None:
    memory.add(
        [
            {"role": "user", "name": "Ann", "content": "How was the trip to Kyoto?"},
            {"role": "user", "name": "Bob", "content": "Amazing, the temples were stunning."},
        ],
        user_id="a", infer=False,
    )  # fmt: skip
    memory.add({"role": "user", "name": "Bob", "content": "Temples in my town are boring."}, user_id="a",
               infer=False, timestamp="2020-01-01T00:00:00Z")  # another conversation, long ago  # fmt: skip
    hits = memory.search("temples on the Kyoto trip", user_id="a", explain=True)["results"]
    by_text = {h["memory"]: h["explain"] for h in hits}
    assert "neighbours" in by_text["Amazing, the temples were stunning."]
    assert "neighbours" not in by_text["Temples in my town are boring."]
    assert hits[0]["memory"] in (
        "How was the trip to Kyoto?",
        "Amazing, the temples were stunning.",
    )
    facts = memory.search("temples", user_id="a", recipe="vector", explain=True)["results"]
    assert all("neighbours" not in h["explain"] for h in facts)  # the recipe's weight is 0


async def test_a_failing_embedder_fails_the_search_cleanly(
    tmp_path: Path, fake_openai: object
) -> None:
    from engram import AsyncMemory, EmbeddingError
    from engram.providers._http import RetryPolicy
    from engram.providers.embedders.openai import OpenAIEmbedder
    from tests.fakes.openai_server import FakeOpenAI

    assert isinstance(fake_openai, FakeOpenAI)
    embedder = OpenAIEmbedder(base_url=fake_openai.base_url, api_key="test-key",
                              embedding_dims=fake_openai.dims, retry=RetryPolicy(max_retries=0))  # fmt: skip
    async with AsyncMemory(embedder=embedder, store=SQLiteStore(tmp_path / "e.db")) as memory:
        await memory.add("Likes kayaking", user_id="a", infer=False)
        fake_openai.fail(400)
        with pytest.raises(EmbeddingError):
            await memory.search("kayaking", user_id="a")
        found = await memory.search("kayaking", user_id="a")
        assert found["results"][0]["memory"] == "Likes kayaking"


async def test_bounded_keyword_reads_agree_with_reading_every_match(amemory: AsyncMemory) -> None:
    """A search reads a window of the best full-text matches, not all of them: a small scope in
    a large store still finds its own matches, and BM25 of rows past the window (brought by the
    vector side) is the same as when every match is read. (SQLite scores every match of a scope
    it holds in memory: the window only bounds the expiry checks there.)"""
    await _bounded_reads_agree(amemory, windowed=False)


async def test_fts5_reads_a_window_of_the_best_matches(tmp_path: Path) -> None:
    """The same with FTS5 ranking every scope (no text indexed in memory): it reads a window of
    the best matches and scores the others directly."""
    store = SQLiteStore(tmp_path / "fts.db", lexicon_budget=0)
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as memory:
        await _bounded_reads_agree(memory, windowed=True)


async def _bounded_reads_agree(amemory: AsyncMemory, windowed: bool) -> None:
    from engram.core.filters import parse_filters
    from engram.store.sqlite.keyword import KEYWORD_WINDOW

    big = [f"river walk {i} " + "stone " * (i % 7) for i in range(3 * KEYWORD_WINDOW)]
    await amemory.add([{"role": "user", "content": t} for t in big], user_id="big", infer=False)
    small = ["river", "river river boat", "a long note that mentions the river once"]
    await amemory.add([{"role": "user", "content": t} for t in small], user_id="small", infer=False)
    store, today = amemory.store, "2026-01-01"
    for user, want in (("small", 3), ("big", 10)):
        where = parse_filters({"user_id": user})
        window = await store.keyword_matches(["river"], where, today=today, want=want)
        every = await store.keyword_matches(["river"], where, today=today)
        assert list(window.scores)[:want] == list(every.scores)[:want]
        assert all(every.scores[rid] == score for rid, score in window.scores.items())
        assert window.complete == (user == "small" or not windowed)
    where = parse_filters({"user_id": "big"})
    vector = (await amemory.embedder.embed(["river stone"]))[0]
    found: dict[int | None, dict[str, float]] = {}
    for size in (10, None):
        matches = await store.keyword_matches(["river", "stone"], where, today=today, want=size)
        if size is None or windowed:  # (PostgreSQL may read the rarer term's rows only)
            assert matches.complete == (size is None)
        found[size] = {c.memory_id: c.keyword for c in await store.candidates(
            vector, ["river", "stone"], where, today=today, n_vector=300, n_keyword=10,
            keyword=matches)}  # fmt: skip
    assert len(found[10]) > 10 + 2 * KEYWORD_WINDOW // 3  # mostly brought by the vector side
    assert found[10] == found[None]


async def test_concurrent_queries_share_an_embedder_call_and_repeats_are_remembered(
    tmp_path: Path, fake_openai: object
) -> None:
    """Over real HTTP to an OpenAI-compatible embedder: searches that wait while a call runs go
    in the next call together, one failed call fails only its own searches, and a query asked
    again is not embedded again."""
    import asyncio

    from engram import EmbeddingError
    from engram.providers._http import RetryPolicy
    from engram.providers.embedders.openai import OpenAIEmbedder
    from tests.fakes.openai_server import FakeOpenAI

    assert isinstance(fake_openai, FakeOpenAI)
    embedder = OpenAIEmbedder(base_url=fake_openai.base_url, api_key="test-key",
                              embedding_dims=fake_openai.dims, retry=RetryPolicy(max_retries=0))  # fmt: skip
    async with AsyncMemory(embedder=embedder, store=SQLiteStore(tmp_path / "e.db")) as memory:
        await memory.add("Likes kayaking on the lake", user_id="a", infer=False)
        fake_openai.requests.clear()
        fake_openai.fail(500, delay=0.5)  # the first call is slow and fails
        queries = [f"kayaking question {i}" for i in range(6)]
        first = asyncio.ensure_future(memory.search(queries[0], user_id="a"))
        await asyncio.sleep(0.2)  # its call is running: the others wait for the next one
        answers = await asyncio.gather(
            *(memory.search(q, user_id="a") for q in queries[1:]), return_exceptions=True
        )
        with pytest.raises(EmbeddingError):
            await first
        calls = [r["json"]["input"] for r in fake_openai.requests]
        assert calls == [queries[:1], queries[1:]]
        assert all(
            not isinstance(a, BaseException)
            and a["results"][0]["memory"] == "Likes kayaking on the lake"
            for a in answers
        )
        fake_openai.requests.clear()
        again = [await memory.search(q, user_id="a") for q in queries[1:]]
        assert fake_openai.requests == []
        assert again == answers
        await memory.search(queries[0], user_id="a")  # the failed one was not remembered
        assert [r["json"]["input"] for r in fake_openai.requests] == [queries[:1]]


async def test_kept_term_counts_follow_the_store(db_path: Path) -> None:
    """MaxScore's per-term row counts are kept while the database is unchanged: a write (here,
    one that makes a rare term common) is seen by the next search, whose best matches are still
    those of reading every match."""
    import sqlite3

    from engram import AsyncMemory
    from engram.core.filters import parse_filters
    from engram.store.sqlite import keyword

    store = SQLiteStore(db_path, lexicon_budget=0)  # FTS5 ranks every scope
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as m:
        texts = [f"alpha common {i}" for i in range(300)] + [f"beta rare {i}" for i in range(5)]
        await m.add([{"role": "user", "content": t} for t in texts], user_id="u", infer=False)
        where, terms = parse_filters({"user_id": "u"}), ["alpha", "beta"]
        conn = sqlite3.connect(db_path)

        def exact(limit: int) -> list[float]:
            every = keyword._ranked(conn, keyword.expression(terms, {"user_id": "u"}), None, None)
            return [round(s, 9) for _, s in every[:limit]]

        for _ in range(2):  # the second time from the kept counts
            found = await store.keyword_matches(terms, where, today="2026-01-01", want=5)
            assert [round(s, 9) for s in list(found.scores.values())[:5]] == exact(5)
        assert store._fulltext._hits == {"alpha": 300, "beta": 5}
        await m.add([{"role": "user", "content": f"beta again {i}"} for i in range(400)],
                    user_id="u", infer=False)  # fmt: skip
        found = await store.keyword_matches(terms, where, today="2026-01-01", want=5)
        assert [round(s, 9) for s in list(found.scores.values())[:5]] == exact(5)
        assert store._fulltext._hits == {"alpha": 300, "beta": 405}
