"""The process's vector index over one database: kept current from `index_log`, searched under a
lock, with approximate (IVF) indexes for large scopes built in the background."""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engram.core.filters import Node, scope_of
from engram.errors import StoreError
from engram.store.sqlite import lexicon, snapshot
from engram.store.sqlite.compile import compile_where, is_pure_scope
from engram.store.sqlite.rows import INDEX_COLUMNS, chunked
from engram.store.sqlite.transaction import atomic
from engram.store.sqlite.vectors import (
    ANN_THRESHOLD,
    ScopeKey,
    VectorIndex,
    build,
    days_since_epoch,
    rows_from,
)

logger = logging.getLogger("engram.store.sqlite")
F32 = npt.NDArray[np.float32]
# The index is saved beside the database (`snapshot.py`) when it holds at least SNAPSHOT_MIN rows
# and a process loaded or replayed at least a twentieth of them since the file was written (or
# SNAPSHOT_MIN): below that size, reading the vectors from SQLite takes well under a second.
SNAPSHOT_MIN = 50_000
FOLLOW_EVERY = 20_000  # rows this process writes between syncs of its index (see `wrote`)
TEXT_COLUMNS = "rid, memory, actor_id, date_words"  # what lexicon.Lexicon reads of a row


class IndexKeeper:
    def __init__(
        self, ann_threshold: int | None = ANN_THRESHOLD, snapshot_min: int = SNAPSHOT_MIN,
        lexicon_budget: int = lexicon.BUDGET,
    ) -> None:  # fmt: skip
        self._ann_threshold = ann_threshold
        self._snapshot_min = snapshot_min
        self._saved_at: Path | None = None  # where the index is saved; None: never
        self._unsaved = 0  # rows loaded or replayed since the saved index
        self._written = 0  # rows this process wrote since its index last followed them
        self._index: VectorIndex | None = None
        self._lock = threading.Lock()
        self._seq = 0
        self._epoch: str | None = None
        # Per connection (by id; they live as long as the store): what it had seen at its last
        # sync, with the index epoch then.
        self._marks: dict[int, tuple[tuple[int, int], str | None]] = {}
        # Moves on whenever a connection sees the database changed since its last look: results
        # computed after reading it are current for as long as it has not moved.
        self._generation = 0
        self._builder = ThreadPoolExecutor(1, thread_name_prefix="engram-ann-builder")
        # Full-text indexes of the partitions searched (lexicon.py), kept current as the vectors.
        self._lexicons = lexicon.Lexicons(lexicon_budget)
        self._indexing: set[ScopeKey] = set()  # partitions being indexed on the builder thread
        self._connect: Callable[[], sqlite3.Connection] | None = None

    def open(
        self, dims: int, saved_at: Path | None = None,
        connect: Callable[[], sqlite3.Connection] | None = None,
    ) -> None:  # fmt: skip
        """`connect`: the calling thread's connection to the database (the builder thread
        indexes large scopes' text through it)."""
        self._index = VectorIndex(dims, ann_threshold=self._ann_threshold)
        self._saved_at = saved_at
        self._connect = connect

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            raise StoreError("the store is not open")
        return self._index

    def warm(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            self.sync(conn)

    def generation(self, conn: sqlite3.Connection) -> int:
        """The database's generation as of now (syncing first): a result read after this call
        and kept under it is current while a later call returns the same number."""
        with self._lock:
            self.sync(conn)
            return self._generation

    def nearest(
        self,
        conn: sqlite3.Connection,
        query: F32,
        where: Node | None,
        today: str,
        k: int,
        show_expired: bool,
    ) -> list[tuple[int, float]]:
        """(rid, cosine) of the `k` most similar rows passing the filters, best first."""
        if k <= 0:
            return []
        allowed = None
        if not is_pure_scope(where):
            sql, params = compile_where(where)
            rids = conn.execute(f"SELECT m.rid FROM memories m WHERE {sql}", params).fetchall()
            allowed = np.sort(np.fromiter((r[0] for r in rids), dtype=np.int64, count=len(rids)))
            if not len(allowed):  # nothing passes the filters: no vector to score
                return []
        day = -(2**31) if show_expired else days_since_epoch(today)
        with self._lock:
            self.sync(conn)
            found = self.index.search(query, scope_of(where), k=k, today=day, allowed=allowed)
            wanted = self.index.wanted_builds(scope_of(where))
        for scope, part in wanted:
            self._builder.submit(self._build, scope, part)
        return found

    def filter_scope(
        self, conn: sqlite3.Connection, rows: list[tuple[int, float]], where: Node | None,
        today: str, show_expired: bool,
    ) -> list[tuple[int, float]]:  # fmt: skip
        """The rows of a pure-scope filter's scope (and unexpired), from the synced index."""
        day = -(2**31) if show_expired else days_since_epoch(today)
        with self._lock:
            self.sync(conn)
            keep = self.index.in_scope((rid for rid, _ in rows), scope_of(where), day)
        return [row for row, kept in zip(rows, keep, strict=True) if kept]

    def ranked(
        self, conn: sqlite3.Connection, scope: dict[str, str], terms: Sequence[str]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
        """(rid, BM25) of the scope's rows holding any of the terms (lexicon.py: the scope's own
        statistics), expired rows included; None when the scope's text is not indexed here (more
        rows than half the budget, or being indexed on the builder thread meanwhile) or a term
        is several words (FTS5 matches it as a phrase)."""
        words = lexicon.term_words(terms)
        if words is None:
            return None
        with self._lock:
            self.sync(conn)
            sizes = self.index.sizes_for(scope)
            if 2 * sum(sizes.values()) > self._lexicons.budget:
                return None
            kept = {key: self._lexicons.get(key) for key in sizes}
            missing = [key for key, found in kept.items() if found is None]
            if sum(sizes[key] for key in missing) > self._lexicons.build_now:
                later = [key for key in missing if key not in self._indexing]
                if later and self._connect is not None:
                    self._indexing.update(later)
                    self._builder.submit(self._index_text, later)
                return None
            if missing:
                # Read in the snapshot the index is brought to: an index holds exactly the rows
                # the vectors do, and the change log moves both on together.
                with atomic(conn, immediate=False):
                    self._sync(conn, in_transaction=True)
                    for key in missing:
                        kept[key] = built = lexicon.Lexicon(_text_rows(conn, key), _ids(key))
                        self._lexicons.put(key, built, keep=kept.keys())
            return lexicon.rank([found for found in kept.values() if found is not None], words)

    def _index_text(self, keys: list[ScopeKey]) -> None:
        """Index large partitions' text on the builder thread: read in one snapshot (with the
        change log's position then) and built outside the lock, then, under it, brought to the
        position of the vector index synced in a newer snapshot."""
        try:
            if self._connect is None:
                return
            conn = self._connect()
            for key in keys:
                with atomic(conn, immediate=False):
                    at = conn.execute("SELECT coalesce(max(seq), 0) FROM index_log").fetchone()[0]
                    built = lexicon.Lexicon(_text_rows(conn, key), _ids(key))
                with self._lock, atomic(conn, immediate=False):
                    epoch = self._epoch
                    self._sync(conn, in_transaction=True)
                    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                    if self._epoch != epoch or epoch is None or at < int(meta.get("log_floor", 0)):
                        continue  # reloaded, or the log no longer reaches back: a search retries
                    self._lexicons.put(key, built, keep=keys)
                    removed, added = self._text_changes(conn, at, self._seq)
                    self._lexicons.apply([(rid, key) for rid in removed], added)  # (idempotent)
        except Exception:  # FTS5 keeps ranking the scope; a later search tries again
            logger.exception("indexing a scope's text failed")
        finally:
            with self._lock:
                self._indexing.difference_update(keys)

    def _text_changes(
        self, conn: sqlite3.Connection, after: int, upto: int
    ) -> tuple[list[int], list[tuple[ScopeKey, lexicon.TextRow]]]:
        """Rows changed in the log between two positions: every one, and those still present
        with their partition and text."""
        log = conn.execute(
            "SELECT DISTINCT rid FROM index_log WHERE seq > ? AND seq <= ?", (after, upto)
        )
        changed = sorted(r[0] for r in log)
        return changed, _text_of(conn, changed)

    def cosines(self, query: F32, rids: list[int]) -> dict[int, float]:
        with self._lock:
            return self.index.cosines(query, rids)

    def sync_for_write(self, conn: sqlite3.Connection) -> None:
        """Sync at the start of a write transaction, before it writes anything: the caller holds
        SQLite's write lock, so this sees every committed row and none of its own (which a
        rollback could take back)."""
        with self._lock:
            self.sync(conn, in_transaction=True)

    def wrote(self, count: int) -> bool:
        """Count rows this process wrote; whether its index should follow them now (`follow`):
        a process that writes without searching would otherwise fall behind the change log's
        reach, and have to read every vector again to save its index at close."""
        self._written += count
        return self._written >= FOLLOW_EVERY and self._epoch is not None

    def follow(self, conn: sqlite3.Connection) -> None:
        """Sync after writes, outside their transaction (see `wrote`)."""
        with self._lock:
            self._written = 0
            if self._same_dims(conn):
                self.sync(conn)

    def _same_dims(self, conn: sqlite3.Connection) -> bool:
        """Whether the database's vectors are this index's size (another process may have
        taken an empty store over with another embedder)."""
        dims = conn.execute("SELECT value FROM meta WHERE key = 'dims'").fetchone()
        return dims is not None and int(dims[0]) == self.index.dims

    def best_in_scope(self, query: F32, scope: ScopeKey) -> float | None:
        """The best cosine among the live rows of exactly this scope."""
        with self._lock:
            return self.index.search_exact_scope(query, scope)

    def ann_ready(self, scope: dict[str, str]) -> bool:
        """Whether every partition of the scope has an approximate index installed."""
        with self._lock:
            parts = self._index.partitions_for(scope) if self._index else []
            return bool(parts) and all(p.ivf is not None for p in parts)

    def shutdown(self, conn: sqlite3.Connection | None = None) -> None:
        """Stop building; with a connection, save the index if it is worth it (see
        SNAPSHOT_MIN). A failure to save is logged: the next process reads the database."""
        self._builder.shutdown(wait=True)
        if conn is None:
            return
        with self._lock:
            try:
                self._save(conn)
            except Exception as exc:  # a cache: the next process reads the database instead
                logger.warning("could not save the vector index beside the database: %s", exc)

    def _save(self, conn: sqlite3.Connection) -> None:
        index, path = self._index, self._saved_at
        if index is None or path is None or self._epoch is None:
            return
        logged = conn.execute("SELECT coalesce(max(seq), 0) FROM index_log").fetchone()[0]
        if max(len(index), self._unsaved, logged - self._seq) < self._snapshot_min:
            return  # small, and little changed since this index: the next process reads it
        if not self._same_dims(conn):  # another embedder took the store over
            return
        self.sync(conn)  # this process's last writes too (an import, a load of one call)
        rows = len(index)
        if rows < self._snapshot_min or self._unsaved < max(self._snapshot_min, rows // 20):
            return
        token = uuid.uuid4().hex
        snapshot.write(path, token=token, epoch=self._epoch, seq=self._seq, dims=index.dims,
                       parts=index.partitions())  # fmt: skip
        conn.execute("PRAGMA busy_timeout = 2000")  # closing: not a minute behind a writer
        with atomic(conn):  # the database names the file it goes with (see snapshot.py)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('vectors', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (token,),
            )
        self._unsaved = 0

    def _saved(self, meta: dict[str, str], floor: int, top: int) -> snapshot.Snapshot | None:
        """The saved index, when the database names it and its log still reaches it."""
        if self._saved_at is None or "vectors" not in meta:
            return None
        found = snapshot.read(self._saved_at, self.index.dims)
        if found is None or found.token != meta["vectors"] or found.epoch != meta.get("epoch"):
            return None
        return found if floor <= found.seq <= top else None

    def _build(self, scope: ScopeKey, part: Any) -> None:
        """Build a partition's IVF index and lay out its rows for it outside the lock (positions
        below `size` never change), then install both under the lock."""
        built = None
        try:
            built = build(part)
        except Exception:  # the exact search keeps working; try again on a later search
            logger.exception("building the approximate index failed")
        with self._lock:
            if self._index is None:
                return
            if self._index.install(scope, part, built) and built is not None:
                self._unsaved += built.ivf.built  # a layout worth saving, as that many rows

    def sync(self, conn: sqlite3.Connection, *, in_transaction: bool = False) -> None:
        """Bring the index up to the database's current state (the caller holds the lock).

        Outside a transaction, a connection that has seen no commit since its last sync (SQLite's
        `data_version` counts other connections' commits, `total_changes` its own) skips the
        read: the index is at least as new as it was then."""
        if not in_transaction:
            mark = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
            if self._marks.get(id(conn)) == (mark, self._epoch):
                return
            self._generation += 1
            self._sync(conn, in_transaction=False)
            self._marks[id(conn)] = (mark, self._epoch)
            return
        self._sync(conn, in_transaction=True)

    def _sync(self, conn: sqlite3.Connection, *, in_transaction: bool) -> None:
        with nullcontext() if in_transaction else atomic(conn, immediate=False):
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            top = conn.execute("SELECT coalesce(max(seq), 0) FROM index_log").fetchone()[0]
            floor = int(meta.get("log_floor", 0))
            if meta.get("epoch") != self._epoch or self._seq < floor:
                saved = self._saved(meta, floor, top) if self._epoch is None else None
                self._lexicons.clear()
                if saved is not None:
                    self.index.load_snapshot(saved)
                    self._seq = saved.seq
                    if top > self._seq:
                        self._replay(conn)
                else:
                    meta_sql = INDEX_COLUMNS.removesuffix(", embedding")
                    rows = conn.execute(f"SELECT {meta_sql} FROM memories ORDER BY rid").fetchall()
                    blobs = conn.execute("SELECT embedding FROM memories ORDER BY rid")
                    self.index.load(rows, (b[0] for b in blobs))
                    self._unsaved = len(rows)
            elif top > self._seq:
                self._replay(conn)
        self._seq = top
        self._epoch = meta.get("epoch")

    def _replay(self, conn: sqlite3.Connection) -> None:
        log = conn.execute("SELECT rid FROM index_log WHERE seq > ?", (self._seq,))
        changed = sorted({r[0] for r in log})
        self._unsaved += len(changed)
        texts = bool(self._lexicons)  # the rows' text too, for the full-text indexes
        was = [(rid, self.index.scope_of_row(rid)) for rid in changed] if texts else []
        columns = INDEX_COLUMNS + (TEXT_COLUMNS.removeprefix("rid") if texts else "")
        width = len(INDEX_COLUMNS.split(","))  # then the text, less its rid
        read: list[tuple[ScopeKey, lexicon.TextRow]] = []
        present: set[int] = set()
        for chunk, marks in chunked(changed):
            rows = conn.execute(
                f"SELECT {columns} FROM memories WHERE rid IN ({marks})", chunk
            ).fetchall()
            present.update(r[0] for r in rows)
            if texts:
                read += [((r[1], r[2], r[3]), (r[0], *r[width:])) for r in rows]
            self.index.upsert(rows_from([r[:width] for r in rows]))
        self.index.remove(rid for rid in changed if rid not in present)
        if texts:  # out of the partitions the rows were in, into those they are in
            self._lexicons.apply([(rid, key) for rid, key in was if key is not None], read)


def _ids(key: ScopeKey) -> int:
    return sum(value is not None for value in key)


def _text_rows(conn: sqlite3.Connection, key: ScopeKey) -> list[lexicon.TextRow]:
    """A partition's rows as lexicon.Lexicon reads them. The ids it has are looked up in their
    indexes, the ones it lacks (NULL) only checked (`+`): left to itself, the planner may take
    `run_id IS NULL` to an index and read most of the table (0.7 s at 1M rows)."""
    tests = [
        f"{name} = ?" if value is not None else f"+{name} IS NULL"
        for name, value in zip(("user_id", "agent_id", "run_id"), key, strict=True)
    ]
    params = [value for value in key if value is not None]
    return conn.execute(
        f"SELECT {TEXT_COLUMNS} FROM memories WHERE {' AND '.join(tests)}", params
    ).fetchall()


def _text_of(conn: sqlite3.Connection, rids: list[int]) -> list[tuple[ScopeKey, lexicon.TextRow]]:
    """The given rows still present, with their partition and text."""
    found: list[tuple[ScopeKey, lexicon.TextRow]] = []
    for chunk, marks in chunked(rids):
        for row in conn.execute(
            f"SELECT user_id, agent_id, run_id, {TEXT_COLUMNS} FROM memories "
            f"WHERE rid IN ({marks})",
            chunk,
        ):
            found.append(((row[0], row[1], row[2]), (row[3], row[4], row[5], row[6])))
    return found
