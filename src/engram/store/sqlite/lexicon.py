"""BM25 over one scope's rows in memory: the full-text ranking of a scope search.

FTS5 ranks with statistics of the whole database: `bm25()` counts every row holding each query
word before it scores one, and a scope's matches are read from posting lists that span every
scope. In a store of a million memories a common word costs tens of milliseconds a search that
way, whatever the size of the scope searched. Here each partition of the vector index (one
(user_id, agent_id, run_id) triple) gets, on its first full-text search, an inverted index of its
rows (term -> rows and weighted term frequencies, in numpy arrays), kept current from the same
change log as the vectors. A search reads only its scope's postings and scores them in a few
vector operations.

The ranking is FTS5's BM25 (k1 1.2, b 0.75, the same column weights: text 1, speaker 0.5, date
in words 0.5) with the scope's own statistics: the number of rows, their mean length and each
word's document frequency are the scope's, so that what other users stored never moves a user's
ranking. Words are read as the FTS5 table reads them (`porter unicode61 remove_diacritics 2`):
case and accents folded, letters and digits, Porter stems (the Snowball implementation of the
same algorithm; it differs from SQLite's on a few words, and both sides of a comparison here go
through it).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import snowballstemmer  # type: ignore[import-untyped]

K1, B = 1.2, 0.75
WEIGHTS = (1.0, 0.5, 0.5)  # memory, actor_id, date_words: as keyword.BM25
# Rows a search indexes on the spot when its scope has no index yet (about 15 ms per thousand
# here); larger scopes are ranked by FTS5 meanwhile and indexed on the builder thread.
BUILD_NOW = 10_000
# What the kept indexes may hold in all (rows plus distinct words: ~100 bytes each); the least
# recently searched go first. A scope of more rows than half of it is always ranked by FTS5.
BUDGET = 1_000_000
_WORD = re.compile(r"[^\W_]+")
_STEM_CACHE = 200_000
_local = threading.local()  # a Snowball stemmer keeps its word in itself: one per thread
_stems: dict[str, str] = {}

ScopeKey = tuple[str | None, str | None, str | None]
TextRow = tuple[int, str | None, str | None, str | None]  # rid, memory, actor_id, date_words
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def words(text: str | None) -> list[str]:
    """The text's words as the full-text index reads them: folded, split, stemmed."""
    if not text:
        return []
    text = text.lower()
    if not text.isascii():
        text = "".join(
            c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)
        )
    out = []
    for word in _WORD.findall(text):
        stem = _stems.get(word)
        if stem is None:
            # As SQLite's porter tokenizer: words under 3 or over 64 characters stay as they are.
            stem = word if len(word) < 3 or len(word) > 64 or not word.isascii() else (
                _stem(word)
            )  # fmt: skip
            if len(_stems) >= _STEM_CACHE:
                _stems.clear()
            _stems[word] = stem
        out.append(stem)
    return out


def _stem(word: str) -> str:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("porter")
    return str(stemmer.stemWord(word))


def term_words(terms: Iterable[str]) -> list[str] | None:
    """Each query term's index word (FTS5 gives each quoted term its own phrase: two terms with
    one stem count twice); a term with no word is left out; None when a term reads as several
    words ("user_name": a phrase, which only FTS5's positions can match)."""
    found = []
    for term in terms:
        read = words(term)
        if len(read) > 1:
            return None
        found.extend(read)
    return found


def _document(row: TextRow, ids: int) -> tuple[float, dict[str, float]]:
    """A row's length in words (with its `ids` scope ids, one word each in FTS5's row) and each
    word's weighted frequency."""
    weighted: dict[str, float] = {}
    length = ids
    for text, weight in zip(row[1:], WEIGHTS, strict=True):
        found = words(text)
        length += len(found)
        for word in found:
            weighted[word] = weighted.get(word, 0.0) + weight
    return float(length), weighted


class Lexicon:
    """One partition's rows: a base built at once (postings sorted by word) plus the rows
    written since (`fresh`, in dicts), with the base rows removed since marked dead."""

    def __init__(self, rows: Sequence[TextRow], ids: int = 1) -> None:
        """`ids`: how many scope ids the partition's rows have (their length counts them, as
        FTS5's does: the scores are then FTS5's own when the scope is the whole store)."""
        self.ids = ids
        rids: list[int] = []
        lengths: list[float] = []
        vocab: dict[str, int] = {}
        post_word: list[int] = []
        post_doc: list[int] = []
        post_tf: list[float] = []
        for row in sorted(rows):
            length, weighted = _document(row, ids)
            doc = len(rids)
            rids.append(row[0])
            lengths.append(length)
            for word, tf in weighted.items():
                post_word.append(vocab.setdefault(word, len(vocab)))
                post_doc.append(doc)
                post_tf.append(tf)
        self.rids: I64 = np.asarray(rids, dtype=np.int64)
        self.lengths: F32 = np.asarray(lengths, dtype=np.float32)
        self.alive = np.ones(len(rids), dtype=bool)
        self.dead = 0
        order = np.argsort(np.asarray(post_word, dtype=np.int32), kind="stable")
        self.vocab = vocab
        counts = np.bincount(np.asarray(post_word, dtype=np.int64), minlength=len(vocab))
        self.offsets: I64 = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.post_doc: I32 = np.asarray(post_doc, dtype=np.int32)[order]
        self.post_tf: F32 = np.asarray(post_tf, dtype=np.float32)[order]
        self.fresh: dict[int, tuple[float, dict[str, float]]] = {}
        self.fresh_by_word: dict[str, dict[int, float]] = {}
        self.count = len(rids)
        self.total = float(sum(lengths))

    @property
    def size(self) -> int:
        """What it holds, for the budget: rows and distinct words."""
        return len(self.rids) + len(self.vocab) + len(self.fresh)

    @property
    def stale(self) -> bool:
        """Changed so much since its base that a rebuild is cheaper than carrying the changes."""
        return len(self.fresh) + self.dead > max(512, len(self.rids) // 4)

    def remove(self, rid: int) -> None:
        found = self.fresh.pop(rid, None)
        if found is not None:
            for word in found[1]:
                holders = self.fresh_by_word[word]
                del holders[rid]
                if not holders:
                    del self.fresh_by_word[word]
            self.count -= 1
            self.total -= found[0]
            return
        i = int(np.searchsorted(self.rids, rid))
        if i < len(self.rids) and self.rids[i] == rid and self.alive[i]:
            self.alive[i] = False
            self.dead += 1
            self.count -= 1
            self.total -= float(self.lengths[i])

    def add(self, row: TextRow) -> None:
        self.remove(row[0])
        length, weighted = _document(row, self.ids)
        self.fresh[row[0]] = (length, weighted)
        for word, tf in weighted.items():
            self.fresh_by_word.setdefault(word, {})[row[0]] = tf
        self.count += 1
        self.total += length

    def frequency(self, word: str) -> int:
        """Live rows holding the word."""
        found = len(self.fresh_by_word.get(word, ()))
        at = self.vocab.get(word)
        if at is not None:
            start, end = int(self.offsets[at]), int(self.offsets[at + 1])
            if self.dead:
                found += int(np.count_nonzero(self.alive[self.post_doc[start:end]]))
            else:
                found += end - start
        return found

    def score(self, idf: dict[str, float], avg_length: float) -> tuple[I64, F64]:
        """(rid, BM25) of the live rows holding any of the words."""
        docs: list[I32] = []
        parts: list[npt.NDArray[np.floating[Any]]] = []
        fresh: dict[int, float] = {}
        for word, weight in idf.items():
            at = self.vocab.get(word)
            if at is not None:
                start, end = int(self.offsets[at]), int(self.offsets[at + 1])
                doc, freq = self.post_doc[start:end], self.post_tf[start:end]
                if self.dead:
                    keep = self.alive[doc]
                    doc, freq = doc[keep], freq[keep]
                norm = K1 * (1.0 - B + B * self.lengths[doc] / avg_length)
                docs.append(doc)
                parts.append((weight * (K1 + 1.0)) * freq / (freq + norm))
            for rid, tf in self.fresh_by_word.get(word, {}).items():
                damp = K1 * (1.0 - B + B * self.fresh[rid][0] / avg_length)
                fresh[rid] = fresh.get(rid, 0.0) + weight * (K1 + 1.0) * tf / (tf + damp)
        rids: I64 = np.empty(0, dtype=np.int64)
        scores: F64 = np.empty(0, dtype=np.float64)
        if docs:  # summed per row (every share is positive: a row that holds a word scores)
            sums = np.bincount(
                np.concatenate(docs), weights=np.concatenate(parts), minlength=len(self.rids)
            )
            held = np.flatnonzero(sums)
            rids, scores = self.rids[held], sums[held].astype(np.float64)
        if fresh:
            rids = np.concatenate([rids, np.fromiter(fresh.keys(), np.int64, len(fresh))])
            extra = np.fromiter(fresh.values(), np.float64, len(fresh))
            scores = np.concatenate([scores, extra])
        return rids, scores


def idf(rows: int, holding: int) -> float:
    """FTS5's idf: log((N - n + 0.5) / (n + 0.5)), floored at 1e-6."""
    value = math.log((rows - holding + 0.5) / (holding + 0.5)) if rows > holding else 0.0
    return max(value, 1e-6)


def rank(lexicons: Sequence[Lexicon], found: Sequence[str]) -> tuple[I64, F64]:
    """(rid, BM25) of the rows of these partitions holding any of the query's words (one per
    term: `term_words`), with the partitions' statistics taken together (a scope of several
    partitions is one collection); by row id, mostly (each base's rows are, then its changed
    rows)."""
    rows = sum(lex.count for lex in lexicons)
    if not found or not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    avg_length = max(sum(lex.total for lex in lexicons) / rows, 1e-9)
    weights: dict[str, float] = {}
    for word in found:  # a word of two terms adds its share twice (linear in idf)
        if word not in weights:
            weights[word] = 0.0
        weights[word] += idf(rows, sum(lex.frequency(word) for lex in lexicons))
    rids: list[I64] = []
    scores: list[F64] = []
    for lex in lexicons:
        r, s = lex.score(weights, avg_length)
        rids.append(r)
        scores.append(s)
    return np.concatenate(rids), np.concatenate(scores)


class Lexicons:
    """The kept partitions' indexes, least recently searched first, within BUDGET."""

    def __init__(self, budget: int = BUDGET, build_now: int = BUILD_NOW) -> None:
        self.budget = budget
        self.build_now = build_now
        self._kept: OrderedDict[ScopeKey, Lexicon] = OrderedDict()
        self._held = 0

    def __bool__(self) -> bool:
        return bool(self._kept)

    def get(self, key: ScopeKey) -> Lexicon | None:
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
        return found

    def put(self, key: ScopeKey, lexicon: Lexicon, keep: Iterable[ScopeKey] = ()) -> None:
        """Keep an index, dropping the least recently searched ones past the budget, never those
        of `keep` (the rest of the scope being ranked: dropping them would rebuild them next)."""
        self.drop(key)
        self._kept[key] = lexicon
        self._held += lexicon.size
        spared = {key, *keep}
        for oldest in [k for k in self._kept if k not in spared]:
            if self._held <= self.budget:
                break
            self.drop(oldest)

    def drop(self, key: ScopeKey) -> None:
        found = self._kept.pop(key, None)
        if found is not None:
            self._held -= found.size

    def clear(self) -> None:
        self._kept.clear()
        self._held = 0

    def apply(self, removed: Iterable[tuple[int, ScopeKey]], added: Iterable[
        tuple[ScopeKey, TextRow]]) -> None:  # fmt: skip
        """Changed rows: each (rid, the partition it was in) taken out, each (partition, row)
        put in; an index changed past its base's worth is dropped (built again when searched)."""
        touched: set[ScopeKey] = set()
        changes: list[tuple[ScopeKey, int, TextRow | None]] = [
            (key, rid, None) for rid, key in removed
        ]
        changes += [(key, row[0], row) for key, row in added]
        for key, rid, row in changes:
            lex = self._kept.get(key)
            if lex is None:
                continue
            self._held -= lex.size
            if row is None:
                lex.remove(rid)
            else:
                lex.add(row)
            self._held += lex.size
            touched.add(key)
        for key in touched:
            lex = self._kept.get(key)
            if lex is not None and lex.stale:
                self.drop(key)
