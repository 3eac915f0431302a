"""Full-text retrieval on PostgreSQL, ranked by BM25 as SQLite's FTS5 ranks it.

Each memory's `fts` (a generated `tsvector`: the text with weight A, the speaker with weight B,
the date in words with weight C, stemmed by the `engram` text search configuration) is matched
through its GIN index. PostgreSQL's own ranking functions have no inverse document frequency,
so BM25 (k1 = 1.2, b = 0.75; a term's frequency counts 1 in the text and 0.5 in the speaker or
the date, FTS5's column weights) is computed here from what two simple statements return: the
query's lexemes with the statistics the schema keeps by trigger (documents per lexeme; documents
and tokens per project), and each matching row's length and frequency of those lexemes.
(One statement doing it all was slower: its plan is hard for PostgreSQL to estimate.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncCursor

from engram.core.filters import Node, scope_of
from engram.store.base import KeywordMatches
from engram.store.postgres.compile import Params, compile_live

FETCH = 5000  # matches read per query; past it, other candidates are scored directly
K1, B = 1.2, 0.75
# Where the filters pin no user, agent or run (or `schema.SCOPED_FULL_TEXT` is missing), matching
# through the GIN index reads every posting of the query's lexemes in the project; a
# scope's rows can be read instead (through its B-tree) and each row's `fts` checked. Measured
# at 1M memories: ~0.3 ms per 1,000 postings against ~1.7 ms per 1,000 rows of the scope, so the
# scope is read when the lexemes have more than SCAN_RATIO postings per row of it (the rows as
# PostgreSQL's planner estimates them). Below SCAN_FLOOR postings, the index always (a few ms).
SCAN_RATIO = 6
SCAN_FLOOR = 20_000


@dataclass(frozen=True, slots=True)
class Query:
    """The query's lexemes that some memory of the project holds, with their idf and how many
    memories hold each, and the project's average length."""

    idf: dict[str, float]
    avgdl: float
    docs: dict[str, int]

    @property
    def tsquery(self) -> str:
        return tsquery(self.idf)

    def most_added(self, lexemes: Sequence[str]) -> float:
        """The most these lexemes can add to a row's BM25: idf x (k1 + 1) each."""
        return sum(self.idf[w] * (K1 + 1) for w in lexemes)

    def score(self, tokens: int, frequencies: Sequence[Any]) -> float:
        """BM25 of a row of `tokens` tokens with these (lexeme, weighted frequency) pairs."""
        norm = K1 * (1 - B + B * tokens / self.avgdl)
        total = 0.0
        for lexeme, frequency in frequencies or ():
            tf = float(frequency)
            total += self.idf.get(lexeme, 0.0) * tf * (K1 + 1) / (tf + norm)
        return total


async def prepare(cur: AsyncCursor[Any], project: str, terms: Sequence[str]) -> Query | None:
    """The query as the index holds it (stemmed; stop words dropped), or None when no memory of
    the project holds any of its terms."""
    if not terms:
        return None
    await cur.execute(
        "SELECT w.lexeme, l.docs, s.docs, s.tokens FROM stores s "
        "CROSS JOIN unnest(tsvector_to_array(to_tsvector('engram', %s))) AS w(lexeme) "
        "JOIN lexemes l ON l.project = s.project AND l.lexeme = w.lexeme "
        "WHERE s.project = %s AND l.docs > 0",
        (" ".join(terms), project),
    )
    rows = await cur.fetchall()
    if not rows:
        return None
    n, tokens = max(int(rows[0][2]), 1), max(int(rows[0][3]), 1)
    idf = {str(r[0]): max(math.log((n - int(r[1]) + 0.5) / (int(r[1]) + 0.5)), 1e-6) for r in rows}
    return Query(idf, tokens / n, {str(r[0]): int(r[1]) for r in rows})


def tsquery(lexemes: Sequence[str] | dict[str, float]) -> str:
    """Any of the lexemes, each quoted (no query syntax gets through)."""
    quoted = ("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in lexemes)
    return " | ".join(quoted)


def _frequencies(q: Query, p: Params) -> str:
    """Per row: its query lexemes and their weighted frequencies."""
    return (
        "(SELECT array_agg(ARRAY[u.lexeme, (0.5 * (cardinality(u.weights) + "
        "cardinality(array_positions(u.weights, 'A'))))::text]) FROM unnest(m.fts) AS u "
        f"WHERE u.lexeme = ANY({p.bind(list(q.idf), '::text[]')}))"
    )


async def matches(
    cur: AsyncCursor[Any],
    project: str,
    terms: Sequence[str],
    where: Node | None,
    today: str,
    show_expired: bool,
    want: int | None,
    by_scope: bool = False,
) -> KeywordMatches:
    """rid -> BM25 of the matches within the filters, best first (up to FETCH), and whether
    that is every match. `by_scope`: the database has `schema.SCOPED_FULL_TEXT`, which
    matches within a user, agent or run the filters pin through its postings alone."""
    q = await prepare(cur, project, terms)
    if q is None:
        return KeywordMatches({}, True)
    pinned = by_scope and bool(scope_of(where))
    if not pinned and await read_the_scope(cur, q, project, where, today, show_expired):
        # One pass over the scope's rows whatever the lexemes: no gain in trying rare ones first.
        return await scored(cur, q, list(q.idf), project, where, today, show_expired, scan=True)
    if want is not None and len(q.idf) > 1:
        found = await _best_past_common_terms(cur, q, project, where, today, show_expired, want)
        if found is not None:
            return found
    return await scored(cur, q, list(q.idf), project, where, today, show_expired)


async def read_the_scope(
    cur: AsyncCursor[Any], q: Query, project: str, where: Node | None, today: str,
    show_expired: bool, floor: int = SCAN_FLOOR,
) -> bool:  # fmt: skip
    """Whether matching is cheaper by reading the scope's rows than the lexemes' postings (a
    scope of a large project and common lexemes). The planner's estimate of the scope's rows
    costs a plan, no execution, and only where the postings are `floor` or more."""
    postings = sum(q.docs.values())
    if postings < floor or where is None:
        return False
    p = Params([project])
    live, p = compile_live(where, today, show_expired, p)
    await cur.execute(
        f"EXPLAIN (FORMAT JSON) SELECT 1 FROM memories m WHERE m.project = %s AND {live}", p
    )
    row = await cur.fetchone()
    plan = row[0] if row else None  # EXPLAIN's JSON, which psycopg loads
    if not plan:
        return False
    return postings > SCAN_RATIO * float(plan[0]["Plan"]["Plan Rows"])


async def scored(
    cur: AsyncCursor[Any], q: Query, lexemes: list[str], project: str, where: Node | None,
    today: str, show_expired: bool, *, scan: bool = False,
) -> KeywordMatches:  # fmt: skip
    """The rows with any of `lexemes` within the filters (up to FETCH), scored on every lexeme
    of the query, best first; and whether that is every such row. `scan`: matched row by row
    over the scope (`ts_match_vq` is `@@` in a form the GIN index does not answer)."""
    p = Params()
    frequencies = _frequencies(q, p)
    head = f"m.project = {p.bind(project)} AND "  # bound in the order the SQL reads them
    query = p.bind(tsquery(lexemes), "::tsquery")
    head += f"ts_match_vq(m.fts, {query})" if scan else f"m.fts @@ {query}"
    live, p = compile_live(where, today, show_expired, p)
    await cur.execute(
        f"SELECT m.rid, m.tokens, {frequencies} FROM memories m WHERE {head} AND {live} "
        f"LIMIT {p.bind(FETCH + 1)}",
        p,
    )
    rows = await cur.fetchall()
    scored = sorted(
        ((int(r[0]), q.score(int(r[1]), r[2])) for r in rows[:FETCH]), key=lambda x: (-x[1], x[0])
    )
    return KeywordMatches(dict(scored), len(rows) <= FETCH)


async def _best_past_common_terms(
    cur: AsyncCursor[Any], q: Query, project: str, where: Node | None, today: str,
    show_expired: bool, want: int,
) -> KeywordMatches | None:  # fmt: skip
    """The best matches, scoring only the rows with one of the rarer lexemes (MaxScore, as
    `store/sqlite/keyword.py`): when the `want`-th best of those scores above the most the
    common lexemes can add together, no row with common lexemes only can be among the best, and
    the matches returned are exact, though not every match (`complete` false: other candidates
    are scored directly). None when that does not hold (every match is read then).

    A common lexeme (a speaker's name in every one of their turns) can match most of a scope
    while the best rows are those with the rarer ones."""
    rare = sorted(q.idf, key=lambda w: q.docs[w])
    common: list[str] = []
    while len(rare) > 1 and q.docs[rare[-1]] >= sum(q.docs[w] for w in rare[:-1]) >= want:
        common.append(rare.pop())  # most of the matches, and the rest can still fill `want`
    if not common:
        return None
    found = await scored(cur, q, rare, project, where, today, show_expired)
    scores = list(found.scores.values())
    if not found.complete or len(scores) < want or scores[want - 1] <= q.most_added(common):
        return None
    return KeywordMatches(found.scores, False)


async def scores(
    cur: AsyncCursor[Any], project: str, terms: Sequence[str], rids: list[int]
) -> dict[int, float]:
    """BM25 of the given rows (those with no query term are left out)."""
    if not rids:
        return {}
    q = await prepare(cur, project, terms)
    if q is None:
        return {}
    p = Params()
    frequencies = _frequencies(q, p)
    await cur.execute(
        f"SELECT m.rid, m.tokens, {frequencies} FROM memories m WHERE m.project = "
        f"{p.bind(project)} AND m.rid = ANY({p.bind(rids, '::bigint[]')}) "
        f"AND m.fts @@ {p.bind(q.tsquery, '::tsquery')}",
        p,
    )
    return {int(r[0]): q.score(int(r[1]), r[2]) for r in await cur.fetchall()}
