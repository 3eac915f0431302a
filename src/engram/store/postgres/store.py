"""`PostgresStore`: the Store protocol on PostgreSQL with pgvector, through psycopg 3's
asynchronous connection pool.

One database holds any number of stores, each a `project` (a library collection, or a server
project): every row carries it and every query is confined to it. A change set is one
transaction. Vectors are in pgvector with an HNSW index per dimension (a partial index over
`embedding::vector(dims)`), searched with iterative index scans so that filters never starve the
top k; full text is PostgreSQL's, ranked by BM25 (`fulltext.py`).

Adds of one scope are serialised by a transaction-level advisory lock, so that the duplicate
check of two racing adds of the same fact sees the other's row (SQLite's single writer gives the
same guarantee).
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import psycopg
from psycopg import AsyncCursor

from engram.config import Hnsw
from engram.core.filters import Node
from engram.core.ids import new_id
from engram.errors import (
    ConflictError,
    DimensionMismatchError,
    StoreError,
    ValidationError,
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
from engram.store.postgres import fulltext, graph, transfer, writes
from engram.store.postgres.compile import Params, compile_live, compile_where
from engram.store.postgres.database import EF_SEARCH, Database
from engram.store.postgres.rows import (
    COLUMNS,
    HISTORY_COLUMNS,
    M_COLUMNS,
    history,
    record,
)
from engram.store.postgres.schema import LOCK, SCOPED_FULL_TEXT
from engram.store.postgres.search import ID_BYTES, Asked, Searching, by_rid, merged, nearest
from engram.types import Relation

Cursor = AsyncCursor[Any]
# The HNSW graph by default (`config.Hnsw`): pgvector's default m, and ef_construction 200 (its
# default is 64); searched at ef_search 400 (`database.EF_SEARCH`). Measured at 1M MiniLM vectors
# with question-like queries (bench/postgres_scale.py), recall@10 of an unfiltered search by
# ef_search 100 / 200 / 400 / 800: 0.84 / 0.88 / 0.96 / 0.98 (a scope's search is exact through
# its B-tree until the planner prefers the index: at 1.00).
# A user's vectors in the scope's order too: a B-tree on (project, user_id) that carries each
# row's rid, expiration date and vector (`_user_vectors_index`), so that the exact scan of a big
# user reads a few contiguous index pages instead of one heap page per memory (1M memories, a
# 10k-memory user: 18.7 -> 9.6 ms). An index row must fit a B-tree page's third (2,704 bytes):
# the index holds the rows whose project and user id take at most `_id_budget(dims)` bytes, and
# is made only where that budget is at least ID_BUDGET_MIN (vectors of up to 506 dimensions).
BTREE_ROW_MAX = 2704
ROW_OVERHEAD = 160  # the row's header, rid, expiration date (a date), alignment, with room
ID_BUDGET_MIN = 512
logger = logging.getLogger(__name__)
DATA_TABLES = ("memories", "history", "messages", "feedback", "claims", "relations", "entities",
               "profile", "profile_history", "lexemes")  # fmt: skip


class PostgresStore:
    """A store in PostgreSQL: `database` (a `postgresql://...` URL or libpq conninfo, or a
    `Database` that stores of several projects share), the `project` its rows carry, the pool's
    size (with a URL); `dims`, when given, must be the embedder's; `hnsw`, the approximate
    index's settings (True: the defaults; False or None: exact scans only, no index made);
    `read_urls`, read replicas (see `database.py`)."""

    def __init__(
        self, database: str | Database, *, project: str = "default", min_size: int = 1,
        max_size: int = 10, dims: int | None = None, hnsw: bool | Hnsw | None = True,
        read_urls: Sequence[str] = (),
    ) -> None:  # fmt: skip
        if not isinstance(project, str) or not project.strip():
            raise StoreError("a PostgreSQL store needs a project name (its rows carry it)")
        self._owned = isinstance(database, str)
        self.db = Database(database, read_urls=read_urls, min_size=min_size, max_size=max_size) \
            if isinstance(database, str) else database  # fmt: skip
        self.url, self.project = self.db.url, project
        self._expected_dims = dims
        self._hnsw = Hnsw() if hnsw is True else (hnsw or None)
        self._ef_search = self._hnsw.ef_search if self._hnsw else EF_SEARCH
        self._dims = 0
        self._model_id = ""
        self._id_budget: int | None = None  # `_user_vectors_index`'s, when it is there
        self._by_scope = False  # whether the database has `SCOPED_FULL_TEXT` (migration 6)

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self, *, dims: int, model_id: str) -> None:
        if self._expected_dims is not None and self._expected_dims != dims:
            raise DimensionMismatchError(
                f"embedding_model_dims is {self._expected_dims}, but the embedder makes "
                f"{dims}-dimensional vectors ({model_id!r})"
            )
        await self.db.open()
        async with self._write() as cur:
            await cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
            await self._record_embedder(cur, dims, model_id)
            if self._hnsw is not None:
                await self._hnsw_index(cur, dims, self._hnsw)
            self._id_budget = await self._user_vectors_index(cur, dims)
            await cur.execute(f"SELECT to_regclass('{SCOPED_FULL_TEXT}') IS NOT NULL")
            self._by_scope = bool((await cur.fetchone() or (False,))[0])
        self._dims, self._model_id = dims, model_id

    async def _user_vectors_index(self, cur: Cursor, dims: int) -> int | None:
        """The B-tree of users' `dims`-dimensional vectors (see BTREE_ROW_MAX), made if missing
        (by a role that may create it); its id budget, or None when vectors this long do not
        leave room for ids (the exact scan then reads the heap)."""
        budget = _id_budget(dims)
        if budget < ID_BUDGET_MIN:
            return None
        name = f"memories_user_vectors_{dims}"
        await cur.execute("SELECT 1 FROM pg_class WHERE relname = %s", (name,))
        if await cur.fetchone() is None:
            await cur.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON memories (project, user_id) "
                f"INCLUDE (rid, expiration_date, embedding) WHERE vector_dims(embedding) = "
                f"{dims} AND {ID_BYTES.replace('m.', '')} <= {budget}"
            )
        return budget

    async def _hnsw_index(self, cur: Cursor, dims: int, hnsw: Hnsw) -> None:
        """The HNSW index of `dims`-dimensional vectors (one serves every project): made with
        `hnsw`'s settings if missing (by a role that may create it); one made with others is
        kept, and said so."""
        name = f"memories_hnsw_{dims}"
        await cur.execute("SELECT reloptions FROM pg_class WHERE relname = %s", (name,))
        found = await cur.fetchone()
        if found is None:
            await cur.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON memories USING hnsw "
                f"((embedding::vector({dims})) vector_cosine_ops) WITH (m = {hnsw.m}, "
                f"ef_construction = {hnsw.ef_construction}) WHERE vector_dims(embedding) = {dims}"
            )
            return
        options = dict(str(o).split("=", 1) for o in found[0] or ())
        built = (int(options.get("m", 16)), int(options.get("ef_construction", 64)))
        if built != (hnsw.m, hnsw.ef_construction):
            logger.warning(
                "%s was built with m %s, ef_construction %s (this store's hnsw asks for %s, %s): "
                "kept; DROP INDEX %s and open the store again to rebuild it with these settings",
                name, *built, hnsw.m, hnsw.ef_construction, name,
            )  # fmt: skip

    async def _record_embedder(self, cur: Cursor, dims: int, model_id: str) -> None:
        """The project's embedder: recorded the first time; another one is refused while the
        project holds vectors, and taken over when it holds none."""
        await cur.execute("SELECT dims, model_id FROM stores WHERE project = %s", (self.project,))
        row = await cur.fetchone()
        if row is None:
            await cur.execute(
                "INSERT INTO stores (project, dims, model_id, epoch) VALUES (%s, %s, %s, %s)",
                (self.project, dims, model_id, uuid.uuid4().hex),
            )
            return
        if (int(row[0]), row[1]) == (dims, model_id):
            return
        await cur.execute(
            "SELECT EXISTS (SELECT 1 FROM memories WHERE project = %s) OR EXISTS "
            "(SELECT 1 FROM entities WHERE project = %s AND embedding IS NOT NULL)",
            (self.project, self.project),
        )
        held = await cur.fetchone()
        if held and held[0]:
            raise DimensionMismatchError(
                f"project {self.project!r} holds {row[0]}-dimensional vectors from {row[1]!r}, "
                f"but the configured embedder is {model_id!r} with {dims} dimensions; use the "
                "original embedder or another project",
                details={"stored_model_id": row[1], "stored_dims": int(row[0])},
            )
        await cur.execute(
            "UPDATE stores SET dims = %s, model_id = %s, epoch = %s WHERE project = %s",
            (dims, model_id, uuid.uuid4().hex, self.project),
        )

    async def close(self) -> None:
        """Close the pools (a shared `Database` is closed by its owner)."""
        if self._owned:
            await self.db.close()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Cursor]:
        """A cursor in a read-only transaction (one snapshot), on a replica when one is set up
        and has caught up."""
        try:
            async with self.db.reading(self.project) as conn, conn.cursor() as cur:
                yield cur
        except psycopg.DataError as exc:  # a value PostgreSQL cannot hold (a NUL character)
            raise ValidationError(f"PostgreSQL refused a value: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL error: {exc}") from exc

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Cursor]:
        """A cursor in a write transaction: all of it commits, or none of it."""
        try:
            async with self.db.writing(self.project) as conn, conn.cursor() as cur:
                yield cur
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(f"the change conflicts with stored data: {exc}") from exc
        except psycopg.DataError as exc:  # nothing was written: the transaction rolled back
            raise ValidationError(f"PostgreSQL refused a value: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL error: {exc}") from exc

    # -- writes -----------------------------------------------------------------------------

    async def apply(
        self, operations: Sequence[Operation], *, cause: str | None = None
    ) -> list[MemoryRecord | None]:
        if not operations:
            return []
        async with self._write() as cur:
            if any(_writes_vectors(op) for op in operations):
                await self._check_embedder(cur)
            out: list[MemoryRecord | None] = []
            for plain, run in itertools.groupby(operations, key=writes.is_plain_insert):
                if plain:  # inserts with no duplicate check: a few statements for all of them
                    inserts = cast(list[Insert], list(run))
                    out += await writes.insert(cur, self.project, inserts, cause=cause)
                else:
                    out += [await self._one(cur, op, cause) for op in run]
            for op in operations:  # after the memories they link: their ids are known now
                if isinstance(op, LinkGraph) and (target := out[op.memory]) is not None:
                    op.added, op.ended = await graph.link(cur, self.project, op, target.id)
            for op in operations:  # last: it records what the others wrote
                if isinstance(op, Claim):
                    await writes.claim(cur, self.project, op, operations, out)
            return out

    async def _one(self, cur: Cursor, op: Operation, cause: str | None) -> MemoryRecord | None:
        if isinstance(op, Insert):
            if await writes.duplicate(cur, self.project, op):
                return None
            return (await writes.insert(cur, self.project, [op], cause=cause))[0]
        if isinstance(op, Update):
            return await writes.update(cur, self.project, op, cause)
        if isinstance(op, Delete):
            return await writes.delete(cur, self.project, op, cause)
        if isinstance(op, SaveMessages):
            await writes.save_messages(cur, self.project, op)
        return None

    async def _check_embedder(self, cur: Cursor) -> None:
        await cur.execute("SELECT dims, model_id FROM stores WHERE project = %s", (self.project,))
        row = await cur.fetchone()
        if row is None or (int(row[0]), row[1]) != (self._dims, self._model_id):
            raise DimensionMismatchError(
                f"project {self.project!r} now records {row and row[1]!r}, not the "
                f"{self._model_id!r} it was opened with: reopen it"
            )

    async def claimed(self, key: str) -> list[dict[str, Any]] | None:
        async with self._read() as cur:
            await cur.execute(
                "SELECT result FROM claims WHERE project = %s AND key = %s", (self.project, key)
            )
            row = await cur.fetchone()
        return None if row is None else list(row[0])

    async def set_feedback(
        self, memory_id: str, feedback: str | None, reason: str | None, value: float, *, at: str
    ) -> None:
        async with self._write() as cur:
            await writes.load(cur, self.project, memory_id)  # NotFoundError when missing
            await cur.execute(
                "UPDATE memories SET feedback = %s WHERE project = %s AND id = %s",
                (value, self.project, memory_id),
            )
            await cur.execute(
                "INSERT INTO feedback (project, memory_id, feedback, reason, value, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (self.project, memory_id, feedback, reason, value, at),
            )

    async def delete_where(self, where: Node, *, at: str, cause: str | None = None) -> int:
        async with self._write() as cur:
            sql, params = compile_where(where, Params([self.project]))
            await cur.execute(
                "DELETE FROM memories m WHERE m.project = %s AND " + sql
                + " RETURNING m.id, m.memory, m.created_at, m.actor_id, m.role",
                params,
            )  # fmt: skip
            rows = await cur.fetchall()
            await graph.remove_for_memories(cur, self.project, [r[0] for r in rows], at)
            if rows:
                await cur.executemany(
                    f"INSERT INTO history (project, {HISTORY_COLUMNS}) VALUES "
                    "(%s, %s, %s, %s, NULL, 'DELETE', %s, %s, true, %s, %s, %s)",
                    [(self.project, new_id(), r[0], r[1], r[2], at, r[3], r[4], cause)
                     for r in rows],
                )  # fmt: skip
            return len(rows)

    async def reset(self) -> None:
        async with self._write() as cur:
            for table in ("memories", "history", "messages", "feedback", "claims"):
                await cur.execute(f"DELETE FROM {table} WHERE project = %s", (self.project,))
            await graph.reset(cur, self.project)
            await cur.execute(
                "UPDATE stores SET epoch = %s WHERE project = %s", (uuid.uuid4().hex, self.project)
            )

    async def drop(self) -> None:
        """Delete the project: every row it has, its catalogue entry too (a server's deleted
        project). The store is not usable afterwards until opened again."""
        async with self._write() as cur:
            for table in (*DATA_TABLES, "stores"):
                await cur.execute(f"DELETE FROM {table} WHERE project = %s", (self.project,))

    async def restore(self, memories: Sequence[Insert], attached: Attached) -> None:
        async with self._write() as cur:
            await self._check_embedder(cur)
            ids = [op.record.id for op in memories]
            await cur.execute(
                "SELECT id FROM memories WHERE project = %s AND id = ANY(%s::text[])",
                (self.project, ids),
            )
            present = [r[0] for r in await cur.fetchall()]
            if present:
                raise ConflictError(
                    f"{len(present)} of the {len(ids)} memories to import exist already in this "
                    f"store (the first: {present[0]}); nothing was imported",
                    details={"ids": present[:20]},
                )
            await writes.insert(cur, self.project, memories, with_history=False)
            await transfer.write(cur, self.project, attached)

    # -- reads ------------------------------------------------------------------------------

    async def recent_messages(
        self, scope: dict[str, str | None], limit: int
    ) -> list[tuple[str, str | None, str]]:
        key = (scope.get("user_id"), scope.get("agent_id"), scope.get("run_id"))
        async with self._read() as cur:
            await cur.execute(
                "SELECT role, name, content FROM messages WHERE project = %s AND scope_key = "
                "engram_scope_key(%s, %s, %s) ORDER BY id DESC LIMIT %s",
                (self.project, *key, limit),
            )
            rows = await cur.fetchall()
        return [(r[0], r[1], r[2]) for r in reversed(rows)]

    async def get(self, memory_id: str) -> MemoryRecord | None:
        return (await self.get_many([memory_id])).get(memory_id)

    async def get_many(self, memory_ids: Sequence[str]) -> dict[str, MemoryRecord]:
        if not memory_ids:
            return {}
        async with self._read() as cur:
            await cur.execute(
                f"SELECT {COLUMNS} FROM memories WHERE project = %s AND id = ANY(%s::text[])",
                (self.project, list(memory_ids)),
            )
            return {row[0]: record(row) for row in await cur.fetchall()}

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
        sql, p = compile_live(where, today, show_expired, Params([self.project]))
        after, keyset = "", []
        if before is not None:
            after = ' AND (m.created_at COLLATE "C" < %s OR (m.created_at = %s AND m.rid < %s))'
            keyset = [before[0], before[0], before[1]]
        async with self._read() as cur:  # one snapshot for the count and the rows
            await cur.execute(f"SELECT count(*) FROM memories m WHERE m.project = %s AND {sql}", p)
            counted = await cur.fetchone()
            total = int(counted[0]) if counted else 0
            await cur.execute(
                f"SELECT {M_COLUMNS}, m.rid FROM memories m WHERE m.project = %s AND {sql}{after} "
                'ORDER BY m.created_at COLLATE "C" DESC, m.rid DESC LIMIT %s OFFSET %s',
                [*p, *keyset, limit, offset],
            )
            rows = await cur.fetchall()
        records = [record(r[:-1]) for r in rows]
        last = (records[-1].created_at, int(rows[-1][-1])) if rows else None
        return Page(records, total, last)

    async def history(self, memory_id: str) -> list[HistoryRecord]:
        async with self._read() as cur:
            await cur.execute(
                f"SELECT {HISTORY_COLUMNS} FROM history WHERE project = %s AND memory_id = %s "
                "ORDER BY seq",
                (self.project, memory_id),
            )
            return [history(r) for r in await cur.fetchall()]

    async def entities(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async with self._read() as cur:
            for kind in ("user", "agent", "app", "run"):
                await cur.execute(
                    f'SELECT {kind}_id, count(*), min(created_at COLLATE "C"), '
                    f'max(updated_at COLLATE "C") FROM memories WHERE project = %s AND '
                    f'{kind}_id IS NOT NULL GROUP BY {kind}_id ORDER BY {kind}_id COLLATE "C"',
                    (self.project,),
                )
                out += [
                    {"type": kind, "name": r[0], "total_memories": int(r[1]), "created_at": r[2],
                     "updated_at": r[3]}
                    for r in await cur.fetchall()
                ]  # fmt: skip
        return out

    async def export(self, where: Node | None) -> tuple[list[MemoryRecord], Attached]:
        sql, p = compile_where(where, Params([self.project]))
        async with self._read() as cur:  # one snapshot: memories and what hangs off them
            await cur.execute(
                f"SELECT {M_COLUMNS} FROM memories m WHERE m.project = %s AND {sql} "
                'ORDER BY m.created_at COLLATE "C", m.rid',
                p,
            )
            records = [record(r) for r in await cur.fetchall()]
            ids = None if where is None else [r.id for r in records]
            return records, await transfer.read(cur, self.project, ids)

    # -- graph ------------------------------------------------------------------------------

    async def relations(
        self, scope: dict[str, str], *, include_ended: bool = False, where: Node | None = None
    ) -> list[dict[str, Any]]:
        async with self._read() as cur:
            return await graph.relations(
                cur, self.project, scope, include_ended=include_ended, where=where
            )

    async def neighbourhood(
        self, scope: dict[str, str], query: str, where: Node | None = None
    ) -> tuple[dict[str, float], list[Relation]]:
        async with self._read() as cur:
            return await graph.neighbourhood(cur, self.project, scope, query, where)

    async def profile(self, scope: dict[str, str]) -> dict[str, dict[str, Any]]:
        async with self._read() as cur:
            return await graph.profile(cur, self.project, scope)

    async def profile_history(self, scope: dict[str, str]) -> list[dict[str, Any]]:
        async with self._read() as cur:
            return await graph.profile_changes(cur, self.project, scope)

    # -- search -----------------------------------------------------------------------------

    def _searching(self) -> Searching:
        return Searching(self.project, self._dims, self._ef_search, self._id_budget,
                         self._by_scope)  # fmt: skip

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
        async with self._read() as cur:
            found = await nearest(cur, self._searching(), vector, where, today, top_k,
                                  show_expired)  # fmt: skip
            if threshold is not None:
                found = [(rid, s) for rid, s in found if max(0.0, s) >= threshold]
            records = await by_rid(cur, self.project, [rid for rid, _ in found])
        return [
            Hit(records[rid], float(min(1.0, max(0.0, s)))) for rid, s in found if rid in records
        ]

    async def keyword_matches(
        self,
        terms: Sequence[str],
        where: Node | None,
        *,
        today: str,
        show_expired: bool = False,
        want: int | None = None,
    ) -> KeywordMatches:
        async with self._read() as cur:
            return await fulltext.matches(
                cur, self.project, terms, where, today, show_expired, want, self._by_scope
            )

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
        ahead = keyword is not None and not isinstance(keyword, KeywordMatches)
        searching = self._searching()
        asked = Asked(vector, terms, where, today, n_keyword, show_expired, extra_ids)
        async with self._read() as cur:
            cosine: dict[int, float] = {}
            if vector is not None:  # while the full text, when under way, runs on its own
                cosine = dict(await nearest(cur, searching, vector, where, today, n_vector,
                                            show_expired))  # fmt: skip
            if not ahead:
                given = cast(KeywordMatches | None, keyword)
                return await merged(cur, searching, asked, given, cosine)
        # The full text's task holds a connection of its own: this one is released before it
        # is awaited, so that a pool of one connection (`maxconn` 1) cannot deadlock.
        matches = await cast(Awaitable[KeywordMatches], keyword)
        async with self._read() as cur:
            return await merged(cur, searching, asked, matches, cosine)


def _id_budget(dims: int) -> int:
    """Bytes left for the project and user id in a row of `_user_vectors_index`."""
    return BTREE_ROW_MAX - ROW_OVERHEAD - (4 * dims + 8)


def _writes_vectors(op: Operation) -> bool:
    if isinstance(op, Update):
        return op.embedding is not None
    return isinstance(op, Insert | LinkGraph)
