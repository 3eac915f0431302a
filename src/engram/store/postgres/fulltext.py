"""Full-text retrieval on PostgreSQL, ranked by BM25 as SQLite's FTS5 ranks it.

Each memory's `fts` (a generated `tsvector`: the text with weight A, the speaker with weight B,
the date in words with weight C, stemmed by the `engram` text search configuration) is matched
through its GIN index. PostgreSQL's own ranking functions have no inverse document frequency,
so BM25 (k1 = 1.2, b = 0.75; a term's frequency counts 1 in the text and 0.5 in the speaker or
the date, FTS5's column weights) is computed in SQL from the statistics the schema keeps by
trigger: documents per lexeme and documents and tokens per project.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncCursor

from engram.core.filters import Node
from engram.store.base import KeywordMatches
from engram.store.postgres.compile import Params, compile_live

FETCH = 5000  # matches read per query; past it, other candidates are scored directly


async def lexemes(cur: AsyncCursor[Any], terms: Sequence[str]) -> list[str]:
    """The query terms as the index holds them (stemmed; stop words dropped)."""
    if not terms:
        return []
    await cur.execute(
        "SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector('engram', %s))) "
        "AS lexeme ORDER BY lexeme",
        (" ".join(terms),),
    )
    return [str(r[0]) for r in await cur.fetchall()]


def _bm25(project: str, words: list[str], rows: str, p: Params) -> str:
    """SELECT rid, bm25 over `rows` (a SELECT of m.rid, m.tokens, m.fts), best first. The caller
    has bound `rows`' parameters into `p` before this call's (they come first in the SQL)."""
    return (
        f"WITH hits AS ({rows}), "
        f"terms AS (SELECT lexeme, docs FROM lexemes WHERE project = {p.bind(project)} "
        f"AND lexeme = ANY({p.bind(words, '::text[]')})), "
        "corpus AS (SELECT greatest(docs, 1)::float8 AS n, "
        "greatest(tokens, 1)::float8 / greatest(docs, 1) AS avgdl FROM stores "
        f"WHERE project = {p.bind(project)}) "
        "SELECT h.rid, sum(greatest(ln((c.n - t.docs + 0.5) / (t.docs + 0.5)), 1e-6) * f.tf * 2.2"
        " / (f.tf + 1.2 * (0.25 + 0.75 * h.tokens / c.avgdl))) AS score "
        "FROM hits h CROSS JOIN corpus c "
        "CROSS JOIN LATERAL (SELECT u.lexeme, (SELECT sum(CASE w WHEN 'A' THEN 1.0 ELSE 0.5 END)"
        " FROM unnest(u.weights) AS w) AS tf FROM unnest(h.fts) AS u) AS f "
        "JOIN terms t ON t.lexeme = f.lexeme "
        "GROUP BY h.rid ORDER BY score DESC, h.rid"
    )


def _any_of(words: list[str], p: Params) -> str:
    """A tsquery matching any of the lexemes (each quoted, so no query syntax gets through)."""
    return (
        "(SELECT string_agg(quote_literal(w), ' | ')::tsquery "
        f"FROM unnest({p.bind(words, '::text[]')}) AS w)"
    )


async def matches(
    cur: AsyncCursor[Any],
    project: str,
    words: list[str],
    where: Node | None,
    today: str,
    show_expired: bool,
    want: int | None,
) -> KeywordMatches:
    """rid -> BM25 of the best matches within the filters (at least `want` when there are that
    many; every match, up to FETCH, when `want` is None), and whether that is every match."""
    if not words:
        return KeywordMatches({}, True)
    limit = FETCH if want is None else min(FETCH, max(want, 1))
    p = Params([project])
    match = _any_of(words, p)
    live, p = compile_live(where, today, show_expired, p)
    rows = (
        f"SELECT m.rid, m.tokens, m.fts FROM memories m WHERE m.project = %s "
        f"AND m.fts @@ {match} AND {live}"
    )
    sql = _bm25(project, words, rows, p) + f" LIMIT {p.bind(limit + 1)}"
    await cur.execute(sql, p)
    found = [(int(r[0]), float(r[1])) for r in await cur.fetchall()]
    return KeywordMatches(dict(found[:limit]), len(found) <= limit)


async def scores(
    cur: AsyncCursor[Any], project: str, words: list[str], rids: list[int]
) -> dict[int, float]:
    """BM25 of the given rows (those with no query term are left out)."""
    if not words or not rids:
        return {}
    p = Params([project])
    among = f"m.rid = ANY({p.bind(rids, '::bigint[]')})"
    rows = (
        f"SELECT m.rid, m.tokens, m.fts FROM memories m WHERE m.project = %s AND {among} "
        f"AND m.fts @@ {_any_of(words, p)}"
    )
    await cur.execute(_bm25(project, words, rows, p), p)
    return {int(r[0]): float(r[1]) for r in await cur.fetchall()}
