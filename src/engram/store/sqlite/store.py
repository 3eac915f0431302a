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
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from engram.core.filters import Node
from engram.errors import (
    ConflictError,
    StoreError,
)
from engram.store.base import (
    Attached,
    Candidate,
    Claim,
    Delete,
    HistoryRecord,
    Hit,
    Insert,
    KeywordMatches,
    LinkGraph,
    MemoryRecord,
    Operation,
    Page,
    SaveMessages,
    Update,
    Vector,
)
from engram.store.sqlite import graph, lexicon, opening, snapshot, transfer, writes
from engram.store.sqlite import keyword as keyword_sql
from engram.store.sqlite.compile import compile_live
from engram.store.sqlite.indexing import SNAPSHOT_MIN, IndexKeeper
from engram.store.sqlite.rows import (
    COLUMNS,
    HISTORY_COLUMNS,
    SAME_SCOPE,
    candidates_of,
    chunked,
    icontains,
    record,
)
from engram.store.sqlite.rows import history as history_row
from engram.store.sqlite.transaction import atomic
from engram.store.sqlite.vectors import ANN_THRESHOLD
from engram.types import Relation

logger = logging.getLogger("engram.store.sqlite")
T = TypeVar("T")


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
        snapshot_min: int = SNAPSHOT_MIN,
        lexicon_budget: int = lexicon.BUDGET,
    ) -> None:
        """`lexicon_budget`: how much text (rows plus distinct words, about 100 bytes each) the
        process indexes in memory to rank full-text matches (lexicon.py); larger scopes, or
        every scope with 0, are ranked by SQLite's FTS5."""
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._busy_timeout = busy_timeout
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="engram-sqlite-writer")
        self._keeper = IndexKeeper(ann_threshold, snapshot_min, lexicon_budget)
        self._fulltext = keyword_sql.FullText(self._keeper)
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="engram-sqlite-reader")
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._writes_since_prune = 0
        self._closed = False
        self._embedder: tuple[str, str] = ("", "")  # (dims, model id) recorded at open

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
        with atomic(conn):
            return body(conn)

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self, *, dims: int, model_id: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot make the store's directory: {exc}") from exc
        await self._run(self._writer, self._open, dims, model_id)
        self._keeper.open(dims, snapshot.path_for(self.path), self._conn)
        # Load the vector index in the background now: the first search (which also has to load
        # the embedding model) finds it ready or waits on the lock for the rest.
        warming = self._readers.submit(self._guarded, self._keeper.warm, ())
        warming.add_done_callback(_log_failure)

    def _open(self, conn: sqlite3.Connection, dims: int, model_id: str) -> None:
        self._embedder = (str(dims), model_id)
        opening.open_database(conn, self.path, dims, model_id, self._busy_timeout)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        try:  # saves the vector index beside the database when that is worth it
            self._keeper.shutdown(self._conn() if self._embedder[0] else None)
        except sqlite3.Error as exc:
            logger.warning("could not save the vector index beside the database: %s", exc)
        with self._conns_lock:
            for conn in self._all_conns:
                conn.close()
            self._all_conns.clear()

    # -- writes ---------------------------------------------------------------------------------

    async def apply(
        self, operations: Sequence[Operation], *, cause: str | None = None
    ) -> list[MemoryRecord | None]:
        if not operations:
            return []
        result = await self._run(self._writer, self._apply, list(operations), cause)
        await self._after_writes(len(operations))
        return result

    async def _after_writes(self, count: int) -> None:
        """Keep the change log short, and this process's vector index near the database (after
        the commit: never under the write lock), so that a process that only writes (a bulk
        load, an import) can save its index at close without reading every vector again."""
        self._writes_since_prune += count
        if self._writes_since_prune > 5_000:
            self._writes_since_prune = 0
            await self._run(self._writer, lambda conn: self._write(conn, writes.prune_log))
        if self._keeper.wrote(count):
            await self._run(self._writer, self._keeper.follow)

    def _apply(
        self, conn: sqlite3.Connection, operations: list[Operation], cause: str | None = None
    ) -> list[MemoryRecord | None]:
        def body(c: sqlite3.Connection) -> list[MemoryRecord | None]:
            if any(_writes_vectors(op) for op in operations):
                self._check_embedder(c)
            if any(isinstance(op, Insert) and op.dedupe is not None for op in operations):
                self._keeper.sync_for_write(c)
            out: list[MemoryRecord | None] = []
            for op in operations:
                if isinstance(op, Insert):
                    duplicate = self._duplicate(c, op)
                    out.append(None if duplicate else writes.insert(c, op, cause=cause))
                elif isinstance(op, Update):
                    out.append(writes.update(c, op, cause))
                elif isinstance(op, Delete):
                    out.append(writes.delete(c, op, cause))
                elif isinstance(op, SaveMessages):
                    writes.save_messages(c, op)
                    out.append(None)
                else:
                    out.append(None)
            for op in operations:  # after the memories they link: their ids are known now
                if isinstance(op, LinkGraph) and (target := out[op.memory]) is not None:
                    op.added, op.ended = graph.link(c, op, target.id)
            for op in operations:  # last: it records what the others wrote
                if isinstance(op, Claim):
                    writes.claim(c, op, operations, out)
            return out

        return self._write(conn, body)

    def _duplicate(self, c: sqlite3.Connection, op: Insert) -> bool:
        if op.dedupe is None:
            return False
        if writes.same_text_stored(c, op.record):
            return True
        r = op.record
        query = np.ascontiguousarray(op.embedding, dtype=np.float32)
        best = self._keeper.best_in_scope(query, (r.user_id, r.agent_id, r.run_id))
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
        self, scope: dict[str, str], *, include_ended: bool = False, where: Node | None = None
    ) -> list[dict[str, Any]]:
        return await self._run(
            self._readers,
            lambda c: graph.relations(c, scope, include_ended=include_ended, where=where),
        )

    async def neighbourhood(
        self, scope: dict[str, str], query: str, where: Node | None = None
    ) -> tuple[dict[str, float], list[Relation]]:
        return await self._run(self._readers, lambda c: graph.neighbourhood(c, scope, query, where))

    async def profile(self, scope: dict[str, str]) -> dict[str, dict[str, Any]]:
        return await self._run(self._readers, lambda c: graph.profile(c, scope))

    async def profile_history(self, scope: dict[str, str]) -> list[dict[str, Any]]:
        return await self._run(self._readers, lambda c: graph.profile_changes(c, scope))

    async def set_feedback(
        self, memory_id: str, feedback: str | None, reason: str | None, value: float, *, at: str
    ) -> None:
        def body(c: sqlite3.Connection) -> None:
            writes.set_feedback(c, memory_id, feedback, reason, value, at)

        await self._run(self._writer, lambda conn: self._write(conn, body))

    async def delete_where(self, where: Node, *, at: str, cause: str | None = None) -> int:
        return await self._run(
            self._writer,
            lambda conn: self._write(conn, lambda c: writes.delete_matching(c, where, at, cause)),
        )

    async def restore(self, memories: Sequence[Insert], attached: Attached) -> None:
        await self._run(
            self._writer,
            lambda conn: self._write(conn, lambda c: self._restore(c, memories, attached)),
        )
        await self._after_writes(len(memories))

    def _restore(
        self, c: sqlite3.Connection, memories: Sequence[Insert], attached: Attached
    ) -> None:
        self._check_embedder(c)
        writes.restore(c, list(memories), attached)

    def _check_embedder(self, c: sqlite3.Connection) -> None:
        opening.check_embedder(c, self.path, self._embedder)

    async def export(self, where: Node | None) -> tuple[list[MemoryRecord], Attached]:
        def run(conn: sqlite3.Connection) -> tuple[list[MemoryRecord], Attached]:
            sql, params = compile_live(where, "", True)
            with atomic(conn, immediate=False):  # one snapshot: memories and what hangs off them
                rows = conn.execute(
                    f"SELECT {COLUMNS} FROM memories m WHERE {sql} ORDER BY m.created_at, m.rid",
                    params,
                ).fetchall()
                records = [record(r) for r in rows]
                ids = None if where is None else [r.id for r in records]
                return records, transfer.read(conn, ids)

        return await self._run(self._readers, run)

    async def reset(self) -> None:
        await self._run(self._writer, lambda conn: self._write(conn, writes.reset))
        snapshot.path_for(self.path).unlink(missing_ok=True)  # of the old epoch: unusable

    # -- reads ----------------------------------------------------------------------------------

    async def get(self, memory_id: str) -> MemoryRecord | None:
        return (await self.get_many([memory_id])).get(memory_id)

    async def entities(self) -> list[dict[str, Any]]:
        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            out = []
            for kind in ("user", "agent", "app", "run"):
                out += [
                    {"type": kind, "name": r[0], "total_memories": r[1], "created_at": r[2],
                     "updated_at": r[3]}
                    for r in conn.execute(
                        f"SELECT {kind}_id, count(*), min(created_at), max(updated_at) "
                        f"FROM memories WHERE {kind}_id IS NOT NULL GROUP BY {kind}_id "
                        f"ORDER BY {kind}_id"
                    )
                ]  # fmt: skip
            return out

        return await self._run(self._readers, run)

    async def claimed(self, key: str) -> list[dict[str, Any]] | None:
        return await self._run(self._readers, writes.claimed, key)

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
        before: tuple[str, int] | None = None,
    ) -> Page:
        return await self._run(
            self._readers, self._list, where, today, show_expired, offset, limit, before
        )

    def _list(
        self,
        conn: sqlite3.Connection,
        where: Node | None,
        today: str,
        show_expired: bool,
        offset: int,
        limit: int | None,
        before: tuple[str, int] | None = None,
    ) -> Page:
        sql, params = compile_live(where, today, show_expired)
        after, keyset = "", []
        if before is not None:
            after = " AND (m.created_at < ? OR (m.created_at = ? AND m.rid < ?))"
            keyset = [before[0], before[0], before[1]]
        with atomic(conn, immediate=False):  # one snapshot for the count and the rows
            count = conn.execute(f"SELECT count(*) FROM memories m WHERE {sql}", params)
            total = count.fetchone()[0]
            rows = conn.execute(
                f"SELECT {COLUMNS}, m.rid FROM memories m WHERE {sql}{after} "
                "ORDER BY m.created_at DESC, m.rid DESC LIMIT ? OFFSET ?",
                [*params, *keyset, -1 if limit is None else limit, offset],
            ).fetchall()
        records = [record(r[:-1]) for r in rows]
        last = (records[-1].created_at, int(rows[-1][-1])) if rows else None
        return Page(records, total, last)

    async def history(self, memory_id: str) -> list[HistoryRecord]:
        return await self._run(self._readers, self._history_rows, memory_id)

    def _history_rows(self, conn: sqlite3.Connection, memory_id: str) -> list[HistoryRecord]:
        rows = conn.execute(
            f"SELECT {HISTORY_COLUMNS} FROM history WHERE memory_id = ? ORDER BY rowid",
            (memory_id,),
        ).fetchall()
        return [history_row(r) for r in rows]

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
        query = np.ascontiguousarray(vector, dtype=np.float32)
        found = self._keeper.nearest(conn, query, where, today, top_k, show_expired)
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
        keyword: KeywordMatches | Awaitable[KeywordMatches] | None = None,
    ) -> list[Candidate]:
        if keyword is not None and not isinstance(keyword, KeywordMatches):
            keyword = await keyword  # (the reader threads are busy with it: no gain in overlap)
        return await self._run(
            self._readers, self._candidates, vector, list(terms), where, today, n_vector,
            n_keyword, show_expired, list(extra_ids), keyword,
        )  # fmt: skip

    async def keyword_matches(
        self,
        terms: Sequence[str],
        where: Node | None,
        *,
        today: str,
        show_expired: bool = False,
        want: int | None = None,
    ) -> KeywordMatches:
        return await self._run(
            self._readers, self._fulltext.matches, list(terms), where, today, show_expired, want
        )

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
        known: KeywordMatches | None,
    ) -> list[Candidate]:
        query = None if vector is None else np.ascontiguousarray(vector, dtype=np.float32)
        cosine: dict[int, float] = {}
        if query is not None:
            cosine = dict(self._keeper.nearest(conn, query, where, today, n_vector, show_expired))
        if known is None and not n_keyword:  # no full-text candidates: score the others below
            known = KeywordMatches({}, False)
        if known is None:  # not read ahead: read it now, in the same call
            known = self._fulltext.matches(conn, terms, where, today, show_expired, n_keyword)
        matches, complete = known.scores, known.complete
        scored = dict(list(matches.items())[:n_keyword])
        extra = self._matching_ids(conn, extra_ids, where, today, show_expired)
        missing = []
        for rid in {*cosine, *extra}:
            if rid in matches:
                scored[rid] = matches[rid]
            else:
                missing.append(rid)
        if terms and known.score_of is not None:  # every match was scored: look them up
            scored.update(known.score_of(missing))
        elif terms and not complete:  # more matches than were read: score the rest directly
            scored.update(self._fulltext.scores(conn, terms, where, missing))
        if query is not None:
            cosine.update(
                self._keeper.cosines(query, [r for r in {*scored, *extra} if r not in cosine])
            )
        return candidates_of(conn, list({*cosine, *scored, *extra}), cosine, scored)

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
        sql, params = compile_live(where, today, show_expired)
        for chunk, marks in chunked(ids):
            rows = conn.execute(
                f"SELECT m.rid FROM memories m WHERE m.id IN ({marks}) AND {sql}", [*chunk, *params]
            ).fetchall()
            found.update(int(r[0]) for r in rows)
        return found

    def ann_ready(self, scope: dict[str, str]) -> bool:
        """Whether every partition of the scope has an approximate index installed."""
        return self._keeper.ann_ready(scope)

    def _by_rid(self, conn: sqlite3.Connection, rids: list[int]) -> dict[int, MemoryRecord]:
        out: dict[int, MemoryRecord] = {}
        for chunk, marks in chunked(rids):
            for row in conn.execute(
                f"SELECT rid, {COLUMNS} FROM memories WHERE rid IN ({marks})", chunk
            ):
                out[row[0]] = record(row[1:])
        return out


def _log_failure(done: Future[Any]) -> None:
    """A background task's error is logged (the next search retries the same work and raises
    it to its caller), never dropped unseen."""
    if not done.cancelled() and (exc := done.exception()) is not None:
        logger.error("loading the vector index in the background failed: %s", exc, exc_info=exc)


def _writes_vectors(op: Operation) -> bool:
    if isinstance(op, Update):
        return op.embedding is not None
    return isinstance(op, Insert | LinkGraph)
