"""Full-text matching on PostgreSQL has two plans, chosen by cost: the GIN index (the lexemes'
postings in the whole project) or the scope's rows, each checked. Both must give the same
matches and scores."""

from __future__ import annotations

import random
from typing import Any

import psycopg

from engram import AsyncMemory
from engram.core.filters import parse_filters
from engram.providers.embedders.hashing import HashingEmbedder
from engram.store.postgres import fulltext
from engram.store.postgres.store import PostgresStore

TODAY = "2026-01-01"


async def test_reading_the_scope_matches_as_the_index_does(pg_url: str) -> None:
    rng = random.Random(11)
    words = [f"w{i}" for i in range(40)]
    weights = [1 / (i + 1) for i in range(len(words))]
    store = PostgresStore(pg_url, project="fts")
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as memory:
        for user, count in (("big", 400), ("small", 12)):
            texts = [" ".join(rng.choices(words, weights, k=rng.randint(2, 9)))
                     for _ in range(count)]  # fmt: skip
            await memory.add([{"role": "user", "content": t, "name": rng.choice(("Ann", "Bo"))}
                              for t in texts], user_id=user, infer=False)  # fmt: skip
        with psycopg.connect(pg_url, autocommit=True) as conn:  # the planner's statistics
            conn.execute("ANALYZE memories")
        filters: list[dict[str, Any]] = [{"user_id": "big"}, {"user_id": "small"},
                   {"OR": [{"user_id": "small"}, {"metadata": {"k": "v"}}]}]  # fmt: skip
        async with store._read() as cur:
            for _ in range(40):
                terms = rng.sample(words[:4], 1) + rng.sample(words[4:], rng.randint(0, 2))
                q = await fulltext.prepare(cur, "fts", terms)
                assert q is not None
                where = parse_filters(rng.choice(filters))
                by_index = await fulltext.scored(cur, q, list(q.idf), "fts", where, TODAY, False)
                by_scope = await fulltext.scored(
                    cur, q, list(q.idf), "fts", where, TODAY, False, scan=True
                )
                assert by_scope == by_index and by_index.scores
            # The choice: a scope much smaller than the lexemes' postings is read row by row;
            # the whole project (no filter, or one as large) through the index.
            common = await fulltext.prepare(cur, "fts", words[:3])
            assert common is not None
            small, big = parse_filters({"user_id": "small"}), parse_filters({"user_id": "big"})
            assert await fulltext.read_the_scope(cur, common, "fts", small, TODAY, False, floor=0)
            assert not await fulltext.read_the_scope(cur, common, "fts", big, TODAY, False, floor=0)
            assert not await fulltext.read_the_scope(
                cur, common, "fts", None, TODAY, False, floor=0
            )
            assert not await fulltext.read_the_scope(cur, common, "fts", small, TODAY, False)
            assert store._by_scope
        # A pinned user, agent or run is matched through the index of (ids, fts) (migration 6),
        # which intersects the user's postings with the lexemes': both are its conditions. (At
        # this size the planner prefers the B-trees, which these conditions leave unused.)
        with psycopg.connect(pg_url) as conn:
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("DROP INDEX memories_user")  # undone: the transaction is rolled back
            found = conn.execute(
                "EXPLAIN SELECT 1 FROM memories m WHERE m.user_id = 'big' AND m.fts @@ 'w39'::tsquery"
            ).fetchall()
            conn.rollback()
        plan = "\n".join(str(r[0]) for r in found)
        assert "memories_scope_fts" in plan
        assert "Index Cond: ((user_id = 'big'::text) AND (fts @@ " in plan
