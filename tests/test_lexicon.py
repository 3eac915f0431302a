"""The in-memory full-text index of searched scopes (store/sqlite/lexicon.py): it reads words as
the FTS5 table does, ranks as FTS5's BM25 does on a one-scope store, follows every write (this
process's, another connection's, text edited without a new vector), keeps each scope's statistics
to itself, and hands large scopes to FTS5 while it indexes them on the builder thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from engram import AsyncMemory
from engram.core.filters import parse_filters
from engram.providers.embedders.hashing import HashingEmbedder
from engram.store.sqlite import keyword, lexicon
from engram.store.sqlite.store import SQLiteStore

DATA = Path(__file__).parent / "data"
TODAY = "2026-01-01"
TEXTS = [
    "I love hiking in the mountains with my dog",
    "The dog's name is Rex, he loves running after balls",
    "Going to Paris next month for a conference on databases",
    "Mountains are beautiful in the winter, especially the Alps",
    "My sister lives in Paris near the river Seine",
    "Café crème in São Paulo: naïve résumé of the façade",
    "Running, runner, runs and ran: the stems of a word",
]


def _sentences() -> list[str]:
    found: list[str] = []
    for name in ("offline_conversations.jsonl", "offline_conversations_heldout.jsonl"):
        for line in (DATA / name).read_text().splitlines():
            for add in json.loads(line)["adds"]:
                found.extend(m["content"] for m in add["messages"])
    return found + TEXTS


def test_words_are_read_as_the_fts5_table_reads_them() -> None:
    """Tokens (folding, accents, splitting, Porter stems) against SQLite's own, row by row."""
    texts = _sentences()
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE f USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')"
    )
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(f, 'instance')")
    conn.executemany("INSERT INTO f (rowid, x) VALUES (?, ?)", list(enumerate(texts)))
    theirs: dict[int, list[tuple[int, str]]] = {}
    for term, doc, _, offset in conn.execute("SELECT term, doc, col, offset FROM v"):
        theirs.setdefault(doc, []).append((offset, term))
    same = sum(
        [t for _, t in sorted(theirs.get(i, []))] == lexicon.words(text)
        for i, text in enumerate(texts)
    )
    assert len(texts) > 250
    assert same >= 0.99 * len(texts), f"{len(texts) - same} of {len(texts)} rows read differently"
    assert lexicon.words("Café crème, São Paulo") == ["cafe", "creme", "sao", "paulo"]
    assert lexicon.words("runs running ran") == ["run", "run", "ran"]


async def _matches(store: SQLiteStore, terms: list[str], user: str) -> dict[int, float]:
    found = await store.keyword_matches(terms, parse_filters({"user_id": user}), today=TODAY)
    return found.scores


async def test_bm25_is_fts5s_on_a_one_scope_store(tmp_path: Path) -> None:
    """Same rows, same order, same scores (to float rounding) as FTS5's bm25() when the scope is
    the whole store: a speaker (weight 0.5) and the date in words count as in FTS5."""
    scores = []
    for budget in (0, lexicon.BUDGET):
        store = SQLiteStore(tmp_path / f"s{budget}.db", lexicon_budget=budget)
        async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as m:
            messages = [
                {"role": "user", "content": t, **({"name": "Rex Dog"} if "dog" in t else {})}
                for t in TEXTS * 3
            ]
            await m.add(messages, user_id="u", infer=False, timestamp="2025-03-08T10:00:00Z")
            scores.append(await _matches(store, ["dog", "paris", "march", "running"], "u"))
    fts5, ours = scores
    assert list(ours) == list(fts5) and len(ours) > 6
    assert all(abs(ours[rid] - fts5[rid]) < 1e-6 * fts5[rid] for rid in fts5)


async def test_each_scope_ranks_with_its_own_statistics(tmp_path: Path) -> None:
    """A word common in another user's memories does not lose weight in this user's ranking."""
    store = SQLiteStore(tmp_path / "e.db")
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as m:
        await m.add([{"role": "user", "content": f"paris trip {i}"} for i in range(200)],
                    user_id="other", infer=False)  # fmt: skip
        mine = ["paris in spring", "a dog named rex", "rex likes paris", "the weather"]
        await m.add([{"role": "user", "content": t} for t in mine], user_id="me", infer=False)
        alone = SQLiteStore(tmp_path / "alone.db")
        async with AsyncMemory(embedder=HashingEmbedder(64), store=alone) as solo:
            await solo.add([{"role": "user", "content": t} for t in mine], user_id="me",
                           infer=False)  # fmt: skip
            expected = await _matches(alone, ["paris", "rex"], "me")
        found = await _matches(store, ["paris", "rex"], "me")
        assert sorted(found.values()) == pytest.approx(sorted(expected.values()))


async def test_the_index_follows_every_write(tmp_path: Path) -> None:
    """Adds, updates, deletes through the API, a text edited in SQL by another connection
    (no new vector: the change log records text edits too) and another process's store: after
    each, the scope ranks exactly as an index built afresh would."""
    path = tmp_path / "w.db"
    store = SQLiteStore(path)
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as m:
        added = await m.add([{"role": "user", "content": t} for t in TEXTS], user_id="u",
                            infer=False)  # fmt: skip
        ids = [r["id"] for r in added["results"]]
        terms = ["dog", "paris", "mountains", "river", "cat"]
        assert await _matches(store, terms, "u")  # the scope is indexed now

        async def agrees() -> None:
            fresh = SQLiteStore(tmp_path / "w.db", lexicon_budget=lexicon.BUDGET)
            async with AsyncMemory(embedder=HashingEmbedder(64), store=fresh) as reader:
                await reader.get_all(user_id="u")  # (opens the store)
                expected = await _matches(fresh, terms, "u")
                found = await _matches(store, terms, "u")
            assert found.keys() == expected.keys()
            assert all(found[r] == pytest.approx(expected[r]) for r in expected)

        await m.update(ids[0], "A cat sleeps on the sofa")
        await agrees()
        await m.delete(ids[1])
        await agrees()
        await m.add("Another dog by the river", user_id="u", infer=False)
        await agrees()
        other = sqlite3.connect(path)
        other.execute("UPDATE memories SET memory = 'The river Thames' WHERE id = ?", (ids[4],))
        other.commit()
        other.close()
        await agrees()
        assert any(
            "Thames" in h["memory"]
            for h in (await m.search("river", user_id="u", recipe="keyword"))["results"]
        )
        async with AsyncMemory(embedder=HashingEmbedder(64), store=SQLiteStore(path)) as second:
            await second.add("A dog in the mountains of Paris", user_id="u", infer=False)
        await agrees()
        await m.delete_all(user_id="u")
        assert await _matches(store, terms, "u") == {}


async def test_a_scope_of_several_partitions_is_one_collection(tmp_path: Path) -> None:
    """user_id alone spans that user's rows with any agent or run: one ranking over all, the
    same as the SQL path's, and a filter beyond the scope keeps only its rows."""
    store = SQLiteStore(tmp_path / "p.db")
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as m:
        for i, text in enumerate(TEXTS):
            await m.add(text, user_id="u", agent_id=f"a{i % 3}", run_id=f"r{i % 2}", infer=False,
                        metadata={"n": i})  # fmt: skip
        both = await _matches(store, ["dog", "paris"], "u")
        assert len(both) == 4
        where = parse_filters({"AND": [{"user_id": "u"}, {"metadata": {"n": {"gte": 2}}}]})
        some = await store.keyword_matches(["dog", "paris"], where, today=TODAY)
        assert list(some.scores) == [rid for rid in both if rid in some.scores]
        assert len(some.scores) == 2 and some.complete
        assert all(some.scores[rid] == both[rid] for rid in some.scores)


async def test_large_scopes_are_indexed_on_the_builder_thread(tmp_path: Path) -> None:
    """Past BUILD_NOW rows the first searches are ranked by FTS5 while the scope is indexed
    beside them; writes made meanwhile are in the index that takes over; past the budget FTS5
    ranks every search."""
    store = SQLiteStore(tmp_path / "b.db")
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as m:
        texts = [f"walk number {i} by the river" + " stone" * (i % 5) for i in range(300)]
        await m.add([{"role": "user", "content": t} for t in texts], user_id="u", infer=False)
        lexicons = store._keeper._lexicons
        lexicons.build_now = 50
        first = await _matches(store, ["river", "stone"], "u")  # FTS5, and indexing begins
        await m.add("one more stone by the river", user_id="u", infer=False)
        deadline = time.monotonic() + 30
        while not lexicons and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert lexicons, "the scope was not indexed"
        found = await _matches(store, ["river", "stone"], "u")
        assert len(found) == len(first) + 1
        fts = keyword.matches(sqlite3.connect(store.path), ["river", "stone"],
                              parse_filters({"user_id": "u"}), TODAY, False)[0]  # fmt: skip
        assert list(found) == list(fts)
        lexicons.clear()
        lexicons.budget = 100  # smaller than the scope: FTS5 from now on
        again = await _matches(store, ["river", "stone"], "u")
        assert list(again) == list(fts) and not lexicons


async def test_other_candidates_are_scored_by_the_same_statistics(tmp_path: Path) -> None:
    """A candidate brought without the full-text window (a dated query's second read, a graph
    link) gets the BM25 the window would give it, not FTS5's over the whole store."""
    store = SQLiteStore(tmp_path / "m.db")
    where = parse_filters({"user_id": "me"})
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as m:
        await m.add([{"role": "user", "content": f"paris trip {i}"} for i in range(300)],
                    user_id="other", infer=False)  # fmt: skip
        mine = ["rex likes paris", "a dog", "the sea", "blue sky", "green tree"]
        added = await m.add([{"role": "user", "content": t} for t in mine], user_id="me",
                            infer=False)  # fmt: skip
        ids = [r["id"] for r in added["results"]]
        window = await store.candidates(None, ["paris"], where, today=TODAY, n_vector=0,
                                        n_keyword=10)  # fmt: skip
        brought = await store.candidates(None, ["paris"], where, today=TODAY, n_vector=0,
                                         n_keyword=0, extra_ids=ids)  # fmt: skip
        expected = {c.memory_id: c.keyword for c in window}
        found = {c.memory_id: c.keyword for c in brought if c.keyword}
        assert found == pytest.approx(expected) and len(found) == 1 and min(found.values()) > 0.5


async def test_terms_count_as_fts5_phrases(tmp_path: Path) -> None:
    """Two terms of one stem count twice, as two FTS5 phrases do; a term of several words
    ("user_name", a phrase) is left to FTS5, which matches it by position."""
    texts = ["I love running with my dog", "the dog runs", "a cat", "running shoes",
             "paris dog", "user_name is x", "user name is y", "name of user"]  # fmt: skip
    for terms in (["running", "runs", "dog"], ["user_name"]):
        found = []
        for budget in (0, lexicon.BUDGET):
            store = SQLiteStore(tmp_path / f"s{budget}{terms[0]}.db", lexicon_budget=budget)
            async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as m:
                await m.add([{"role": "user", "content": t} for t in texts], user_id="u",
                            infer=False)  # fmt: skip
                found.append(await _matches(store, terms, "u"))
        assert list(found[1]) == list(found[0])
        assert found[1] == pytest.approx(found[0])


async def test_an_index_built_beside_writes_holds_exactly_the_live_rows(tmp_path: Path) -> None:
    """The builder thread's index reads the scope in one snapshot and is brought to the
    vector index's position under the lock: a row another process added and deleted around that
    read is not left in it, and a row it moved to another agent is in one partition only."""
    path = tmp_path / "g.db"
    store = SQLiteStore(path)
    where = parse_filters({"user_id": "u"})
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as m:
        await m.add([{"role": "user", "content": f"walk {i} by the river"} for i in range(300)],
                    user_id="u", infer=False)  # fmt: skip
        keeper = store._keeper
        await m.search("river", user_id="u")  # the vectors are loaded and synced
        key: lexicon.ScopeKey = ("u", None, None)
        loop = asyncio.get_running_loop()
        async with AsyncMemory(embedder=HashingEmbedder(64), store=SQLiteStore(path)) as other:
            gone = (await other.add("river river river", user_id="u", infer=False))["results"]
            moved = (await other.add("stone by the river", user_id="u", infer=False))["results"]
            keeper._lexicons.clear()
            await loop.run_in_executor(None, keeper._index_text, [key])  # as the builder does
            await other.delete(gone[0]["id"])
        conn = sqlite3.connect(path)
        conn.execute("UPDATE memories SET agent_id = 'a2' WHERE id = ?", (moved[0]["id"],))
        conn.commit()
        live = conn.execute("SELECT count(*) FROM memories WHERE user_id = 'u'").fetchone()[0]
        found = await _matches(store, ["river", "stone"], "u")
        assert len(found) == live == 301
        assert sum(lex.count for lex in keeper._lexicons._kept.values()) == live
        fresh = SQLiteStore(path)
        async with AsyncMemory(embedder=HashingEmbedder(64), store=fresh) as reader:
            await reader.get_all(user_id="u")
            expected = await fresh.keyword_matches(["river", "stone"], where, today=TODAY)
        assert found == pytest.approx(expected.scores)


async def test_a_scope_of_several_partitions_stays_within_the_budget(tmp_path: Path) -> None:
    """Indexing one partition of a scope never drops another of the same scope (each search
    would index it again): once built, the scope is served from memory."""
    store = SQLiteStore(tmp_path / "t.db", lexicon_budget=1000)
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as m:
        for agent in ("a1", "a2"):
            await m.add([{"role": "user", "content": f"river w{agent}x{i} q{agent}y{i}"}
                          for i in range(200)], user_id="u", agent_id=agent, infer=False)  # fmt: skip
        await _matches(store, ["river"], "u")
        kept = dict(store._keeper._lexicons._kept)
        assert len(kept) == 2
        for i in range(5):
            await _matches(store, ["river", f"n{i}"], "u")
        assert store._keeper._lexicons._kept == kept  # the same indexes, not rebuilt
