"""Full-text (FTS5 BM25) retrieval within the filters."""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from engram.core.filters import Node, scope_of
from engram.core.text import fts_match
from engram.store.base import KeywordMatches
from engram.store.sqlite.compile import compile_live, is_pure_scope
from engram.store.sqlite.indexing import IndexKeeper
from engram.store.sqlite.rows import chunked

BM25 = "bm25(memories_fts, 1.0, 0.5, 0.5, 0.0)"  # weights: text, speaker, date in words, scope
FETCH = 5000  # matches read per query; past it, other candidates are scored directly
KEYWORD_WINDOW = 100  # best matches of a scope read per query at first (at least 2 x wanted)
KEYWORD_WINDOW_MAX = 20_000  # past this (many expired rows), matches are joined in SQL
# Full-text results of recent scope searches, kept while the database has not changed (any
# commit, by any process, drops them all): an application asking the same again skips BM25.
RECENT_RESULTS = 256
RECENT_TERMS = 4096  # terms whose rows are counted and kept (`FullText._hits`)
_SCOPE_PREFIX = {"user_id": "u", "agent_id": "a", "run_id": "r"}
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def scope_word(field: str, value: str) -> str:
    """The word schema migration 8 writes in `scope_words` for one scope id."""
    return _SCOPE_PREFIX[field] + value.encode("utf-8").hex() + "x"


def expression(terms: list[str], scope: Mapping[str, str] | None = None) -> str:
    """The MATCH expression: any of the terms in the text, speaker or date columns, and, given a
    scope, every one of its ids, so that FTS5 computes BM25 only for the scope's rows."""
    words = f"{{memory actor_id date_words}} : ({fts_match(terms)})"
    if not scope:
        return words
    ids = " AND ".join(f'"{scope_word(field, value)}"' for field, value in sorted(scope.items()))
    return f"scope_words : ({ids}) AND {words}"


class FullText:
    """A store's full-text matches: for a scope, a window of its best matches (kept while the
    database is unchanged); for other filters, the matches joined with the filter in SQL."""

    def __init__(self, keeper: IndexKeeper) -> None:
        self._keeper = keeper
        self._recent: OrderedDict[tuple[Any, ...], tuple[int, KeywordMatches]] = OrderedDict()
        self._lock = threading.Lock()
        # Rows of the whole store holding each term (MaxScore's bounds), kept while the
        # database is unchanged: counting a common word's rows takes ~10 ms at 1M memories.
        self._hits: dict[str, int] = {}
        self._hits_generation = -1

    def matches(
        self,
        conn: sqlite3.Connection,
        terms: list[str],
        where: Node | None,
        today: str,
        show_expired: bool,
        want: int | None,
    ) -> KeywordMatches:
        if not terms:
            return KeywordMatches({}, True)
        scope = scope_of(where)
        if not is_pure_scope(where):
            ranked = self._keeper.ranked(conn, scope, terms) if scope else None
            if ranked is not None:
                return _filtered(conn, *ranked, where, today, show_expired)
            return KeywordMatches(*matches(conn, terms, where, today, show_expired))
        key = (tuple(terms), tuple(sorted(scope.items())), today, show_expired, want)
        generation = self._keeper.generation(conn)  # before reading: see IndexKeeper
        with self._lock:
            hit = self._recent.get(key)
            if hit is not None and hit[0] == generation:
                self._recent.move_to_end(key)
                return hit[1]
        result = self._window(conn, terms, where, scope, today, show_expired, want, generation)
        with self._lock:
            self._recent[key] = (generation, result)
            self._recent.move_to_end(key)
            while len(self._recent) > RECENT_RESULTS:
                self._recent.popitem(last=False)
        return result

    def _window(
        self,
        conn: sqlite3.Connection,
        terms: list[str],
        where: Node | None,
        scope: dict[str, str],
        today: str,
        show_expired: bool,
        want: int | None,
        generation: int,
    ) -> KeywordMatches:
        """The scope's best matches (its ids are words in the index), less the expired ones
        (the vector index knows each row's expiry), widening the window until `want` are kept;
        rows past it are scored directly if another retriever brings them. With the scope's
        text indexed here (lexicon.py), every match is scored at once and the window only
        bounds the expiry checks."""
        ranked = self._keeper.ranked(conn, scope, terms)
        if ranked is not None:
            return self._best_kept(conn, *ranked, where, today, show_expired, want)
        if want is None:
            rows = best_matches(conn, terms, scope, None)
            kept = self._keeper.filter_scope(conn, rows, where, today, show_expired)
            return KeywordMatches(dict(kept), True)
        window = max(2 * want, KEYWORD_WINDOW)

        def hits(term: str) -> int:
            with self._lock:
                if self._hits_generation != generation:
                    self._hits, self._hits_generation = {}, generation
                known = self._hits.get(term)
            if known is None:
                known = term_hits(conn, term)
                with self._lock:
                    if self._hits_generation == generation and len(self._hits) < RECENT_TERMS:
                        self._hits[term] = known
            return known

        while window <= KEYWORD_WINDOW_MAX:
            rows = best_matches(conn, terms, scope, window + 1, hits)
            complete = len(rows) <= window
            kept = self._keeper.filter_scope(conn, rows[:window], where, today, show_expired)
            if complete or len(kept) >= want:
                return KeywordMatches(dict(kept), complete)
            window *= 8
        # A small scope in a large store: join the scope's rows in SQL.
        return KeywordMatches(*matches(conn, terms, where, today, show_expired))

    def scores(
        self, conn: sqlite3.Connection, terms: list[str], where: Node | None, rids: list[int]
    ) -> dict[int, float]:
        """BM25 of the given rows (those with no query term left out), by the same statistics
        as the scope's matches: from the scope's text in memory when it is there."""
        scope = scope_of(where)
        ranked = self._keeper.ranked(conn, scope, terms) if scope and rids else None
        if ranked is not None:
            return _lookup(*ranked)(rids)
        return scores(conn, terms, rids)

    def _best_kept(
        self, conn: sqlite3.Connection, rids: I64, scores: F64, where: Node | None, today: str,
        show_expired: bool, want: int | None,
    ) -> KeywordMatches:  # fmt: skip
        """The best of every match, unexpired and in scope, widening the window until `want`
        are kept; any match's score can be looked up (`score_of`)."""
        window = len(rids) if want is None else max(2 * want, KEYWORD_WINDOW)
        while True:
            best = _best(rids, scores, window)
            pairs = list(zip(rids[best].tolist(), scores[best].tolist(), strict=True))
            kept = self._keeper.filter_scope(conn, pairs, where, today, show_expired)
            if window >= len(rids) or (want is not None and len(kept) >= want):
                return KeywordMatches(dict(kept), True, _lookup(rids, scores))
            window *= 8


def _best(rids: I64, scores: F64, count: int) -> npt.NDArray[np.intp]:
    """Positions of the `count` best scores, best first (ties by row id)."""
    if count < len(scores):
        chosen = np.argpartition(-scores, count - 1)[:count]
    else:
        chosen = np.arange(len(scores))
    return chosen[np.lexsort((rids[chosen], -scores[chosen]))]


def _lookup(rids: I64, scores: F64) -> Callable[[list[Any]], dict[Any, float]]:
    """BM25 of given rows among the matches (the rest are left out)."""
    by_rid, their = rids, scores
    if len(rids) > 1 and not (rids[1:] > rids[:-1]).all():  # (mostly sorted already)
        order = np.argsort(rids)
        by_rid, their = rids[order], scores[order]

    def score_of(wanted: list[Any]) -> dict[Any, float]:
        if not wanted or not len(by_rid):
            return {}
        asked = np.asarray(wanted, dtype=np.int64)
        at = np.minimum(np.searchsorted(by_rid, asked), len(by_rid) - 1)
        hit = by_rid[at] == asked
        return dict(zip(asked[hit].tolist(), their[at[hit]].tolist(), strict=True))

    return score_of


def _filtered(
    conn: sqlite3.Connection, rids: I64, scores: F64, where: Node | None, today: str,
    show_expired: bool,
) -> KeywordMatches:  # fmt: skip
    """The matches that pass the filters (and expiry), best first: all of them."""
    sql, params = compile_live(where, today, show_expired)
    passing = conn.execute(f"SELECT m.rid FROM memories m WHERE {sql}", params).fetchall()
    allowed = np.fromiter((r[0] for r in passing), dtype=np.int64, count=len(passing))
    keep = np.isin(rids, allowed)
    rids, scores = rids[keep], scores[keep]
    best = _best(rids, scores, len(rids))
    return KeywordMatches(dict(zip(rids[best].tolist(), scores[best].tolist(), strict=True)), True)


def matches(
    conn: sqlite3.Connection, terms: list[str], where: Node | None, today: str, show_expired: bool
) -> tuple[dict[int, float], bool]:
    """rid -> BM25 (higher is better) of matching rows, best first (at most FETCH), and whether
    that is every match."""
    if not terms:
        return {}, True
    sql, params = compile_live(where, today, show_expired)
    # CROSS JOIN keeps the full-text index as the outer loop: left to itself, the planner may
    # scan the scope's rows and probe the index for each (measured: 500 ms instead of 3 ms).
    rows = conn.execute(
        f"SELECT memories_fts.rowid, -{BM25} FROM memories_fts "
        f"CROSS JOIN memories m ON m.rid = memories_fts.rowid WHERE memories_fts MATCH ? AND {sql} "
        f"ORDER BY {BM25} LIMIT ?",
        [expression(terms, scope_of(where)), *params, FETCH + 1],
    ).fetchall()
    return {int(r[0]): float(r[1]) for r in rows[:FETCH]}, len(rows) <= FETCH


def term_hits(conn: sqlite3.Connection, term: str) -> int:
    """Rows of the whole store holding the term (in any column MATCH reads)."""
    found = conn.execute(
        "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?", [expression([term])]
    ).fetchone()
    return int(found[0])


def best_matches(
    conn: sqlite3.Connection, terms: list[str], scope: Mapping[str, str], limit: int | None,
    hits: Callable[[str], int] | None = None,
) -> list[tuple[int, float]]:  # fmt: skip
    """(rid, BM25) of the `limit` best matches among the scope's rows (every match when None),
    best first: the caller checks expiry (and the scope, as the vector index knows it).
    `hits`: each term's rows in the store (counted when not given)."""
    if limit is not None and len(terms) > 1:
        found = _best_past_common_terms(conn, terms, scope, limit, hits)
        if found is not None:
            return found
    return _ranked(conn, expression(terms, scope), None, limit)


def _ranked(
    conn: sqlite3.Connection, match: str, among: str | None, limit: int | None
) -> list[tuple[int, float]]:
    """Rows of `match` by BM25, best first; given `among`, only the rows that also match it
    (BM25 is computed for those only: `+rowid` keeps the test a filter on the match scan)."""
    sql = f"SELECT rowid, -{BM25} FROM memories_fts WHERE memories_fts MATCH ?"
    params: list[object] = [match]
    if among is not None:
        sql += " AND +rowid IN (SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?)"
        params.append(among)
    rows = conn.execute(
        f"{sql} ORDER BY {BM25} LIMIT ?", [*params, -1 if limit is None else limit]
    ).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def _best_past_common_terms(
    conn: sqlite3.Connection, terms: list[str], scope: Mapping[str, str], limit: int,
    count: Callable[[str], int] | None = None,
) -> list[tuple[int, float]] | None:  # fmt: skip
    """The `limit` best matches, computing BM25 only for rows with one of the rarer terms
    (MaxScore): a term adds at most idf x (k1 + 1) to a row's BM25, so when the `limit`-th best
    row among those with a rarer term scores above the sum of the common terms' bounds, no row
    with common terms only can enter. None when that does not hold (read every match then).

    FTS5 computes BM25 once per matching row (~1 us each, most of a search's full-text cost);
    a common word can match most of a scope while the best rows are those with the rare ones."""
    hits = {t: count(t) if count is not None else term_hits(conn, t) for t in terms}
    rare = sorted(terms, key=lambda t: hits[t])
    common: list[str] = []
    while len(rare) > 1 and hits[rare[-1]] >= sum(hits[t] for t in rare[:-1]) >= limit:
        common.append(rare.pop())  # most of the matches, and the rest can still fill `limit`
    if not common:
        return None
    # The index's row count is at most the largest rid: idf and so the bounds only grow.
    n_rows = conn.execute("SELECT max(rid) FROM memories").fetchone()[0] or 0
    bound = sum(_most_added(n_rows, hits[t]) for t in common)
    rows = _ranked(conn, expression(terms, scope), expression(rare, scope), limit)
    if len(rows) < limit or rows[-1][1] <= bound:
        return None
    return rows


def _most_added(n_rows: int, hits: int) -> float:
    """The most one term can add to a row's BM25 in FTS5: idf x (k1 + 1), k1 = 1.2, with FTS5's
    idf (floored at 1e-6)."""
    idf = math.log((n_rows - hits + 0.5) / (hits + 0.5)) if n_rows > hits else 0.0
    return max(idf, 1e-6) * 2.2


def scores(conn: sqlite3.Connection, terms: list[str], rids: list[int]) -> dict[int, float]:
    """BM25 of the given rows (those with no query term are left out)."""
    out: dict[int, float] = {}
    for chunk, marks in chunked(rids):
        # `+rowid` keeps the rowid test a filter on the match scan: given to FTS5 as a
        # constraint, it re-reads the terms' doclists once per row (measured: 2 ms vs 0.27 ms
        # for 50 rows among 2,000 matches), and BM25 is computed only for the rows kept.
        rows = conn.execute(
            f"SELECT rowid, -{BM25} FROM memories_fts WHERE memories_fts MATCH ? "
            f"AND +rowid IN ({marks})",
            [expression(terms), *chunk],
        ).fetchall()
        out.update((int(r[0]), float(r[1])) for r in rows)
    return out
