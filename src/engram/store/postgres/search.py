"""Search candidates of a `PostgresStore` project: the nearest vectors, the full text's matches
(`fulltext.py`), graph-linked ids, merged into `Candidate`s with their neighbours.

Every function reads through the cursor it is given, in the caller's snapshot, and confines every
statement to the project (`Searching`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncCursor

from engram.core.filters import Node, scope_of
from engram.core.text import CONTENT_CHARS
from engram.store.base import Candidate, KeywordMatches, MemoryRecord, Vector, conversation_line
from engram.store.postgres import fulltext
from engram.store.postgres.compile import Params, compile_live
from engram.store.postgres.database import EF_SEARCH
from engram.store.postgres.rows import COLUMNS, record

Cursor = AsyncCursor[Any]
NEAREST_ASKED = 50  # rows a nearest-neighbour statement asks for at least (`nearest`)
ID_BYTES = "octet_length(m.project) + octet_length(m.user_id)"
CONVERSATION_GAP = 3600  # seconds: adjacent lines further apart are not neighbours


@dataclass(frozen=True, slots=True)
class Searching:
    """What a search of one project reads with: its name, the embedder's dimensions, the HNSW
    index's ef_search, the byte budget of the user-vectors index (None: no such index) and
    whether the full text is indexed by scope."""

    project: str
    dims: int
    ef_search: int
    id_budget: int | None
    by_scope: bool


@dataclass(frozen=True, slots=True)
class Asked:
    """What `candidates` was asked for, beside the nearest vectors."""

    vector: Vector | None
    terms: Sequence[str]
    where: Node | None
    today: str
    n_keyword: int
    show_expired: bool
    extra_ids: Sequence[str]


def distance(s: Searching, p: Params, vector: Vector) -> str:
    """The cosine distance to `vector`, in the form the project's HNSW index answers."""
    cast = f"::vector({s.dims})"
    return f"(m.embedding{cast} <=> {p.bind(vector, cast)})"


async def nearest(
    cur: Cursor, s: Searching, vector: Vector, where: Node | None, today: str, k: int,
    show_expired: bool,
) -> list[tuple[int, float]]:  # fmt: skip
    """(rid, cosine) of the `k` nearest memories passing the filters, best first.

    At least NEAREST_ASKED rows are asked for: PostgreSQL chooses between the HNSW index
    (filtered by an iterative scan) and an exact scan through the scope's B-tree by cost, and
    pgvector prices a small LIMIT's share of a filtered HNSW scan too low: for ten rows of a
    scope holding 1% of the table it picked the index (recall@10 0.87, 46 ms) over the exact scan
    (1.00, 21 ms) it picks for fifty."""
    if k <= 0:
        return []
    asked = max(k, NEAREST_ASKED)
    ef_search = max(asked, s.ef_search)
    if ef_search != EF_SEARCH:  # every read transaction starts with EF_SEARCH (`database.py`)
        await cur.execute(f"SET LOCAL hnsw.ef_search = {ef_search}")
    p = Params()  # bound in the order the SQL reads them
    to = distance(s, p, vector)
    own = f"m.project = {p.bind(s.project)} AND vector_dims(m.embedding) = {s.dims}"
    live, p = compile_live(where, today, show_expired, p)
    user = scope_of(where).get("user_id")
    if (
        s.id_budget is not None
        and user is not None
        and len(s.project.encode()) + len(user.encode()) <= s.id_budget
    ):
        live += f" AND {ID_BYTES} <= {s.id_budget}"  # true of every row of this user: it
        # lets the planner read the user's vectors from the store's `_user_vectors_index`
    await cur.execute(
        f"SELECT rid, 1 - d FROM (SELECT m.rid, {to} AS d FROM memories m "
        f"WHERE {own} AND {live} ORDER BY d LIMIT {p.bind(asked)}) AS nearest ORDER BY d",
        p,
    )
    return [(int(r[0]), float(r[1])) for r in await cur.fetchall()][:k]


async def by_rid(cur: Cursor, project: str, rids: list[int]) -> dict[int, MemoryRecord]:
    if not rids:
        return {}
    await cur.execute(
        f"SELECT rid, {COLUMNS} FROM memories WHERE project = %s AND rid = ANY(%s::bigint[])",
        (project, rids),
    )
    return {int(row[0]): record(row[1:]) for row in await cur.fetchall()}


async def merged(
    cur: Cursor, s: Searching, asked: Asked, keyword: KeywordMatches | None,
    cosine: dict[int, float],
) -> list[Candidate]:  # fmt: skip
    """`candidates` once the nearest vectors are known: the full text's best (read now, in the
    same snapshot, unless read ahead), the graph's ids, each scored on both sides."""
    terms, where, today = asked.terms, asked.where, asked.today
    if keyword is None and not asked.n_keyword:  # no full-text candidates: score the others
        keyword = KeywordMatches({}, False)
    if keyword is None:
        keyword = await fulltext.matches(
            cur, s.project, terms, where, today, asked.show_expired, asked.n_keyword, s.by_scope
        )
    matches = keyword.scores
    scored = dict(list(matches.items())[: asked.n_keyword])
    extra = await _matching(cur, s.project, list(asked.extra_ids), where, today,
                            asked.show_expired)  # fmt: skip
    for rid in {*cosine, *extra}:
        if rid in matches:
            scored[rid] = matches[rid]
    missing = [rid for rid in {*cosine, *extra} if rid not in matches]
    if terms and not keyword.complete and missing:
        scored.update(await fulltext.scores(cur, s.project, terms, missing))
    rest = [rid for rid in {*scored, *extra} if rid not in cosine]
    if asked.vector is not None and rest:
        cosine.update(await _cosines(cur, s, asked.vector, rest))
    return await _candidates_of(cur, s.project, list({*cosine, *scored, *extra}), cosine, scored)


async def _matching(
    cur: Cursor, project: str, ids: list[str], where: Node | None, today: str,
    show_expired: bool,
) -> set[int]:  # fmt: skip
    """Row ids of the given memory ids that pass the filters (and expiry)."""
    if not ids:
        return set()
    p = Params([project, ids])
    live, p = compile_live(where, today, show_expired, p)
    await cur.execute(
        f"SELECT m.rid FROM memories m WHERE m.project = %s AND m.id = ANY(%s::text[]) AND {live}",
        p,
    )
    return {int(r[0]) for r in await cur.fetchall()}


async def _cosines(cur: Cursor, s: Searching, vector: Vector, rids: list[int]) -> dict[int, float]:
    p = Params()
    to = distance(s, p, vector)
    await cur.execute(
        f"SELECT m.rid, 1 - {to} FROM memories m WHERE m.project = "
        f"{p.bind(s.project)} AND m.rid = ANY({p.bind(rids, '::bigint[]')})",
        p,
    )
    return {int(r[0]): float(r[1]) for r in await cur.fetchall()}


async def _candidates_of(
    cur: Cursor, project: str, rids: list[int], cosine: dict[int, float],
    keyword: dict[int, float],
) -> list[Candidate]:  # fmt: skip
    """The candidates with their scores and neighbours: the candidates that are the lines just
    before and after each one in the same conversation (the previous and next rows of its
    scope, both `conversation_line`s, at most CONVERSATION_GAP apart)."""
    if not rids:
        return []
    await cur.execute(
        "SELECT m.rid, m.id, m.created_at, m.feedback, m.actor_id, m.role, "
        f"left(m.memory, {CONTENT_CHARS}), "
        "(SELECT b.rid FROM memories b WHERE b.project = m.project AND "
        "b.scope_key = m.scope_key AND b.rid < m.rid ORDER BY b.rid DESC LIMIT 1), "
        "(SELECT a.rid FROM memories a WHERE a.project = m.project AND "
        "a.scope_key = m.scope_key AND a.rid > m.rid ORDER BY a.rid LIMIT 1) "
        "FROM memories m WHERE m.project = %s AND m.rid = ANY(%s::bigint[])",
        (project, rids),
    )
    by = {int(r[0]): r for r in await cur.fetchall()}
    found: list[Candidate] = []
    for rid in rids:
        row = by.get(rid)
        if row is None:  # deleted meanwhile
            continue
        adjacent: tuple[str, ...] = ()
        if conversation_line(row[5], row[4]):  # its neighbours: the next lines
            adjacent = tuple(
                by[other][1]
                for other in (row[7], row[8])
                if other in by and conversation_line(by[other][5], by[other][4])
                and _close(by[other][2], row[2])
            )  # fmt: skip
        scores = cosine.get(rid, 0.0), keyword.get(rid, 0.0)
        found.append(Candidate(row[1], row[2], float(row[3]), *scores, row[4], adjacent, row[6]))
    return found


def _close(a: str, b: str) -> bool:
    gap = datetime.fromisoformat(a) - datetime.fromisoformat(b)
    return abs(gap.total_seconds()) <= CONVERSATION_GAP
