"""SQLite and PostgreSQL side by side, from one run: add throughput, search latency, scale, servers.

Four parts (`--parts`, default `add,search,servers`; `--total N` or `--million` runs `scale`):

1. `add`: batched `Memory.add([...500 messages...], user_id=..., infer=False)` throughput in
   memories/s (one call stores each message as a memory; checked), three ways: through the public
   API with the default embedder (MiniLM via ONNX, ~1-2 ms a text: the bottleneck); through the
   public API with the `hashing` embedder (embedding next to free: the pipeline and the store);
   and `store.apply` alone with precomputed vectors (the store only, 500 inserts a transaction).
   SQLite with synchronous=FULL (its default: each commit durable) and OFF; PostgreSQL as its
   server is configured (the private cluster: fsync=off, synchronous_commit=off).
2. `search`: end-to-end `Memory.search(query, user_id=..., top_k=10)` latency, p50/p95 in ms,
   with the default recipe (hybrid: vector + full text + fusion), each query a new text (embedded
   by MiniLM: its cost is in every figure and printed alone), at 10k and 100k memories in one user
   scope (`--sizes`) and for a 100-memory scope beside it (100 other users of 100 memories).
   PostgreSQL twice: as the cluster's superuser (Row-Level Security bypassed) and as a plain role
   (RLS applies, as for an application role in production).
3. `scale`: `--total` memories (`--million`: 1,000,000) in one PostgreSQL project, `--total`/10
   users, `--big-scopes` of them with 10,000 memories (the others ~9 each), rows of all users
   interleaved. Loaded with no HNSW index, then the index is built once (by opening the store with
   hnsw on, `--maintenance-work-mem`). Prints the load rate, build time, disk use, end-to-end search
   p50/p95 for the 10k scopes and for ~10-memory scopes (superuser and RLS role), HNSW recall@10
   and @50 of `store.search` against exact search (numpy over all of the scope's vectors; a result
   counts when its exact cosine reaches the exact k-th best, so ties do not count as misses), and
   the query plans of one search (full plans in bench/out/postgres_scale_plans.txt).
4. `servers`: search requests/s of 1, 2 and 3 `engram serve` processes (`--workers 1` each,
   different ports and homes, one `--database-url`), and of one SQLite server with `--workers 1`
   and with `--workers 2`, driven by bench/server_load.py's load generator spread over the servers
   (`--concurrency` connections in all), with the CPU time of the servers, PostgreSQL and the load
   generator per request.

Data of parts 2 and 3 (and the vectors of part 1's store-only figure): `--distinct` texts (28
templates over small vocabularies: hobbies, places, people, foods, jobs...) embedded once by MiniLM
as `add` embeds a message (`user: text`); each memory is one of those texts and its vector plus
Gaussian noise (`--noise` per dimension, renormalised), written through `store.apply` as records
like `add(infer=False)` makes them. Queries are questions about them, each a new text.

PostgreSQL: unless `--database-url` names one, a private PostgreSQL 15 + pgvector cluster is
started (tests/pg.py: fsync=off, full_page_writes=off, synchronous_commit=off; shared_buffers
`--shared-buffers`) and stopped at the end. A given database should be a scratch one: the bench
writes projects named bench-*, drops and rebuilds the HNSW index, and makes a role engram_bench.

    python -m bench.postgres_scale                     # parts 1, 2, 4: ~15 minutes on 2 cores
    python -m bench.postgres_scale --million           # part 3 at 1M memories: ~1-2 hours
    python -m bench.postgres_scale --total 100000      # part 3, smaller
    python -m bench.postgres_scale --parts add,search --sizes 10000 --queries 50

Nothing is asserted; on a shared, noisy machine read medians and ratios from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import sql
from psycopg.conninfo import make_conninfo
from tests.pg import Cluster

from bench import server_load
from bench.core import percentile, sentence
from engram import Memory
from engram.config import Hnsw, default_cache_dir
from engram.core.ids import new_id, text_hash
from engram.core.scope import resolve_filters
from engram.core.timeutil import format_timestamp
from engram.providers.embedders.minilm import MODEL_IDS, MiniLMEmbedder
from engram.store.base import Insert, MemoryRecord, Store
from engram.store.postgres.database import EF_SEARCH, READ_BEGIN
from engram.store.postgres.store import PostgresStore
from engram.store.sqlite.store import SQLiteStore

Matrix = npt.NDArray[np.float32]
DIMS = 384
# MiniLM's graph for the vectors the bench embeds itself (`--precision`; with --reuse, the one the
# stored memories came from).
PRECISION = {"precision": MiniLMEmbedder().precision}


def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder(cache_dir=default_cache_dir(), precision=PRECISION["precision"])  # type: ignore[arg-type]


def model_id() -> str:
    return MODEL_IDS[PRECISION["precision"]]


ROLE, ROLE_PASSWORD = "engram_bench", "engram-bench-password"


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split(", "))


# The memories of parts 2 and 3: more varied than bench/core.py's (its 6 templates make texts
# whose MiniLM vectors sit at cosine 0.95 from their nearest neighbour; these at ~0.85).
ACTIVITIES = words(
    "hiking, jazz piano, sushi making, chess, road cycling, pottery, sailing, opera, gardening, "
    "film photography, tennis, sourdough baking, astronomy, yoga, poetry, rock climbing, "
    "birdwatching, salsa dancing, woodworking, knitting, surfing, marathon running, board games, "
    "calligraphy, beekeeping, kayaking, watercolour painting, learning Japanese, fly fishing, "
    "skiing, playing the cello, restoring old cars, stand-up comedy, swimming, archery, "
    "writing a novel, camping, volunteering at a shelter, baking bread, chess problems"
)
PLACES = words(
    "Lisbon, Osaka, Denver, Nairobi, Oslo, Lima, Hanoi, Porto, Quebec, Marrakesh, Reykjavik, "
    "Seoul, Buenos Aires, Cape Town, Vancouver, Edinburgh, Kyoto, Istanbul, Melbourne, Prague, "
    "Mexico City, Tbilisi, Helsinki, Bangalore, Havana, the Alps, the coast, their hometown, "
    "the countryside, a small village in Tuscany"
)
PEOPLE = words(
    "sister, brother, manager, neighbour, cousin, friend, daughter, mentor, grandmother, son, "
    "partner, colleague, uncle, roommate, best friend, teacher, doctor, landlord, aunt, coach"
)
FOODS = words(
    "spicy food, mushrooms, cilantro, dairy, peanuts, shellfish, gluten, red meat, sweets, coffee, "
    "green tea, dark chocolate, olives, ramen, curry, tacos, oysters, avocado, eggs, "
    "pineapple on pizza"
)
THINGS = words(
    "a vintage camera, an electric bike, a new laptop, a puppy, a sailboat, a house with a garden, "
    "a piano, concert tickets, a telescope, running shoes, a kayak, a record player, a tent, "
    "a sewing machine, a drone"
)
JOBS = words(
    "nurse, software engineer, teacher, architect, chef, accountant, lawyer, graphic designer, "
    "pilot, pharmacist, journalist, electrician, vet, data analyst, carpenter"
)
NAMES = words(
    "Alex, Priya, Tomás, Mei, Jonas, Amara, Luca, Sofia, Kenji, Fatima, Noah, Elena, Omar, "
    "Hannah, Diego, Yuki, Grace, Ravi, Lena, Samuel"
)
WHEN = words(
    "last spring, next month, every Sunday, since 2019, after work, twice a year, "
    "during the holidays, in the mornings, when it rains, on weekends, last year, "
    "this summer"
)
TEMPLATES = (
    "Enjoys {a} with their {p} in {c} {w}",
    "Planning a trip to {c} {w} to try {a}",
    "Their {p} recommended a {a} club in {c}",
    "Stopped doing {a} after moving to {c}",
    "Has been learning {a} for {n} years",
    "Met their {p} {name} at a {a} event in {c}",
    "Is allergic to {f}",
    "Avoids {f} because of a stomach condition",
    "Loves {f} and orders it {w}",
    "Works as a {j} in {c}",
    "Used to be a {j} before switching careers",
    "Bought {t} {w}",
    "Wants to buy {t} for their {p}",
    "Their {p} {name} lives in {c}",
    "Celebrated their birthday in {c} with {name}",
    "Is training for a {a} competition {w}",
    "Feels anxious about {a} lately",
    "Has a dog named {name} who hates {f}",
    "Prefers {a} over {a2}",
    "Gave up {f} {w}",
    "Is saving money for {t}",
    "Their {p} works as a {j}",
    "Moved to {c} {w} for a job as a {j}",
    "Takes {a} lessons from {name} {w}",
    "Dislikes {a} since an accident in {c}",
    "Is hosting {name} from {c} {w}",
    "Reads about {a} before bed",
    "Volunteers with their {p} {w}",
)
ASKS = (
    "What does the user think about {a}?",
    "Where does the user's {p} live?",
    "What food should I avoid cooking for the user?",
    "What is the user's job?",
    "Is the user planning a trip to {c}?",
    "Who is {name}?",
    "What does the user want to buy?",
    "How long has the user been doing {a}?",
    "Does the user like {f}?",
    "What did the user do in {c}?",
    "Which hobbies does the user have besides {a}?",
    "When does the user go {a}?",
)


def fill_in(template: str, rng: random.Random) -> str:
    a, a2 = rng.sample(ACTIVITIES, 2)
    return template.format(
        a=a, a2=a2, p=rng.choice(PEOPLE), c=rng.choice(PLACES), w=rng.choice(WHEN),
        n=rng.randint(2, 30), f=rng.choice(FOODS), j=rng.choice(JOBS), t=rng.choice(THINGS),
        name=rng.choice(NAMES),
    )  # fmt: skip


START = datetime(2026, 1, 1, tzinfo=UTC)
OUT = Path(__file__).parent / "out"
PLANS = OUT / "postgres_scale_plans.txt"
BACKENDS = ("SQLite FULL", "SQLite OFF", "PostgreSQL")


def say(line: str = "") -> None:
    print(line, flush=True)


def p50_p95(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):7.1f} / {percentile(list(values), 0.95):7.1f}"


def questions(count: int, offset: int = 0, seed: int = 17) -> list[str]:
    """Search queries about the memories, each a text not asked before (a number appended, as
    bench/core.py does)."""
    rng = random.Random(seed + offset)
    return [f"{fill_in(rng.choice(ASKS), rng)} {100 + offset + i}" for i in range(count)]


# -- PostgreSQL ---------------------------------------------------------------------------------


class Postgres:
    """The PostgreSQL the figures come from: a private cluster started here, or `--database-url`.
    Makes the plain role `engram_bench` (no superuser: Row-Level Security applies to it) if it
    can."""

    def __init__(self, url: str | None, shared_buffers: str) -> None:
        self.cluster: Cluster | None = None
        if url is None:
            cluster = Cluster(Path(tempfile.mkdtemp(prefix="engram-bench-pg-")))
            self.cluster = cluster
            with psycopg.connect(cluster.url(), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(
                        sql.Literal(shared_buffers)
                    )
                )
            cluster._run(
                "pg_ctl",
                "-D",
                str(cluster.data),
                "-l",
                str(cluster.base / "server.log"),
                "-w",
                "-m",
                "fast",
                "restart",
            )
            url = cluster.url()
        self.url = url
        self.role_error: str | None = None
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,))
                if exists.fetchone() is None:
                    conn.execute(
                        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                            sql.Identifier(ROLE), sql.Literal(ROLE_PASSWORD)
                        )
                    )
        except psycopg.Error as exc:
            self.role_error = str(exc).strip()

    def database(self) -> str:
        """A fresh database (own cluster), else the given one (parts use their own projects)."""
        return self.cluster.database() if self.cluster else self.url

    def as_role(self, url: str) -> str | None:
        """`url` for the plain role, after granting it the tables; None when it could not be
        made."""
        if self.role_error is not None:
            return None
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL(
                        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
                    ).format(sql.Identifier(ROLE))
                )
        except psycopg.Error as exc:
            self.role_error = str(exc).strip()
            return None
        return make_conninfo(url, user=ROLE, password=ROLE_PASSWORD)

    def describe(self) -> list[str]:
        with psycopg.connect(self.url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            vector = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
            superuser = conn.execute(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            names = (
                "fsync",
                "synchronous_commit",
                "full_page_writes",
                "shared_buffers",
                "work_mem",
                "max_parallel_maintenance_workers",
            )
            settings = {
                n: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(n))).fetchone()
                for n in names
            }
        where = "a private cluster started here" if self.cluster else "the given database"
        shown = ", ".join(f"{n}={v[0] if v else '?'}" for n, v in settings.items())
        who = "a superuser (RLS bypassed)" if superuser and superuser[0] else "a plain role"
        lines = [
            f"PostgreSQL {version[0] if version else '?'} + pgvector "
            f"{vector[0] if vector else '?'}, {where}; {shown}",
            f"the bench connects as {who}; `PostgreSQL, RLS` rows use the plain role {ROLE}"
            if self.role_error is None
            else f"the bench connects as {who}; no RLS rows: {self.role_error}",
        ]
        return lines

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) of the cluster's processes so far (own cluster only)."""
        if self.cluster is None:
            return None
        try:
            postmaster = int((self.cluster.data / "postmaster.pid").read_text().split()[0])
            children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
            total = 0
            for pid in [postmaster, *map(int, children)]:
                with contextlib.suppress(OSError):
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            return None
        return total / os.sysconf("SC_CLK_TCK")

    def data_dir_bytes(self) -> int | None:
        if self.cluster is None:
            return None
        return sum(p.stat().st_size for p in self.cluster.data.rglob("*") if p.is_file())

    def close(self, keep: bool = False) -> None:
        if self.cluster is not None and keep:
            say(
                f"the cluster keeps running: {self.url} (data in {self.cluster.data}; stop it "
                f"with: pg_ctl -D {self.cluster.data} stop, as the postgres user when root)"
            )
        elif self.cluster is not None:
            self.cluster.stop()
            shutil.rmtree(self.cluster.base, ignore_errors=True)


# -- data ---------------------------------------------------------------------------------------


def corpus(count: int, seed: int = 1) -> list[str]:
    """`count` distinct memory texts."""
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    for _ in range(count * 50):
        if len(seen) >= count:
            break
        seen[fill_in(rng.choice(TEMPLATES), rng)] = None
    return list(seen)


def embed(texts: Sequence[str], prefix: str = "user: ") -> tuple[Matrix, float]:
    """MiniLM vectors of the texts (by default as `add(infer=False)` embeds a user message);
    seconds taken."""
    embedder = minilm()
    embedder.embed_sync(["warm up"])
    start = time.perf_counter()
    vectors = embedder.embed_sync([f"{prefix}{t}" for t in texts])
    return vectors, time.perf_counter() - start


class Rows:
    """Memories as `add(infer=False)` records them: one of the texts, its vector plus Gaussian
    noise (renormalised), created `step` seconds apart from 2026-01-01."""

    def __init__(
        self, texts: Sequence[str], base: Matrix, noise: float, seed: int, step: float
    ) -> None:
        self.texts, self.base, self.noise, self.step = texts, base, noise, step
        self.rng = np.random.default_rng(seed)
        self.made = 0

    def make(self, users: Sequence[str]) -> list[Insert]:
        n = len(users)
        pick = self.rng.integers(0, len(self.texts), n)
        noise = self.rng.normal(0.0, self.noise, (n, DIMS)).astype(np.float32)
        vectors = self.base[pick] + noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        out = []
        for i, (user, j) in enumerate(zip(users, pick, strict=True)):
            at = format_timestamp(START + timedelta(seconds=(self.made + i) * self.step))
            text = self.texts[int(j)]
            record = MemoryRecord(
                id=new_id(),
                memory=text,
                hash=text_hash(text),
                created_at=at,
                updated_at=at,
                user_id=user,
                role="user",
            )
            out.append(Insert(record, vectors[i]))
        self.made += n
        return out


def chunks(inserts: Sequence[Insert], size: int) -> Iterator[list[Insert]]:
    for offset in range(0, len(inserts), size):
        yield list(inserts[offset : offset + size])


async def load_sqlite(path: Path, batches: Iterable[list[Insert]]) -> float:
    """Memories/s through `store.apply`."""
    store = SQLiteStore(path)
    await store.open(dims=DIMS, model_id=model_id())
    try:
        count, start = 0, time.perf_counter()
        for batch in batches:
            await store.apply(batch)
            count += len(batch)
        return count / (time.perf_counter() - start)
    finally:
        await store.close()


async def load_postgres(
    url: str,
    project: str,
    batches: Iterable[list[Insert]],
    *,
    total: int,
    maintenance_work_mem: str,
    progress: bool = False,
) -> tuple[float, float]:
    """Load with no vector index (the HNSW index and the users' vectors, dropped first if
    there), then build them once by opening the store with hnsw on. Memories/s through
    `store.apply`, and the index builds' seconds."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"DROP INDEX IF EXISTS memories_hnsw_{DIMS}")
    store = PostgresStore(url, project=project, hnsw=False)
    await store.open(dims=DIMS, model_id=model_id())  # (makes the users' vectors' index)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"DROP INDEX IF EXISTS memories_user_vectors_{DIMS}")
    count, start, shown = 0, time.perf_counter(), 0
    try:
        for batch in batches:
            await store.apply(batch)
            count += len(batch)
            if progress and count * 10 // total > shown:
                shown = count * 10 // total
                rate = count / (time.perf_counter() - start)
                say(f"  loaded {count:,} of {total:,} ({rate:.0f} memories/s so far)")
    finally:
        await store.close()
    rate = count / (time.perf_counter() - start)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("VACUUM (ANALYZE) memories")
    options = f"-c maintenance_work_mem={maintenance_work_mem}"
    indexer = PostgresStore(make_conninfo(url, options=options), project=project, hnsw=True)
    start = time.perf_counter()
    await indexer.open(dims=DIMS, model_id=model_id())
    build = time.perf_counter() - start
    await indexer.close()
    return rate, build


# -- part 1: add --------------------------------------------------------------------------------


def add_part(args: argparse.Namespace, pg: Postgres) -> None:
    say("== 1. Batched add(infer=False), memories/s ==")
    tmp = Path(tempfile.mkdtemp(prefix="engram-bench-add-"))
    url = pg.database()
    embedders: dict[str, dict[str, Any] | None] = {
        "MiniLM": None,
        "hashing": {"provider": "hashing", "config": {"embedding_dims": DIMS}},
    }
    memories: dict[tuple[str, str], Memory] = {}
    for name, embedder in embedders.items():
        for backend in BACKENDS:
            config: dict[str, Any] = {} if embedder is None else {"embedder": embedder}
            if backend == "PostgreSQL":
                store = {"connection_string": url, "collection_name": f"bench-add-{name.lower()}"}
                config["vector_store"] = {"provider": "pgvector", "config": store}
            else:
                sync = backend.split()[1]
                path = str(tmp / f"{name}-{sync}.db")
                store = {"path": path, "synchronous": sync}
                config["vector_store"] = {"provider": "sqlite", "config": store}
            memories[name, backend] = memory = Memory(config)
            memory.add("warm up", user_id="warm-up", infer=False)  # loads the model, opens
    texts = corpus(1000, seed=2)
    base, _ = embed(texts)
    rows = Rows(texts, base, args.noise, seed=2, step=0.01)
    given = "store.apply, vectors given"
    stores: dict[tuple[str, str], Callable[[], Store]] = {
        (given, "SQLite FULL"): lambda: SQLiteStore(tmp / "FULL.db", synchronous="FULL"),
        (given, "SQLite OFF"): lambda: SQLiteStore(tmp / "OFF.db", synchronous="OFF"),
        (given, "PostgreSQL"): lambda: PostgresStore(url, project="bench-add-store"),
    }
    bare = pg.database() if pg.cluster else None  # a database with no HNSW index at all
    if bare is not None:
        stores["store.apply, no HNSW index", "PostgreSQL"] = lambda: PostgresStore(
            bare, project="bench-add-store", hnsw=False
        )
    low = pg.database() if pg.cluster else None  # its HNSW index built at ef_construction 64
    if low is not None:
        fast = Hnsw(m=16, ef_construction=64, ef_search=EF_SEARCH)
        stores["store.apply, ef_construction 64", "PostgreSQL"] = lambda: PostgresStore(
            low, project="bench-add-store", hnsw=fast
        )
    rates: dict[tuple[str, str], list[float]] = {}
    rng = random.Random(7)
    try:
        for _ in range(args.rounds):  # interleaved: a noisy spell hits every column
            for name in embedders:
                for backend in BACKENDS:
                    rate = add_round(memories[name, backend], args.add_count, args.batch, rng)
                    rates.setdefault((f"Memory.add, {name} embedder", backend), []).append(rate)
            for key, make in stores.items():
                sizes = batch_sizes(args.add_count, args.batch)
                batches = [rows.make(["adder"] * n) for n in sizes]
                rates.setdefault(key, []).append(asyncio.run(store_round(make, batches)))
        totals = {key: m.get_all(user_id="adder", limit=1)["total"] for key, m in memories.items()}
    finally:
        for memory in memories.values():
            memory.close()
        shutil.rmtree(tmp, ignore_errors=True)
    add_table(args, rates, totals)


def add_table(
    args: argparse.Namespace, rates: dict[tuple[str, str], list[float]], totals: dict[Any, int]
) -> None:
    expected = args.rounds * args.add_count
    held = "holds" if all(t == expected for t in totals.values()) else f"does NOT hold ({totals})"
    say(
        f"checked: every add([...{args.batch} messages...], user_id=..., infer=False) call "
        f"returned one ADD event per message, and each scope {held} {expected} memories after"
    )
    calls = args.add_count // args.batch
    say(
        f"{args.rounds} rounds of {args.add_count} memories per cell ({calls} calls of "
        f"{args.batch}), interleaved; median round (min-max)"
    )
    header = " | ".join(f"{b:>20}" for b in BACKENDS)
    say(f"{'what is timed':32} | {header}")
    for what in (
        "Memory.add, MiniLM embedder",
        "Memory.add, hashing embedder",
        "store.apply, vectors given",
        "store.apply, ef_construction 64",
        "store.apply, no HNSW index",
    ):
        if (what, "PostgreSQL") not in rates:
            continue
        cells = []
        for backend in BACKENDS:
            values = sorted(rates.get((what, backend), []))
            cells.append(
                f"{statistics.median(values):6.0f} ({values[0]:.0f}-{values[-1]:.0f})"
                if values
                else "-"
            )
        say(f"{what:32} | " + " | ".join(f"{c:>20}" for c in cells))
    say(
        "Memory.add, MiniLM: the public API as shipped (embedding included); hashing: the same "
        "API with embedding next to free; store.apply: the store alone (inserts, history rows, "
        "indexes incl. HNSW at ef_construction 200; then PostgreSQL with its HNSW index built at "
        'ef_construction 64 (`hnsw: {"ef_construction": 64}`), and with no HNSW index).'
    )
    say(
        "SQLite FULL is durable per commit; SQLite OFF and this PostgreSQL (fsync=off, "
        "synchronous_commit=off) are not."
    )


def batch_sizes(count: int, batch: int) -> list[int]:
    return [min(batch, count - offset) for offset in range(0, count, batch)]


def add_round(memory: Memory, count: int, batch: int, rng: random.Random) -> float:
    calls = [
        [{"role": "user", "content": sentence(rng)} for _ in range(n)]
        for n in batch_sizes(count, batch)
    ]
    start = time.perf_counter()
    for messages in calls:
        result = memory.add(messages, user_id="adder", infer=False)
        if len(result["results"]) != len(messages):
            raise SystemExit(f"add stored {len(result['results'])} of {len(messages)} messages")
    return count / (time.perf_counter() - start)


async def store_round(make: Callable[[], Store], batches: list[list[Insert]]) -> float:
    store = make()
    await store.open(dims=DIMS, model_id="bench-precomputed")
    try:
        start = time.perf_counter()
        for batch in batches:
            await store.apply(batch)
        return sum(len(b) for b in batches) / (time.perf_counter() - start)
    finally:
        await store.close()


# -- search timing and plans ----------------------------------------------------------------------


def time_searches(
    memories: dict[str, Memory], scopes: Sequence[str], texts: Sequence[str]
) -> dict[str, list[float]]:
    """ms per `Memory.search` for each memory, query by query in rotating order (a noisy spell
    hits them all), the scopes taken in turn. A few searches of each scope first, not timed."""
    names = list(memories)
    for name in names:
        for scope in scopes:
            for i in range(2):
                memories[name].search(f"warm up {i}", user_id=scope, top_k=10)
    timings: dict[str, list[float]] = {name: [] for name in names}
    for i, text in enumerate(texts):
        scope = scopes[i % len(scopes)]
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            memories[name].search(text, user_id=scope, top_k=10)
            timings[name].append((time.perf_counter() - start) * 1000)
    return timings


def query_embedding_ms(count: int = 200) -> float:
    embedder = minilm()
    embedder.embed_sync(["warm up"])
    timings = []
    for text in questions(count, offset=900_000):
        start = time.perf_counter()
        embedder.embed_sync([text])
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


@contextlib.contextmanager
def capturing() -> Iterator[list[tuple[str, Any]]]:
    """The statements psycopg runs meanwhile (query text, parameters)."""
    seen: list[tuple[str, Any]] = []
    original = psycopg.AsyncCursor.execute

    async def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if isinstance(query, str):
            seen.append((query, params))
        return await original(self, query, params, **kwargs)

    with mock.patch.object(psycopg.AsyncCursor, "execute", execute):
        yield seen


def kind_of(query: str) -> str | None:
    if "ORDER BY d LIMIT" in query:
        return "vector (nearest k)"
    if "fts @@" in query and "LIMIT" in query:
        return "full text (matches)"
    return None


async def explain(url: str, project: str, query: str, params: Any) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of a read as the store runs it (same transaction settings)."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await register_vector_async(conn)
        async with conn.transaction():
            await conn.execute(READ_BEGIN)
            await conn.execute(
                sql.SQL("SET LOCAL engram.project = {}").format(sql.Literal(project))
            )
            cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params)
            return [str(r[0]) for r in await cur.fetchall()]


SHOWN = re.compile(r"(Scan|Rows Removed|Execution Time)")
VECTOR_LITERAL = re.compile(r"'\[[^\]]*\]'")


def plans_of(memory: Memory, url: str, project: str, scope: str, label: str) -> list[str]:
    """One search's vector and full-text statements, explained: a short summary per statement
    (printed) and the full plans (appended to PLANS)."""
    with capturing() as seen:
        memory.search(questions(1, offset=999_000)[0], user_id=scope, top_k=10)
    summary = []
    with PLANS.open("a") as out:
        for query, params in seen:
            kind = kind_of(query)
            if kind is None:
                continue
            plan = asyncio.run(explain(url, project, query, params))
            shown = [p for p in params if isinstance(p, str | int | list)]
            out.write(f"### {label}, scope {scope}: {kind}\n{query}\nparameters: {shown}\n")
            out.write("\n".join(VECTOR_LITERAL.sub("'[...]'", line) for line in plan) + "\n\n")
            top = [line for line in plan if "Execution Time" in line]
            for line in plan:  # the statement's own nodes, not its per-row subplans
                if "SubPlan" in line:
                    break
                if SHOWN.search(line) and not re.search("Subquery Scan|Execution Time", line):
                    top.insert(-1, line)
            nodes = [re.sub(r"\s+\(cost=.*", "", line).strip(" ->") for line in top]
            terms = [p for p in params if isinstance(p, str) and p.startswith("'")]
            what = f"{kind} {terms[0]}" if terms else kind
            summary.append(f"  {label}, {scope}, {what}: " + "; ".join(nodes))
    return summary


# -- part 2: search -----------------------------------------------------------------------------


def search_part(args: argparse.Namespace, pg: Postgres, texts: list[str], base: Matrix) -> None:
    say(
        "== 2. Search, end to end: Memory.search(query, user_id=..., top_k=10), default recipe "
        "(hybrid), p50 / p95 ms =="
    )
    tmp = Path(tempfile.mkdtemp(prefix="engram-bench-search-"))
    db, url, project = tmp / "engram.db", pg.database(), "bench-search"
    rows = Rows(texts, base, args.noise, seed=3, step=10.0)
    small = "other-0"
    results: list[tuple[str, dict[str, list[float]]]] = []
    loads: list[str] = []
    plans: list[str] = []
    loaded = 0
    role_url: str | None = None
    try:
        for stage, size in enumerate(sorted(args.sizes)):
            users = ["target"] * (size - loaded)
            if stage == 0:
                users += [f"other-{i}" for i in range(100) for _ in range(100)]
            random.Random(stage).shuffle(users)  # the scopes' rows interleaved, as written
            inserts = rows.make(users)
            sqlite_rate = asyncio.run(load_sqlite(db, chunks(inserts, 5000)))
            pg_rate, build = asyncio.run(
                load_postgres(
                    url,
                    project,
                    chunks(inserts, 5000),
                    total=len(inserts),
                    maintenance_work_mem=args.maintenance_work_mem,
                )
            )
            loads.append(
                f"{size:,} in scope: loaded {len(inserts):,} memories, SQLite "
                f"{sqlite_rate:.0f}/s, PostgreSQL {pg_rate:.0f}/s (no HNSW index), "
                f"then HNSW built in {build:.1f} s"
            )
            loaded = size
            if stage == 0:
                role_url = pg.as_role(url)
            memories = {
                "SQLite": Memory(
                    {"vector_store": {"provider": "sqlite", "config": {"path": str(db)}}}
                ),
                "PostgreSQL": Memory(
                    {
                        "vector_store": {
                            "provider": "pgvector",
                            "config": {"connection_string": url, "collection_name": project},
                        }
                    }
                ),
            }
            if role_url is not None:
                memories["PostgreSQL, RLS"] = Memory(store=PostgresStore(role_url, project=project))
            try:
                big = time_searches(memories, ["target"], questions(args.queries, 1000 * stage))
                little = time_searches(
                    memories, [small], questions(args.queries, 500 + 1000 * stage)
                )
                results.append((f"{size:,} in scope", big))
                results.append((f"100 in scope (of {size + 10_000:,})", little))
                if stage == len(args.sizes) - 1:
                    for name in ("PostgreSQL", "PostgreSQL, RLS"):
                        if name in memories:
                            plan_url = url if name == "PostgreSQL" else role_url or url
                            for scope in ("target", small):
                                plans += plans_of(memories[name], plan_url, project, scope, name)
            finally:
                for memory in memories.values():
                    memory.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(
        f"data: {len(texts):,} distinct texts embedded once by MiniLM; each memory one of them "
        f"with its vector plus Gaussian noise (sigma {args.noise} per dimension, renormalised), "
        "loaded through store.apply (5,000 a call); 100 other users of 100 memories each"
    )
    for line in loads:
        say(f"  {line}")
    say(f"query embedding alone (MiniLM, in every search below) p50: {query_embedding_ms():.2f} ms")
    names = list(results[0][1])
    say(f"{args.queries} queries per row, each a new text, backends in rotating order")
    say(f"{'scope':26} | " + " | ".join(f"{n:>17}" for n in names))
    for label, timings in results:
        say(f"{label:26} | " + " | ".join(f"{p50_p95(timings[n]):>17}" for n in names))
    if plans:
        say(f"plans of one search at {max(args.sizes):,} in scope (full plans in {PLANS}):")
        for line in plans:
            say(line)


# -- part 3: scale ------------------------------------------------------------------------------


def scale_part(args: argparse.Namespace, pg: Postgres, texts: list[str], base: Matrix) -> None:
    total, big_n, big_size = args.total, args.big_scopes, args.big_scope_size
    users_n = args.users or total // 10
    small_n, small_rows = users_n - big_n, total - big_n * big_size
    if small_n < 1 or small_rows < small_n:
        raise SystemExit("--total too small for --big-scopes x --big-scope-size and --users")
    say(f"== 3. Scale: {total:,} memories in one PostgreSQL project, {users_n:,} users ==")
    rng = np.random.default_rng(11)
    owner = np.concatenate(
        [
            np.repeat(np.arange(big_n), big_size),
            big_n + np.arange(small_n),
            big_n + rng.integers(0, small_n, small_rows - small_n),
        ]
    )
    rng.shuffle(owner)  # every user's rows spread over the whole load, as written over time
    names = [f"big-{i}" for i in range(big_n)] + [f"user-{i}" for i in range(small_n)]
    url, project = pg.database(), "bench-scale"
    rows = Rows(texts, base, args.noise, seed=5, step=3.0e7 / total)
    made = (
        "as an earlier run stored them (--reuse)"
        if not texts
        else f"{len(texts):,} distinct texts embedded once by MiniLM, each memory one of them with "
        f"its vector plus Gaussian noise (sigma {args.noise} per dimension, renormalised), loaded "
        "through store.apply (5,000 a call)"
    )
    say(
        f"data: {big_n} users with {big_size:,} memories, {small_n:,} users with "
        f"{small_rows / small_n:.1f} on average; {made}"
    )
    say(f"database: {url}, project {project}")
    free_before = shutil.disk_usage(tempfile.gettempdir()).free

    def batches() -> Iterator[list[Insert]]:
        for offset in range(0, total, 5000):
            yield rows.make([names[k] for k in owner[offset : offset + 5000]])

    load_scale(args, url, project, batches())
    for line in disk_use(url, pg, free_before):
        say(line)
    role_url = pg.as_role(url)
    big_users = names[:big_n]
    small_users = list(random.Random(3).sample(names[big_n:], min(50, small_n)))
    timings: dict[str, dict[str, list[float]]] = {}
    plans: list[str] = []
    runs = [("PostgreSQL", url, args.queries, 3000)]
    if role_url is not None:
        runs.append(("PostgreSQL, RLS", role_url, args.rls_queries, 5000))
    for name, as_url, count, offset in runs:
        memory = Memory(store=PostgresStore(as_url, project=project))
        try:
            timings[name] = {
                f"{big_size:,} in scope": time_searches(
                    {"m": memory}, big_users, questions(count, offset)
                )["m"],
                "~10 in scope": time_searches(
                    {"m": memory}, small_users, questions(count, offset + 1000)
                )["m"],
            }
            for scope in (big_users[0], small_users[0]):
                plans += plans_of(memory, as_url, project, scope, name)
        finally:
            memory.close()
    say(
        "search, end to end (Memory.search, top_k=10, hybrid; query embedding included), "
        "p50 / p95 ms:"
    )
    for name, by_scope in timings.items():
        for scope, values in by_scope.items():
            say(f"  {name:16} | {scope:16} | {p50_p95(values)} | {len(values)} queries")
    say(
        "HNSW recall against exact search (numpy over every vector of the scope), store.search "
        "(vector only) as the store runs it:"
    )
    recalls = asyncio.run(recall(url, project, big_users, small_users, args.recall_queries))
    for line in recalls:
        say(line)
    say(f"plans of one search (full plans in {PLANS}):")
    for line in plans:
        say(line)


def load_scale(
    args: argparse.Namespace, url: str, project: str, batches: Iterable[list[Insert]]
) -> None:
    total = args.total
    start = time.perf_counter()
    if args.reuse and stored(url, project) == total:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT model_id FROM stores WHERE project = %s", (project,))
            recorded = (row.fetchone() or ("",))[0]
        PRECISION["precision"] = next(p for p, m in MODEL_IDS.items() if m == recorded)
        say(f"load: reused the {total:,} memories stored by an earlier run (--reuse; "
            f"MiniLM {PRECISION['precision']})")  # fmt: skip
    else:
        rate, build = asyncio.run(
            load_postgres(
                url,
                project,
                batches,
                total=total,
                maintenance_work_mem=args.maintenance_work_mem,
                progress=True,
            )
        )
        say(
            f"load: {rate:.0f} memories/s through store.apply with no vector index (fsync=off, "
            f"synchronous_commit=off); HNSW and users' vectors index builds {build:.0f} s "
            f"(maintenance_work_mem {args.maintenance_work_mem}); "
            f"{time.perf_counter() - start:.0f} s in all"
        )


def stored(url: str, project: str) -> int:
    """Memories the project holds already (0 when the schema is not there yet)."""
    with psycopg.connect(url) as conn:
        try:
            row = conn.execute(
                "SELECT count(*) FROM memories WHERE project = %s", (project,)
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


def size(n: float) -> str:
    return f"{n / 1024**3:.2f} GB" if n >= 1024**3 else f"{n / 1024**2:.0f} MB"


def disk_use(url: str, pg: Postgres, free_before: int) -> list[str]:
    with psycopg.connect(url) as conn:
        sizes = conn.execute(
            "SELECT pg_database_size(current_database()), pg_table_size('memories'), "
            "pg_indexes_size('memories'), pg_total_relation_size('history'), "
            "pg_total_relation_size('lexemes')"
        ).fetchone()
        indexes = conn.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = 'memories'::regclass ORDER BY 2 DESC"
        ).fetchall()
    if sizes is None:
        return []
    lines = [
        f"disk: database {size(sizes[0])}: memories table {size(sizes[1])} + its indexes "
        f"{size(sizes[2])}, history {size(sizes[3])}, lexemes {size(sizes[4])}",
        "  indexes: " + ", ".join(f"{name} {size(n)}" for name, n in indexes),
    ]
    data = pg.data_dir_bytes()
    free = shutil.disk_usage(tempfile.gettempdir()).free
    cluster = f"cluster directory {size(data)} (with WAL); " if data is not None else ""
    lines.append(f"  {cluster}free disk {size(free)} (was {size(free_before)})")
    return lines


async def recall(
    url: str, project: str, big_users: list[str], small_users: list[str], count: int
) -> list[str]:
    """recall@k of `store.search` (the HNSW index as the store queries it) against numpy's exact
    top k over the scope's vectors; a result counts when its exact cosine reaches the k-th best."""
    query_vectors, _ = embed(questions(count, offset=7000), prefix="")
    store = PostgresStore(url, project=project)
    await store.open(dims=DIMS, model_id=model_id())
    today = datetime.now(UTC).date().isoformat()
    out = []
    scopes: dict[str, tuple[list[str], Matrix]] = {}
    try:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await register_vector_async(conn)
            everyone = f"the whole project ({stored(url, project):,}, no filter)"
            sets = (  # (k, top_k asked): top_k above EF_SEARCH raises ef_search to it (the store)
                (everyone, [None], ((10, 10), (50, 50))),
                (f"{len(big_users)} big scopes", big_users, ((10, 10), (50, 50), (10, 500))),
                (f"{len(small_users)} ~10-memory scopes", small_users, ((10, 10),)),
            )
            for label, users, ks in sets:
                for k, asked in ks:
                    found, latencies, short = [], [], 0
                    for i, vector in enumerate(query_vectors):
                        user = users[i % len(users)]
                        key = user or ""
                        if key not in scopes:
                            scopes[key] = await scope_vectors(conn, project, user)
                        ids, matrix = scopes[key]
                        cosines = matrix @ (vector / np.linalg.norm(vector))
                        floor = -np.partition(-cosines, min(k, len(ids)) - 1)[min(k, len(ids)) - 1]
                        where = None if user is None else resolve_filters(None, user_id=user)
                        start = time.perf_counter()
                        hits = await store.search(vector, where, today=today, top_k=asked)
                        latencies.append((time.perf_counter() - start) * 1000)
                        hits = hits[:k]
                        places = {x: n for n, x in enumerate(ids)}
                        good = sum(
                            h.record.id in places and cosines[places[h.record.id]] >= floor - 1e-4
                            for h in hits
                        )
                        found.append(good / min(k, len(ids)))
                        short += len(hits) < min(k, len(ids))
                    how = f"top_k={asked}, ef_search {max(asked, EF_SEARCH)}"
                    out.append(
                        f"  {label}: recall@{k} {statistics.mean(found):.3f} (min "
                        f"{min(found):.2f}) over {len(found)} queries ({how}); {short} returned "
                        f"fewer than k; store.search p50 / p95 {p50_p95(latencies)} ms"
                    )
    finally:
        await store.close()
    return out


async def scope_vectors(
    conn: psycopg.AsyncConnection[Any], project: str, user: str | None
) -> tuple[list[str], Matrix]:
    """Ids and normalised vectors of a user's memories (None: of the whole project)."""
    ids: list[str] = []
    parts: list[Matrix] = []
    query = "SELECT id, embedding FROM memories WHERE project = %s"
    params: tuple[str, ...] = (project,)
    if user is not None:
        query, params = query + " AND user_id = %s", (project, user)
    async with conn.cursor(name="vectors") as cur:  # server side: a million rows in pieces
        await cur.execute(query, params)
        while rows := await cur.fetchmany(20_000):
            ids += [str(r[0]) for r in rows]
            parts.append(np.array([r[1].to_numpy() for r in rows], dtype=np.float32))
    matrix = np.concatenate(parts) if parts else np.zeros((0, DIMS), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return ids, matrix


# -- part 4: servers ----------------------------------------------------------------------------


class Server:
    """One `engram serve` (its own home and port) started here."""

    def __init__(self, home: Path, *flags: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.port = server_load.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "ENGRAM_HOME": str(home),
            "ENGRAM_ADMIN_API_KEY": server_load.KEY,
            "ENGRAM_RATE_LIMIT": "0",
        }
        self.log = (home / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engram.cli", "serve", "--port", str(self.port), *flags],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"engram serve exited ({self.log.name})")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"engram serve did not start ({self.log.name})")

    def cpu(self) -> float | None:
        return server_load.server_cpu(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def fill(server: Server, count: int) -> int:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Token {server_load.KEY}"}, timeout=300
    ) as client:
        server_load.fill(client, count, random.Random(5))
        answer = client.post(
            "/v3/memories/", json={"filters": {"user_id": server_load.USER}, "page_size": 1}
        )
        return int(answer.json()["count"])


def busy() -> tuple[int, int]:
    """The machine's busy and total CPU ticks so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


async def spread(
    urls: list[str],
    make: Callable[[random.Random], tuple[str, str, dict[str, Any] | None]],
    total: int,
    concurrency: int,
) -> dict[str, Any]:
    """`total` requests spread evenly over the servers, `concurrency` connections in all."""
    each, connections = total // len(urls), max(1, concurrency // len(urls))
    start = time.perf_counter()
    runs = await asyncio.gather(*(server_load.load(u, make, each, connections) for u in urls))
    wall = time.perf_counter() - start
    return {
        "requests": each * len(urls),
        "rps": each * len(urls) / wall,
        "errors": sum(r["errors"] for r in runs),
        "latencies": [x for r in runs for x in r["latencies"]],
    }


def measure(
    servers: list[Server], pg: Postgres | None, make: Any, total: int, concurrency: int
) -> dict[str, Any]:
    def cpu() -> tuple[float, float, float, tuple[int, int]]:
        own = sum(s.cpu() or 0.0 for s in servers)
        db = (pg.cpu_seconds() or 0.0) if pg is not None else 0.0
        return own, db, time.process_time(), busy()

    before = cpu()
    run = asyncio.run(spread([s.url for s in servers], make, total, concurrency))
    after = cpu()
    n = run["requests"]
    run["server_ms"] = (after[0] - before[0]) * 1000 / n
    run["pg_ms"] = (after[1] - before[1]) * 1000 / n if pg is not None else None
    run["client_ms"] = (after[2] - before[2]) * 1000 / n
    ticks = after[3][1] - before[3][1]
    run["busy"] = 100 * (after[3][0] - before[3][0]) / ticks if ticks else 0.0
    return run


def servers_part(args: argparse.Namespace, pg: Postgres) -> None:
    say(
        "== 4. Server search requests/s: engram serve on one PostgreSQL database, SQLite for "
        "reference =="
    )
    tmp = Path(tempfile.mkdtemp(prefix="engram-bench-serve-"))
    url = pg.database()
    started: list[Server] = []
    try:
        on_pg = [Server(tmp / f"pg-{i}", "--database-url", url) for i in range(3)]
        started += on_pg
        for server in on_pg:
            server.wait()
        filler = Server(tmp / "sqlite-1", "--workers", "1")
        started.append(filler)
        filler.wait()
        counts = {
            "PostgreSQL": fill(on_pg[0], args.server_memories),
            "SQLite": fill(filler, args.server_memories),
        }
        filler.stop()
        shutil.copytree(tmp / "sqlite-1", tmp / "sqlite-2")
        sqlite_1 = Server(tmp / "sqlite-1", "--workers", "1")
        sqlite_2 = Server(tmp / "sqlite-2", "--workers", "2")
        started += [sqlite_1, sqlite_2]
        sqlite_1.wait()
        sqlite_2.wait()
        configs: list[tuple[str, list[Server], Postgres | None]] = [
            ("SQLite, --workers 1", [sqlite_1], None),
            ("SQLite, --workers 2", [sqlite_2], None),
            ("PostgreSQL, 1 server", on_pg[:1], pg),
            ("PostgreSQL, 2 servers", on_pg[:2], pg),
            ("PostgreSQL, 3 servers", on_pg, pg),
        ]
        for server in [sqlite_1, sqlite_2, *on_pg]:  # each process loads its model, its caches
            asyncio.run(server_load.load(server.url, server_load.search, 200, 4))
        operations = (("search", server_load.search), ("search*", server_load.search_distinct))
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for _ in range(args.rounds):  # interleaved: a noisy spell hits every configuration
            for op, make in operations:
                for name, servers, db in configs:
                    run = measure(servers, db, make, args.server_requests, args.concurrency)
                    runs.setdefault((name, op), []).append(run)
    finally:
        for server in started:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    say(
        f"{counts['PostgreSQL']:,} memories in the scope on PostgreSQL, {counts['SQLite']:,} on "
        f"SQLite (filled through POST /v1/memories/); each PostgreSQL server --workers 1; "
        f"{args.concurrency} keep-alive connections in all, spread evenly over the servers; "
        f"{args.rounds} rounds of {args.server_requests} requests per cell, interleaved"
    )
    say(
        "search: 23 query texts asked again (vectors remembered); search*: every query a new "
        "text (embedded by MiniLM). req/s: median round (min-max); latency over all rounds; CPU "
        "ms per request and machine busy %: the median round's"
    )
    say(
        f"{'configuration':22} | {'op':7} | {'req/s':>15} | p50 ms | p99 ms | errors | "
        "server CPU | PostgreSQL CPU | load gen CPU | busy %"
    )
    for op, _ in operations:
        for name, _, _ in configs:
            rounds = sorted(runs[name, op], key=lambda r: float(r["rps"]))
            mid = rounds[len(rounds) // 2]
            latencies = [x for r in rounds for x in r["latencies"]]
            pg_cell = f"{mid['pg_ms']:.2f}" if mid["pg_ms"] is not None else "-"
            spread_ = f"{mid['rps']:.0f} ({rounds[0]['rps']:.0f}-{rounds[-1]['rps']:.0f})"
            say(
                f"{name:22} | {op:7} | {spread_:>15} | {percentile(latencies, 0.5):6.1f} | "
                f"{percentile(latencies, 0.99):6.1f} | {sum(r['errors'] for r in rounds):6} | "
                f"{mid['server_ms']:10.2f} | {pg_cell:>14} | {mid['client_ms']:12.2f} | "
                f"{mid['busy']:6.0f}"
            )


# -- main ---------------------------------------------------------------------------------------


def revision() -> str:
    """The commit the code is at (and whether src/ has changes besides)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "src")
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"commit {head}" + (" with uncommitted changes in src/" if dirty else "")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts",
        help="add,search,servers,scale (default: add,search,servers; "
        "with --total or --million: scale)",
    )
    parser.add_argument(
        "--database-url", help="a scratch PostgreSQL database (default: start a private cluster)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the private cluster running")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="scale: keep the memories an earlier run left in --database-url (same --total)",
    )
    parser.add_argument("--shared-buffers", default="2GB", help="of the private cluster")
    parser.add_argument("--maintenance-work-mem", default="4GB", help="for the HNSW builds")
    parser.add_argument(
        "--precision", choices=("fp32", "int8"), help="MiniLM's graph (default: the default's)"
    )
    parser.add_argument("--noise", type=float, default=0.01, help="per vector dimension")
    parser.add_argument("--distinct", type=int, default=20_000, help="texts embedded by MiniLM")
    parser.add_argument("--add-count", type=int, default=2000, help="memories per add round")
    parser.add_argument("--batch", type=int, default=500, help="messages per add call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="10000,100000", help="memories in the searched scope")
    parser.add_argument("--queries", type=int, default=200, help="searches per row")
    parser.add_argument("--total", type=int, default=0, help="memories of the scale part")
    parser.add_argument("--million", action="store_true", help="--total 1000000")
    parser.add_argument("--users", type=int, default=0, help="of the scale part (--total / 10)")
    parser.add_argument("--big-scopes", type=int, default=3, help="10k-memory users (scale)")
    parser.add_argument("--big-scope-size", type=int, default=10_000)
    parser.add_argument("--rls-queries", type=int, default=20, help="scale searches as the role")
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--server-memories", type=int, default=10_000)
    parser.add_argument("--server-requests", type=int, default=600, help="per round and cell")
    parser.add_argument("--concurrency", type=int, default=12, help="connections in all")
    args = parser.parse_args()
    if args.precision:
        PRECISION["precision"] = args.precision
    if args.million:
        args.total = 1_000_000
    default = "scale" if args.total else "add,search,servers"
    args.parts = [p.strip() for p in (args.parts or default).split(",") if p.strip()]
    if "scale" in args.parts and not args.total:
        raise SystemExit("the scale part needs --total N or --million")
    args.sizes = [int(s) for s in args.sizes.split(",")]
    return args


def main() -> None:
    args = arguments()
    parts = args.parts
    OUT.mkdir(exist_ok=True)
    PLANS.write_text("")
    begun = time.perf_counter()
    say(f"bench/postgres_scale.py {' '.join(sys.argv[1:])}".rstrip())
    say(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {revision()}")
    pg = Postgres(args.database_url, args.shared_buffers)
    try:
        for line in pg.describe():
            say(line)
        texts: list[str] = []
        base = np.zeros((0, DIMS), dtype=np.float32)
        reusing = args.reuse and parts == ["scale"]  # the stored memories: no texts needed
        if "search" in parts or ("scale" in parts and not reusing):
            texts = corpus(args.distinct)
            base, seconds = embed(texts)
            sample = base[: min(len(base), 2000)] @ base.T
            sample[np.arange(len(sample)), np.arange(len(sample))] = -1.0
            say(
                f"embedded {len(texts):,} distinct texts in {seconds:.1f} s (MiniLM); cosine to "
                f"the nearest other text: mean {sample.max(axis=1).mean():.3f}"
            )
        for part in parts:
            say()
            started = time.perf_counter()
            if part == "add":
                add_part(args, pg)
            elif part == "search":
                search_part(args, pg, texts, base)
            elif part == "scale":
                scale_part(args, pg, texts, base)
            elif part == "servers":
                servers_part(args, pg)
            else:
                raise SystemExit(f"unknown part {part!r}")
            say(f"({part}: {time.perf_counter() - started:.0f} s)")
    finally:
        pg.close(keep=args.keep)
    say(f"\nwall time {time.perf_counter() - begun:.0f} s")


if __name__ == "__main__":
    main()
