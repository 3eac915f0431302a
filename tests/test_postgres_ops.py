"""Running Engram on PostgreSQL: `engram db status / upgrade`, `engram migrate` between SQLite
and PostgreSQL (byte for byte through the JSON Lines transfer), and Row-Level Security keeping
projects apart even for a query that forgets its project."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from engram import Memory
from engram.cli import main
from engram.store.postgres.schema import MIGRATIONS, NAMES, SCHEMA_VERSION, migrate_url
from engram.store.postgres.schema import status as schema_status
from engram.store.postgres.store import PostgresStore
from engram.store.sqlite.store import SQLiteStore
from engram.transfer import export_lines, import_lines

CONFIG = {"graph_store": {"provider": "sqlite"}, "embedder": {"provider": "hashing"}}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(["--json", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else err)


def export(memory: Memory) -> list[str]:
    async def collect() -> list[str]:
        return [line async for line in export_lines(memory.async_memory, None)]

    return memory._loop.run(collect())


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A SQLite store with memories, history, graph, profile facts and feedback."""
    where = tmp_path / "source"
    with Memory({**CONFIG, "vector_store": {"provider": "sqlite",
                                            "config": {"path": str(where / "engram.db")}}}) as m:  # fmt: skip
        m.add("I live in Porto.", user_id="alex", timestamp="2025-01-01T00:00:00Z")
        m.add("I moved to Lisbon.", user_id="alex", timestamp="2025-06-01T00:00:00Z")
        gone = m.add("I work at Nimbus.", user_id="alex")["results"][0]["id"]
        m.delete(gone)
        kept = m.add("I have a dog named Rex.", user_id="bob", metadata={"pet": True})
        m.feedback(kept["results"][0]["id"], "POSITIVE", "right")
        m.add("Remember the deploy window.", agent_id="ops", run_id="r1", infer=False)
    return where


def test_db_status_and_upgrade(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, status = cli(capsys, "db", "status", "--database-url", pg_url)
    assert code == 0 and status["schema_version"] == 0
    assert status["engram_schema_version"] == SCHEMA_VERSION
    assert status["pending"] == [f"{n + 1}: {name}" for n, name in enumerate(NAMES)]
    assert status["pgvector"] >= "0.8" and status["in_recovery"] is False
    code, upgraded = cli(capsys, "db", "upgrade", "--database-url", pg_url)
    assert code == 0 and upgraded["schema_version"] == SCHEMA_VERSION and upgraded["pending"] == []
    assert "ALTER FUNCTION" in status["full_text_under_rls"]  # before: what to run
    assert upgraded["full_text_under_rls"] == "through the GIN index"  # migrated by a superuser
    assert upgraded["full_text_by_scope"] == "through memories_scope_fts"
    code, again = cli(capsys, "db", "upgrade", "--database-url", pg_url)  # nothing to do
    assert code == 0 and again["schema_version"] == SCHEMA_VERSION
    code, error = cli(capsys, "db", "status", "--database-url", "postgresql://nobody@127.0.0.1:1/x")
    assert code == 2 and "cannot connect" in error


def test_db_status_of_sqlite_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Memory({**CONFIG, "vector_store": {"provider": "sqlite",
                                            "config": {"path": str(tmp_path / "engram.db")}}}) as m:  # fmt: skip
        m.get_all(user_id="x")  # (opens the store)
    code, status = cli(capsys, "--data-dir", str(tmp_path), "db", "upgrade")
    assert code == 0 and [s["pending"] for s in status["stores"]] == [0]


def test_migrate_round_trips_byte_for_byte(
    store_dir: Path, tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Memory(CONFIG, store=SQLiteStore(store_dir / "engram.db")) as original:
        lines = export(original)
    code, moved = cli(capsys, "--embedder", "hashing", "migrate", "--from", str(store_dir),
                      "--to", pg_url, "--collection", "alex-app")  # fmt: skip
    assert code == 0, moved
    memories = sum(json.loads(line)["type"] == "memory" for line in lines)
    assert memories >= 3 and moved["moved"]["alex-app"]["memories"] == memories
    with Memory(CONFIG, store=PostgresStore(pg_url, project="alex-app")) as on_postgres:
        assert export(on_postgres) == lines
        hits = on_postgres.search("where does alex live", user_id="alex")["results"]
        assert "Lisbon" in hits[0]["memory"]
    back = tmp_path / "back"
    code, moved = cli(capsys, "--embedder", "hashing", "migrate", "--from", pg_url,
                      "--collection", "alex-app", "--to", str(back))  # fmt: skip
    assert code == 0, moved
    with Memory(CONFIG, store=SQLiteStore(back / "engram.db")) as round_tripped:
        assert export(round_tripped) == lines  # SQLite -> PostgreSQL -> SQLite, byte for byte
    # Into a project that exists: refused, and nothing changes; the same into an existing file.
    code, error = cli(capsys, "--embedder", "hashing", "migrate", "--from", str(store_dir),
                      "--to", pg_url, "--collection", "alex-app")  # fmt: skip
    assert code == 2 and "already" in error
    code, error = cli(capsys, "--embedder", "hashing", "migrate", "--from", pg_url,
                      "--collection", "alex-app", "--to", str(back))  # fmt: skip
    assert code == 2 and "exists already" in error
    with Memory(CONFIG, store=PostgresStore(pg_url, project="alex-app")) as on_postgres:
        assert export(on_postgres) == lines
    # Another embedder than the store's: refused before anything is written.
    code, error = cli(capsys, "migrate", "--from", str(store_dir), "--to", pg_url,
                      "--collection", "minilm")  # fmt: skip
    assert code == 2 and "dimensional" in error
    with psycopg.connect(pg_url) as conn:
        found = conn.execute("SELECT count(*) FROM memories WHERE project = 'minilm'").fetchone()
        assert found == (0,)


def test_row_level_security_confines_a_query_that_forgets_its_project(pg_url: str) -> None:
    for project, text in (("tenant-a", "A's secret plan."), ("tenant-b", "B's secret plan.")):
        with Memory(CONFIG, store=PostgresStore(pg_url, project=project)) as memory:
            memory.add(text, user_id="u", infer=False)
    app = pg_url.replace("postgres@", "engram_app:app-password@", 1)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS engram_app")
        admin.execute("CREATE ROLE engram_app LOGIN PASSWORD 'app-password'")
        admin.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                      "TO engram_app")  # fmt: skip
    try:
        with psycopg.connect(app) as conn:
            # No project named: nothing at all, whatever the query asks for.
            assert conn.execute("SELECT count(*) FROM memories").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM history").fetchone() == (0,)
            conn.execute("SET engram.project = 'tenant-a'")
            found = conn.execute("SELECT memory FROM memories").fetchall()  # no WHERE project
            assert found == [("A's secret plan.",)]
            assert conn.execute("SELECT count(*) FROM memories WHERE project = 'tenant-b'"
                                ).fetchone() == (0,)  # fmt: skip
            assert conn.execute("DELETE FROM memories WHERE project = 'tenant-b'").rowcount == 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                conn.execute("UPDATE memories SET project = 'tenant-b'")
        # The store itself runs as that role: it names its project in every transaction.
        with Memory(CONFIG, store=PostgresStore(app, project="tenant-b")) as memory:
            assert [m["memory"] for m in memory.get_all(user_id="u")["results"]] == [
                "B's secret plan."]  # fmt: skip
            memory.add("B's second plan.", user_id="u", infer=False)
            assert len(memory.search("plan", user_id="u")["results"]) == 2
        # Full-text matching may go through its GIN index under RLS: `@@` is LEAKPROOF in this
        # database (migration 4, run by a superuser here), so the planner may use it before the
        # policy's condition (the 1M-memory bench shows the plan; tiny tables here pick others).
        with psycopg.connect(app) as conn:
            leakproof = conn.execute(
                "SELECT proleakproof FROM pg_proc WHERE oid = "
                "'ts_match_vq(tsvector, tsquery)'::regprocedure"
            ).fetchone()
            assert leakproof == (True,)  # fmt: skip
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP OWNED BY engram_app")
            admin.execute("DROP ROLE engram_app")


DATA_TABLES = ("memories", "lexemes", "history", "messages", "entities", "relations", "profile",
               "profile_history", "feedback", "claims", "stores")  # fmt: skip


def test_every_statement_names_its_project(pg_cluster: Any, pg_url: str) -> None:
    """What the server log shows the store sending: every statement that reads or writes a
    table of memory data says which project (so it stays on one Citus shard, and RLS is never
    its only guard)."""
    log = Path(pg_cluster.base) / "server.log"
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {database} SET log_statement = 'all'")
    start = log.stat().st_size
    with Memory(CONFIG, store=PostgresStore(pg_url, project="logged")) as memory:
        memory.add("I live in Porto. I work at Nimbus.", user_id="alex")
        memory.add("I moved to Lisbon.", user_id="alex")
        kept = memory.add("I have a dog named Rex.", user_id="bob", metadata={"pet": True})
        memory.add([{"role": "user", "content": "Lunch at noon?"},
                    {"role": "assistant", "content": "Sure."}], run_id="r1", infer=False)  # fmt: skip
        memory_id = kept["results"][0]["id"]
        memory.feedback(memory_id, "POSITIVE", "right")
        memory.update(memory_id, "I have a dog named Rex and a cat.")
        memory.search("where does alex live", user_id="alex", enable_graph=True)
        memory.search("dog", filters={"AND": [{"user_id": "bob"}, {"pet": True}]})
        memory.get_all(user_id="alex")
        memory.history(memory_id)
        memory.get_profile(user_id="alex", include_history=True)
        lines = export(memory)
        memory.delete(memory_id)
        memory.delete_all(user_id="alex")
        memory._loop.run(memory.async_memory.store.reset())
    with Memory(CONFIG, store=PostgresStore(pg_url, project="logged-copy")) as copy:
        copy._loop.run(import_lines(copy.async_memory, lines))
    text = log.read_bytes()[start:].decode(errors="replace")
    statements = [
        s
        for s in _logged(text)
        if any(_mentions(s, t) for t in DATA_TABLES)
        and not re.match(r"\s*(ALTER|CREATE)\b", s, re.I)
    ]  # a migration: no project
    assert len(statements) > 50
    unconfined = [s for s in statements if "project" not in s]
    assert unconfined == []


def _logged(text: str) -> list[str]:
    """The statements of a server log (`LOG:  statement: ...` / `LOG:  execute <name>: ...`,
    continuation lines included)."""
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", text)
    found = []
    for entry in entries:
        match = re.search(r"LOG:  (?:statement|execute [^:]*): (.*)", entry, re.S)
        if match:
            found.append(match.group(1))
    return found


def _mentions(statement: str, table: str) -> bool:
    return re.search(rf"\b(from|join|into|update|table)\s+{table}\b", statement, re.I) is not None


def test_values_postgresql_cannot_hold_are_refused_and_nothing_is_written(pg_url: str) -> None:
    from engram.errors import ValidationError

    with Memory(CONFIG, store=PostgresStore(pg_url, project="nul")) as memory:
        memory.add("A fine fact.", user_id="u", infer=False)
        for call in (
            lambda: memory.add(["Kept?", "Not\x00this"], user_id="u", infer=False),
            lambda: memory.add("Fine.", user_id="u", metadata={"k": "v\x00"}, infer=False),
            lambda: memory.get_all(filters={"AND": [{"user_id": "u"}, {"k": "v\x00"}]}),
        ):
            with pytest.raises(ValidationError, match=r"NUL|0x00|u0000"):
                call()
        assert [m["memory"] for m in memory.get_all(user_id="u")["results"]] == ["A fine fact."]


def test_an_upgrade_keeps_the_server_roles_rights(pg_url: str) -> None:
    """A database at schema 4 whose server role was granted every table (docs/scaling.md's
    two-role setup) keeps serving after migration 5 adds a table: the roles with rights on the
    control tables get the same on it."""
    with psycopg.connect(pg_url, autocommit=True) as admin:
        _schema_at(admin, 4)
        admin.execute("DROP ROLE IF EXISTS engram_upgrade_app")
        admin.execute("CREATE ROLE engram_upgrade_app LOGIN PASSWORD 'app-password'")
        admin.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                      "TO engram_upgrade_app")  # fmt: skip
    try:
        asyncio.run(migrate_url(pg_url))
        app = pg_url.replace("postgres@", "engram_upgrade_app:app-password@", 1)
        with psycopg.connect(app) as conn:
            rights = conn.execute(
                "SELECT has_table_privilege('org_members', 'SELECT, INSERT, UPDATE, DELETE'), "
                "(SELECT version FROM engram_schema)"
            ).fetchone()
            assert rights == (True, SCHEMA_VERSION)
            assert conn.execute("SELECT count(*) FROM org_members").fetchone() == (0,)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP OWNED BY engram_upgrade_app")
            admin.execute("DROP ROLE engram_upgrade_app")


def test_without_btree_gin_the_plain_full_text_index_stays(pg_url: str) -> None:
    """Migration 6 by a role that may not install btree_gin (no CREATE on the database): the
    plain GIN index of `fts` stays, the migration is recorded, `engram db status` says what to
    run, and a scope's full text is matched row by row, with the same results."""
    with psycopg.connect(pg_url, autocommit=True) as admin:
        _schema_at(admin, 5)
        admin.execute("DROP ROLE IF EXISTS engram_owner")
        admin.execute("CREATE ROLE engram_owner LOGIN PASSWORD 'owner-password' BYPASSRLS")
        for table in ("engram_schema", "memories", "history"):  # the tables migrations 6-8 change
            admin.execute(f"ALTER TABLE {table} OWNER TO engram_owner")
        admin.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                      "TO engram_owner")  # fmt: skip
        admin.execute("GRANT CREATE ON SCHEMA public TO engram_owner")  # not on the database
    owner = pg_url.replace("postgres@", "engram_owner:owner-password@", 1)
    try:
        asyncio.run(migrate_url(owner))
        with psycopg.connect(pg_url) as conn:
            found = conn.execute(
                "SELECT (SELECT version FROM engram_schema), to_regclass('memories_fts')::text, "
                "to_regclass('memories_scope_fts')::text"
            ).fetchone()
        assert found == (SCHEMA_VERSION, "memories_fts", None)
        status = asyncio.run(schema_status(owner))
        assert "CREATE EXTENSION btree_gin" in status["full_text_by_scope"]
        store = PostgresStore(owner, project="plain")
        with Memory(CONFIG, store=store) as memory:
            memory.add([{"role": "user", "content": f"I went hiking in the Alps, trip {i}."}
                        for i in range(30)], user_id="u", infer=False)  # fmt: skip
            memory.add("I went hiking near Porto.", user_id="v", infer=False)
            assert store._by_scope is False
            hits = memory.search("hiking trip", user_id="u", top_k=50)["results"]
            assert len(hits) == 30 and {h["user_id"] for h in hits} == {"u"}
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP OWNED BY engram_owner")
            admin.execute("DROP ROLE engram_owner")


def _schema_at(admin: psycopg.Connection[Any], version: int) -> None:
    """The database as an Engram of schema `version` left it."""
    with admin.transaction():
        admin.execute("CREATE TABLE engram_schema (one boolean PRIMARY KEY DEFAULT true "
                      "CHECK (one), version int NOT NULL)")  # fmt: skip
        for migration in MIGRATIONS[:version]:
            admin.execute(migration)
        admin.execute("INSERT INTO engram_schema (version) VALUES (%s)", (version,))
