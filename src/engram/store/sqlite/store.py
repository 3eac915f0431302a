"""The embedded store: one SQLite file in WAL mode, safe for many threads and processes.

All writes go through one writer thread per store, each change set in one `BEGIN IMMEDIATE`
transaction; reads use a small pool of threads with their own connections. Several stores (in one
process or in many) may open the same file: SQLite's locking orders their writes, and each one's
vector index replays the shared `index_log` before it searches.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from engram.core.filters import And, Cond, Node, scope_of
from engram.core.text import fts_match
from engram.errors import (
    ConflictError,
    DimensionMismatchError,
    StoreError,
)
from engram.store.base import (
    Candidate,
    Delete,
    HistoryRecord,
    Hit,
    Insert,
    LinkGraph,
    MemoryRecord,
    Operation,
    Page,
    SaveMessages,
    Update,
    Vector,
)
from engram.store.sqlite import graph, writes
from engram.store.sqlite.ann import build_ivf
from engram.store.sqlite.compile import compile_where
from engram.store.sqlite.rows import (
    COLUMNS,
    HISTORY_COLUMNS,
    INDEX_COLUMNS,
    SAME_SCOPE,
    chunked,
    icontains,
    record,
)
from engram.store.sqlite.rows import history as history_row
from engram.store.sqlite.schema import migrate
from engram.store.sqlite.vectors import (
    ANN_THRESHOLD,
    ScopeKey,
    VectorIndex,
    days_since_epoch,
    rows_from,
)

T = TypeVar("T")
_BM25 = "bm25(memories_fts, 1.0, 0.5)"  # text, speaker
KEYWORD_FETCH = 5000  # full-text matches read per query; past it, candidates are scored directly
logger = logging.getLogger("engram.store.sqlite")


def _not_expired(today: str, params: list[Any]) -> str:
    params.append(today)
    return "(m.expiration_date IS NULL OR m.expiration_date >= ?)"


def _pure_scope(node: Node | None) -> bool:
    """True when the filter is nothing but equality on scope ids (the vector index handles it)."""
    if node is None:
        return True
    conds = node.children if isinstance(node, And) else (node,)
    scope = scope_of(node)
    return all(isinstance(c, Cond) for c in conds) and len(conds) == len(scope)


class SQLiteStore:
    """A `Store` in one SQLite database file."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 60.0,
        readers: int = 2,
        ann_threshold: int | None = ANN_THRESHOLD,
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._busy_timeout = busy_timeout
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="engram-sqlite-writer")
        self._builder = ThreadPoolExecutor(1, thread_name_prefix="engram-ann-builder")
        self._ann_threshold = ann_threshold
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="engram-sqlite-reader")
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._index: VectorIndex | None = None
        self._index_lock = threading.Lock()
        self._index_seq = 0
        self._index_epoch: str | None = None
        self._writes_since_prune = 0
        self._closed = False

    # -- plumbing -----------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.create_function("engram_icontains", 2, icontains, deterministic=True)
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, self._guarded, fn, args)

    def _guarded(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            return fn(self._conn(), *args)
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"the change conflicts with stored data: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite error on {self.path}: {exc}") from exc

    def _write(self, conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self, *, dims: int, model_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._run(self._writer, self._open, dims, model_id)
        self._index = VectorIndex(dims, ann_threshold=self._ann_threshold)
        # Load the vector index in the background now: the first search (which also has to load
        # the embedding model) finds it ready or waits on the lock for the rest.
        self._readers.submit(self._guarded, self._warm_index, ())

    def _warm_index(self, conn: sqlite3.Connection) -> None:
        with self._index_lock:
            self._sync_index(conn)

    def _open(self, conn: sqlite3.Connection, dims: int, model_id: str) -> None:
        """Switch to WAL, migrate, record the embedder. Retried on lock errors: switching a new
        file to WAL needs an exclusive lock, and SQLite answers BUSY at once, without waiting,
        where waiting could deadlock (two connections opening the same new file together)."""
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.01
        while True:
            try:
                self._open_once(conn, dims, model_id)
                return
            except sqlite3.OperationalError as exc:
                locked = "locked" in str(exc) or "busy" in str(exc)
                if not locked or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _open_once(self, conn: sqlite3.Connection, dims: int, model_id: str) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: could not switch to WAL mode (got {mode!r})")
        migrate(conn)

        def record_embedder(c: sqlite3.Connection) -> None:
            meta = dict(c.execute("SELECT key, value FROM meta").fetchall())
            if "dims" not in meta:
                c.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("dims", str(dims)), ("model_id", model_id), ("epoch", uuid.uuid4().hex)],
                )
                return
            if int(meta["dims"]) != dims or meta["model_id"] != model_id:
                raise DimensionMismatchError(
                    f"{self.path} holds {meta['dims']}-dimensional vectors from "
                    f"{meta['model_id']!r}, but the configured embedder is {model_id!r} with "
                    f"{dims} dimensions; use the original embedder or another data directory"
                )

        self._write(conn, record_embedder)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._builder.shutdown(wait=True)
        with self._conns_lock:
            for conn in self._all_conns:
                conn.close()
            self._all_conns.clear()

    # -- writes ---------------------------------------------------------------------------------

    async def apply(self, operations: Sequence[Operation]) -> list[MemoryRecord | None]:
        if not operations:
            return []
        result = await self._run(self._writer, self._apply, list(operations))
        self._writes_since_prune += len(operations)
        if self._writes_since_prune > 5_000:
            self._writes_since_prune = 0
            await self._run(self._writer, lambda conn: self._write(conn, writes.prune_log))
        return result

    def _apply(
        self, conn: sqlite3.Connection, operations: list[Operation]
    ) -> list[MemoryRecord | None]:
        def body(c: sqlite3.Connection) -> list[MemoryRecord | None]:
            if any(isinstance(op, Insert) and op.dedupe is not None for op in operations):
                with self._index_lock:  # we hold the write lock: this sees every commit
                    self._sync_index(c, in_transaction=True)
            out: list[MemoryRecord | None] = []
            for op in operations:
                if isinstance(op, Insert):
                    out.append(None if self._duplicate(c, op) else writes.insert(c, op))
                elif isinstance(op, Update):
                    out.append(writes.update(c, op))
                elif isinstance(op, Delete):
                    out.append(writes.delete(c, op))
                elif isinstance(op, SaveMessages):
                    writes.save_messages(c, op)
                    out.append(None)
                else:
                    out.append(None)
            for op in operations:
                target = out[op.memory] if isinstance(op, LinkGraph) else None
                if isinstance(op, LinkGraph) and target is not None:
                    op.added, op.ended = graph.link(c, op, target.id)
            return out

        return self._write(conn, body)

    def _duplicate(self, c: sqlite3.Connection, op: Insert) -> bool:
        if op.dedupe is None:
            return False
        if writes.same_text_stored(c, op.record):
            return True
        r = op.record
        assert self._index is not None
        with self._index_lock:
            best = self._index.search_exact_scope(
                np.ascontiguousarray(op.embedding, dtype=np.float32),
                (r.user_id, r.agent_id, r.run_id),
            )
        return best is not None and best >= op.dedupe

    async def recent_messages(
        self, scope: dict[str, str | None], limit: int
    ) -> list[tuple[str, str | None, str]]:
        key = (scope.get("user_id"), scope.get("agent_id"), scope.get("run_id"))
        rows = await self._run(
            self._readers,
            lambda c: c.execute(
                f"SELECT role, name, content FROM messages WHERE {SAME_SCOPE} "
                "ORDER BY id DESC LIMIT ?",
                (*key, limit),
            ).fetchall(),
        )
        return [(r[0], r[1], r[2]) for r in reversed(rows)]

    async def relations(
        self, scope: dict[str, str], *, include_ended: bool = False
    ) -> list[dict[str, Any]]:
        return await self._run(
            self._readers, lambda c: graph.relations(c, scope, include_ended=include_ended)
        )

    async def neighbourhood(
        self, scope: dict[str, str], query: str
    ) -> tuple[dict[str, float], list[dict[str, str]]]:
        return await self._run(self._readers, lambda c: graph.neighbourhood(c, scope, query))

    async def profile(self, scope: dict[str, str]) -> dict[str, dict[str, Any]]:
        return await self._run(self._readers, lambda c: graph.profile(c, scope))

    async def profile_history(self, scope: dict[str, str]) -> list[dict[str, Any]]:
        return await self._run(self._readers, lambda c: graph.profile_changes(c, scope))

    async def delete_where(self, where: Node, *, at: str) -> int:
        return await self._run(
            self._writer,
            lambda conn: self._write(conn, lambda c: writes.delete_matching(c, where, at)),
        )

    async def restore(self, memories: Sequence[Insert], history: Sequence[HistoryRecord]) -> None:
        await self._run(
            self._writer,
            lambda conn: self._write(
                conn, lambda c: writes.restore(c, list(memories), list(history))
            ),
        )

    async def reset(self) -> None:
        await self._run(self._writer, lambda conn: self._write(conn, writes.reset))

    # -- reads ----------------------------------------------------------------------------------

    async def get(self, memory_id: str) -> MemoryRecord | None:
        return (await self.get_many([memory_id])).get(memory_id)

    async def get_many(self, memory_ids: Sequence[str]) -> dict[str, MemoryRecord]:
        return await self._run(self._readers, self._get_many, list(memory_ids))

    def _get_many(self, conn: sqlite3.Connection, ids: list[str]) -> dict[str, MemoryRecord]:
        found: dict[str, MemoryRecord] = {}
        for chunk, marks in chunked(ids):
            for row in conn.execute(f"SELECT {COLUMNS} FROM memories WHERE id IN ({marks})", chunk):
                found[row[0]] = record(row)
        return found

    async def list_memories(
        self,
        where: Node | None,
        *,
        today: str,
        show_expired: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> Page:
        return await self._run(self._readers, self._list, where, today, show_expired, offset, limit)

    def _list(
        self,
        conn: sqlite3.Connection,
        where: Node | None,
        today: str,
        show_expired: bool,
        offset: int,
        limit: int | None,
    ) -> Page:
        sql, params = compile_where(where)
        if not show_expired:
            sql = f"{sql} AND {_not_expired(today, params)}"
        conn.execute("BEGIN")  # one snapshot for the count and the rows
        try:
            total = conn.execute(f"SELECT count(*) FROM memories m WHERE {sql}", params).fetchone()[
                0
            ]
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM memories m WHERE {sql} "
                "ORDER BY m.created_at DESC, m.rid DESC LIMIT ? OFFSET ?",
                [*params, -1 if limit is None else limit, offset],
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        return Page([record(r) for r in rows], total)

    async def history(self, memory_id: str) -> list[HistoryRecord]:
        return await self._run(self._readers, self._history_rows, memory_id)

    def _history_rows(self, conn: sqlite3.Connection, memory_id: str) -> list[HistoryRecord]:
        rows = conn.execute(
            f"SELECT {HISTORY_COLUMNS} FROM history WHERE memory_id = ? ORDER BY rowid",
            (memory_id,),
        ).fetchall()
        return [history_row(r) for r in rows]

    async def history_many(self, memory_ids: Sequence[str]) -> list[HistoryRecord]:
        return await self._run(self._readers, self._history_many, list(memory_ids))

    def _history_many(self, conn: sqlite3.Connection, ids: list[str]) -> list[HistoryRecord]:
        rows: list[tuple[Any, ...]] = []
        for chunk, marks in chunked(ids):
            rows += conn.execute(
                f"SELECT rowid, {HISTORY_COLUMNS} FROM history WHERE memory_id IN ({marks})", chunk
            ).fetchall()
        return [history_row(r[1:]) for r in sorted(rows, key=lambda r: r[0])]

    async def count(self) -> int:
        return await self._run(
            self._readers, lambda c: int(c.execute("SELECT count(*) FROM memories").fetchone()[0])
        )

    # -- vector search --------------------------------------------------------------------------

    async def search(
        self,
        vector: Vector,
        where: Node | None,
        *,
        today: str,
        top_k: int,
        threshold: float | None = None,
        show_expired: bool = False,
    ) -> list[Hit]:
        return await self._run(
            self._readers, self._search, vector, where, today, top_k, threshold, show_expired
        )

    def _search(
        self,
        conn: sqlite3.Connection,
        vector: Vector,
        where: Node | None,
        today: str,
        top_k: int,
        threshold: float | None,
        show_expired: bool,
    ) -> list[Hit]:
        if top_k <= 0:
            return []
        allowed = None
        if not _pure_scope(where):
            sql, params = compile_where(where)
            rids = conn.execute(f"SELECT m.rid FROM memories m WHERE {sql}", params).fetchall()
            allowed = np.sort(np.fromiter((r[0] for r in rids), dtype=np.int64, count=len(rids)))
        query = np.ascontiguousarray(vector, dtype=np.float32)
        day = -(2**31) if show_expired else days_since_epoch(today)
        with self._index_lock:
            self._sync_index(conn)
            assert self._index is not None
            found = self._index.search(query, scope_of(where), k=top_k, today=day, allowed=allowed)
            wanted = self._index.wanted_builds()
        for scope, part in wanted:
            self._builder.submit(self._build_ann, scope, part)
        if threshold is not None:
            found = [(rid, s) for rid, s in found if max(0.0, s) >= threshold]
        records = self._by_rid(conn, [rid for rid, _ in found])
        return [
            Hit(records[rid], float(min(1.0, max(0.0, s)))) for rid, s in found if rid in records
        ]

    async def candidates(
        self,
        vector: Vector | None,
        terms: Sequence[str],
        where: Node | None,
        *,
        today: str,
        n_vector: int,
        n_keyword: int,
        show_expired: bool = False,
        extra_ids: Sequence[str] = (),
    ) -> list[Candidate]:
        return await self._run(
            self._readers, self._candidates, vector, list(terms), where, today, n_vector,
            n_keyword, show_expired, list(extra_ids),
        )  # fmt: skip

    def _candidates(
        self,
        conn: sqlite3.Connection,
        vector: Vector | None,
        terms: list[str],
        where: Node | None,
        today: str,
        n_vector: int,
        n_keyword: int,
        show_expired: bool,
        extra_ids: list[str],
    ) -> list[Candidate]:
        query = None if vector is None else np.ascontiguousarray(vector, dtype=np.float32)
        cosine: dict[int, float] = {}
        if query is not None and n_vector > 0:
            cosine = dict(self._vector_hits(conn, query, where, today, n_vector, show_expired))
        matches, complete = self._keyword_hits(conn, terms, where, today, show_expired)
        keyword = dict(list(matches.items())[:n_keyword])
        extra = self._matching_ids(conn, extra_ids, where, today, show_expired)
        for rid in {*cosine, *extra}:
            if rid in matches:
                keyword[rid] = matches[rid]
        if terms and not complete:  # more matches than fetched: score the rest directly
            missing = [rid for rid in {*cosine, *extra} if rid not in matches]
            keyword.update(self._keyword_scores(conn, terms, missing))
        if query is not None:
            with self._index_lock:
                assert self._index is not None
                others = [r for r in {*keyword, *extra} if r not in cosine]
                cosine.update(self._index.cosines(query, others))
        found: list[Candidate] = []
        for chunk, marks in chunked(list({*cosine, *keyword, *extra})):
            rows = conn.execute(
                f"SELECT rid, id, created_at, feedback FROM memories WHERE rid IN ({marks})", chunk
            ).fetchall()
            found += [
                Candidate(r[1], r[2], float(r[3]), cosine.get(r[0], 0.0), keyword.get(r[0], 0.0))
                for r in rows
            ]
        return found

    def _vector_hits(
        self,
        conn: sqlite3.Connection,
        query: npt.NDArray[np.float32],
        where: Node | None,
        today: str,
        k: int,
        show_expired: bool,
    ) -> list[tuple[int, float]]:
        allowed = None
        if not _pure_scope(where):
            sql, params = compile_where(where)
            rids = conn.execute(f"SELECT m.rid FROM memories m WHERE {sql}", params).fetchall()
            allowed = np.sort(np.fromiter((r[0] for r in rids), dtype=np.int64, count=len(rids)))
        day = -(2**31) if show_expired else days_since_epoch(today)
        with self._index_lock:
            self._sync_index(conn)
            assert self._index is not None
            found = self._index.search(query, scope_of(where), k=k, today=day, allowed=allowed)
            wanted = self._index.wanted_builds()
        for scope, part in wanted:
            self._builder.submit(self._build_ann, scope, part)
        return found

    def _matching_ids(
        self,
        conn: sqlite3.Connection,
        ids: list[str],
        where: Node | None,
        today: str,
        show_expired: bool,
    ) -> set[int]:
        """Row ids of the given memory ids that pass the filters (and expiry)."""
        found: set[int] = set()
        for chunk, marks in chunked(ids):
            sql, params = compile_where(where)
            if not show_expired:
                sql = f"{sql} AND {_not_expired(today, params)}"
            rows = conn.execute(
                f"SELECT m.rid FROM memories m WHERE m.id IN ({marks}) AND {sql}", [*chunk, *params]
            ).fetchall()
            found.update(int(r[0]) for r in rows)
        return found

    def _keyword_hits(
        self,
        conn: sqlite3.Connection,
        terms: list[str],
        where: Node | None,
        today: str,
        show_expired: bool,
    ) -> tuple[dict[int, float], bool]:
        """Matching rows, best BM25 first (at most KEYWORD_FETCH), and whether that is all."""
        if not terms:
            return {}, True
        sql, params = compile_where(where)
        if not show_expired:
            sql = f"{sql} AND {_not_expired(today, params)}"
        rows = conn.execute(
            f"SELECT memories_fts.rowid, -{_BM25} FROM memories_fts "
            f"JOIN memories m ON m.rid = memories_fts.rowid WHERE memories_fts MATCH ? AND {sql} "
            f"ORDER BY {_BM25} LIMIT ?",
            [fts_match(terms), *params, KEYWORD_FETCH + 1],
        ).fetchall()
        complete = len(rows) <= KEYWORD_FETCH
        return {int(r[0]): float(r[1]) for r in rows[:KEYWORD_FETCH]}, complete

    def _keyword_scores(
        self, conn: sqlite3.Connection, terms: list[str], rids: list[int]
    ) -> dict[int, float]:
        out: dict[int, float] = {}
        for chunk, marks in chunked(rids):
            rows = conn.execute(
                f"SELECT rowid, -{_BM25} FROM memories_fts "
                f"WHERE memories_fts MATCH ? AND rowid IN ({marks})",
                [fts_match(terms), *chunk],
            ).fetchall()
            out.update((int(r[0]), float(r[1])) for r in rows)
        return out

    def ann_ready(self, scope: dict[str, str]) -> bool:
        """Whether every partition of the scope has an approximate index installed."""
        with self._index_lock:
            parts = self._index.partitions_for(scope) if self._index else []
            return bool(parts) and all(p.ivf is not None for p in parts)

    def _build_ann(self, scope: ScopeKey, part: Any) -> None:
        """Build a partition's IVF index outside the lock (positions below `size` never change),
        then install it under the lock."""
        ivf = None
        try:
            ivf = build_ivf(part.vectors[: part.size])
        except Exception:  # the exact search keeps working; try again on a later search
            logger.exception("building the approximate index failed")
        with self._index_lock:
            if self._index is not None:
                self._index.install(scope, part, ivf)

    def _by_rid(self, conn: sqlite3.Connection, rids: list[int]) -> dict[int, MemoryRecord]:
        out: dict[int, MemoryRecord] = {}
        for chunk, marks in chunked(rids):
            for row in conn.execute(
                f"SELECT rid, {COLUMNS} FROM memories WHERE rid IN ({marks})", chunk
            ):
                out[row[0]] = record(row[1:])
        return out

    def _sync_index(self, conn: sqlite3.Connection, *, in_transaction: bool = False) -> None:
        """Bring the vector index up to the database's current state (caller holds the lock)."""
        assert self._index is not None
        if not in_transaction:
            conn.execute("BEGIN")
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            top = conn.execute("SELECT coalesce(max(seq), 0) FROM index_log").fetchone()[0]
            floor = int(meta.get("log_floor", 0))
            if meta.get("epoch") != self._index_epoch or self._index_seq < floor:
                meta_sql = INDEX_COLUMNS.removesuffix(", embedding")
                rows = conn.execute(f"SELECT {meta_sql} FROM memories ORDER BY rid").fetchall()
                blobs = conn.execute("SELECT embedding FROM memories ORDER BY rid")
                self._index.load(rows, (b[0] for b in blobs))
            elif top > self._index_seq:
                changed = sorted(
                    {
                        r[0]
                        for r in conn.execute(
                            "SELECT rid FROM index_log WHERE seq > ?", (self._index_seq,)
                        )
                    }
                )
                present: set[int] = set()
                for chunk, marks in chunked(changed):
                    rows = conn.execute(
                        f"SELECT {INDEX_COLUMNS} FROM memories WHERE rid IN ({marks})", chunk
                    ).fetchall()
                    present.update(r[0] for r in rows)
                    self._index.upsert(rows_from(rows))
                self._index.remove(rid for rid in changed if rid not in present)
        finally:
            if not in_transaction:
                conn.execute("COMMIT")
        self._index_seq = top
        self._index_epoch = meta.get("epoch")
