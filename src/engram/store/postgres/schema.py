"""The PostgreSQL schema, as an ordered list of migrations applied under an advisory lock (so
that servers starting together migrate once); `engram_schema` records the version.

Every table carries `project`: one database holds every store (a library collection, or a server
project), and every query is confined to its project; Row-Level Security enforces it again on the
tables of memory data (migration 3). Full-text search keeps, besides the GIN
index of each memory's `tsvector`, the statistics BM25 needs (documents per lexeme, documents
and tokens per project), maintained by statement-level triggers, so a query reads them instead
of counting matches.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import AsyncConnection

from engram.errors import StoreError

LOCK = 0x656E6772616D  # the advisory lock of migrations ("engram")

SCOPED_FULL_TEXT = "memories_scope_fts"  # migration 6
LEAKPROOF_FULL_TEXT = "ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF"
MIGRATIONS: list[str] = [
    # 1: everything
    """
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TEXT SEARCH CONFIGURATION engram (COPY = english);

    CREATE FUNCTION engram_date_words(stamp text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
        ltrim(substr(stamp, 9, 2), '0') || ' ' ||
        (ARRAY['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
               'September', 'October', 'November', 'December'])[substr(stamp, 6, 2)::int]
        || ' ' || substr(stamp, 1, 4);

    -- One text per (user, agent, run) scope, for indexes (ids are never empty: '' is "none").
    CREATE FUNCTION engram_scope_key(user_id text, agent_id text, run_id text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
        coalesce(user_id, '') || chr(31) || coalesce(agent_id, '') || chr(31) ||
        coalesce(run_id, '');

    CREATE TABLE stores (
        project text PRIMARY KEY,
        dims int NOT NULL,
        model_id text NOT NULL,
        epoch text NOT NULL,
        docs bigint NOT NULL DEFAULT 0,
        tokens bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE memories (
        project text NOT NULL,
        rid bigint GENERATED ALWAYS AS IDENTITY,
        id text NOT NULL,
        memory text NOT NULL,
        hash text NOT NULL,
        user_id text,
        agent_id text,
        run_id text,
        app_id text,
        actor_id text,
        role text,
        metadata jsonb NOT NULL DEFAULT '{}',
        categories jsonb NOT NULL DEFAULT '[]',
        memory_type text,
        immutable boolean NOT NULL DEFAULT false,
        expiration_date text,
        created_at text NOT NULL,
        updated_at text NOT NULL,
        feedback double precision NOT NULL DEFAULT 0,
        embedding vector NOT NULL,
        tokens int NOT NULL,
        scope_key text GENERATED ALWAYS AS (engram_scope_key(user_id, agent_id, run_id)) STORED,
        fts tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('engram', memory), 'A') ||
            setweight(to_tsvector('engram', coalesce(actor_id, '')), 'B') ||
            setweight(to_tsvector('engram', engram_date_words(created_at)), 'C')
        ) STORED,
        PRIMARY KEY (project, id),
        UNIQUE (project, rid)
    );
    CREATE INDEX memories_user ON memories (project, user_id, created_at);
    CREATE INDEX memories_agent ON memories (project, agent_id, created_at);
    CREATE INDEX memories_run ON memories (project, run_id, created_at);
    CREATE INDEX memories_scope ON memories (project, scope_key, rid);
    CREATE INDEX memories_hash ON memories (project, hash);
    CREATE INDEX memories_created ON memories (project, created_at);
    CREATE INDEX memories_fts ON memories USING gin (fts);

    CREATE TABLE lexemes (
        project text NOT NULL,
        lexeme text NOT NULL,
        docs bigint NOT NULL,
        PRIMARY KEY (project, lexeme)
    );
    CREATE FUNCTION engram_count_lexemes() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            UPDATE lexemes l SET docs = l.docs - c.n
            FROM (SELECT project, lexeme, count(*) AS n
                  FROM old_rows, unnest(tsvector_to_array(fts)) AS lexeme
                  GROUP BY project, lexeme) c
            WHERE l.project = c.project AND l.lexeme = c.lexeme;
            UPDATE stores s SET docs = s.docs - c.n, tokens = s.tokens - c.t
            FROM (SELECT project, count(*) AS n, sum(tokens) AS t FROM old_rows GROUP BY project) c
            WHERE s.project = c.project;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO lexemes (project, lexeme, docs)
            SELECT project, lexeme, count(*)
            FROM new_rows, unnest(tsvector_to_array(fts)) AS lexeme
            GROUP BY project, lexeme ORDER BY project, lexeme
            ON CONFLICT (project, lexeme) DO UPDATE SET docs = lexemes.docs + excluded.docs;
            UPDATE stores s SET docs = s.docs + c.n, tokens = s.tokens + c.t
            FROM (SELECT project, count(*) AS n, sum(tokens) AS t FROM new_rows GROUP BY project) c
            WHERE s.project = c.project;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER memories_lexemes_insert AFTER INSERT ON memories
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION engram_count_lexemes();
    CREATE TRIGGER memories_lexemes_update AFTER UPDATE ON memories
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION engram_count_lexemes();
    CREATE TRIGGER memories_lexemes_delete AFTER DELETE ON memories
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION engram_count_lexemes();

    CREATE TABLE history (
        project text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        id text NOT NULL,
        memory_id text NOT NULL,
        old_memory text,
        new_memory text,
        event text NOT NULL CHECK (event IN ('ADD', 'UPDATE', 'DELETE')),
        created_at text NOT NULL,
        updated_at text,
        is_deleted boolean NOT NULL DEFAULT false,
        actor_id text,
        role text,
        PRIMARY KEY (project, seq)
    );
    CREATE INDEX history_memory ON history (project, memory_id, seq);

    CREATE TABLE messages (
        project text NOT NULL,
        id bigint GENERATED ALWAYS AS IDENTITY,
        user_id text,
        agent_id text,
        run_id text,
        role text NOT NULL,
        name text,
        content text NOT NULL,
        created_at text NOT NULL,
        scope_key text GENERATED ALWAYS AS (engram_scope_key(user_id, agent_id, run_id)) STORED,
        PRIMARY KEY (project, id)
    );
    CREATE INDEX messages_scope ON messages (project, scope_key, id);

    CREATE TABLE entities (
        project text NOT NULL,
        id bigint GENERATED ALWAYS AS IDENTITY,
        user_id text,
        agent_id text,
        run_id text,
        name text NOT NULL,
        norm text NOT NULL,
        type text,
        embedding vector,
        created_at text NOT NULL,
        PRIMARY KEY (project, id)
    );
    CREATE UNIQUE INDEX entities_norm ON entities
        (project, coalesce(user_id, ''), coalesce(agent_id, ''), coalesce(run_id, ''), norm);
    CREATE TABLE relations (
        project text NOT NULL,
        id bigint GENERATED ALWAYS AS IDENTITY,
        user_id text,
        agent_id text,
        run_id text,
        source_id bigint NOT NULL,
        relationship text NOT NULL,
        target_id bigint NOT NULL,
        memory_id text,
        valid_at text NOT NULL,
        invalid_at text,
        created_at text NOT NULL,
        PRIMARY KEY (project, id),
        FOREIGN KEY (project, source_id) REFERENCES entities (project, id),
        FOREIGN KEY (project, target_id) REFERENCES entities (project, id)
    );
    CREATE INDEX relations_memory ON relations (project, memory_id);
    CREATE INDEX relations_source ON relations (project, source_id, relationship);
    CREATE INDEX relations_target ON relations (project, target_id);
    CREATE TABLE profile (
        project text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        user_id text,
        agent_id text,
        run_id text,
        key text NOT NULL,
        value text NOT NULL,
        memory_id text,
        updated_at text NOT NULL,
        PRIMARY KEY (project, seq)
    );
    CREATE UNIQUE INDEX profile_key ON profile
        (project, coalesce(user_id, ''), coalesce(agent_id, ''), coalesce(run_id, ''), key);
    CREATE TABLE profile_history (
        project text NOT NULL,
        id bigint GENERATED ALWAYS AS IDENTITY,
        user_id text,
        agent_id text,
        run_id text,
        key text NOT NULL,
        old_value text,
        new_value text,
        memory_id text,
        changed_at text NOT NULL,
        PRIMARY KEY (project, id)
    );
    CREATE INDEX profile_history_scope ON profile_history (project, user_id, agent_id, run_id);

    CREATE TABLE feedback (
        project text NOT NULL,
        id bigint GENERATED ALWAYS AS IDENTITY,
        memory_id text NOT NULL,
        feedback text,
        reason text,
        value double precision NOT NULL,
        created_at text NOT NULL,
        PRIMARY KEY (project, id)
    );
    CREATE INDEX feedback_memory ON feedback (project, memory_id);

    CREATE TABLE claims (
        project text NOT NULL,
        key text NOT NULL,
        result jsonb NOT NULL,
        created_at text NOT NULL,
        PRIMARY KEY (project, key)
    );
    """,
    # 2: the server's control tables (`engram.server.control`): what `server.db` holds on SQLite
    """
    CREATE TABLE orgs (id text PRIMARY KEY, name text NOT NULL, created_at text NOT NULL);
    CREATE TABLE projects (
        id text PRIMARY KEY,
        org_id text NOT NULL REFERENCES orgs (id),
        name text NOT NULL,
        description text,
        custom_instructions text,
        custom_categories text,
        agent_custom_instructions text,
        created_at text NOT NULL,
        updated_at text NOT NULL
    );
    CREATE TABLE members (
        project_id text NOT NULL REFERENCES projects (id),
        email text NOT NULL,
        role text NOT NULL,
        created_at text NOT NULL,
        PRIMARY KEY (project_id, email)
    );
    CREATE TABLE api_keys (
        id text PRIMARY KEY,
        digest text NOT NULL UNIQUE,
        hint text NOT NULL,
        org_id text NOT NULL,
        project_id text NOT NULL REFERENCES projects (id),
        role text NOT NULL,
        user_email text NOT NULL,
        name text,
        created_at text NOT NULL,
        revoked_at text
    );
    CREATE INDEX api_keys_project ON api_keys (project_id, created_at);
    CREATE TABLE jobs (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        project_id text NOT NULL,
        kind text NOT NULL,
        payload text NOT NULL,
        status text NOT NULL,
        results text,
        error text,
        attempts int NOT NULL DEFAULT 0,
        lease_until timestamptz,
        created_at text NOT NULL,
        updated_at text NOT NULL
    );
    CREATE INDEX jobs_status ON jobs (status, created_at);
    CREATE INDEX jobs_project ON jobs (project_id, created_at);
    CREATE TABLE webhooks (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        project_id text NOT NULL,
        name text NOT NULL,
        url text NOT NULL,
        event_types text NOT NULL,
        secret text NOT NULL,
        is_active int NOT NULL DEFAULT 1,
        created_at text NOT NULL,
        updated_at text NOT NULL
    );
    CREATE INDEX webhooks_project ON webhooks (project_id, id);
    CREATE TABLE deliveries (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        webhook_id bigint NOT NULL,
        event_type text NOT NULL,
        body text NOT NULL,
        status text NOT NULL,
        attempts int NOT NULL DEFAULT 0,
        next_at text NOT NULL,
        last_status int,
        last_error text,
        created_at text NOT NULL,
        updated_at text NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries (status, next_at);
    CREATE INDEX deliveries_webhook ON deliveries (webhook_id, id);
    CREATE TABLE profile_settings (
        project_id text PRIMARY KEY,
        enabled int NOT NULL,
        schema text,
        custom_instructions text,
        updated_at text NOT NULL
    );
    CREATE TABLE server_meta (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE profiles (
        project_id text NOT NULL,
        entity_type text NOT NULL,
        entity_id text NOT NULL,
        profile text,
        status text NOT NULL,
        error text,
        generation_count int NOT NULL DEFAULT 0,
        source_updated_at text,
        updated_at text NOT NULL,
        PRIMARY KEY (project_id, entity_type, entity_id)
    );
    -- Token buckets: lost in a crash (unlogged), which costs nothing (they refill).
    CREATE UNLOGGED TABLE rate_buckets (
        key text PRIMARY KEY, tokens double precision NOT NULL, at double precision NOT NULL
    );
    """,
    # 3: Row-Level Security on every table of memory data: a transaction sees and writes only
    # the rows of the project it names (`SET LOCAL engram.project`, which every store
    # transaction does); naming none, it sees nothing. Forced on the tables' owner too; only
    # superusers and roles with BYPASSRLS pass.
    """
    DO $$
    DECLARE
        t text;
    BEGIN
        FOREACH t IN ARRAY ARRAY['memories', 'lexemes', 'history', 'messages', 'entities',
                                 'relations', 'profile', 'profile_history', 'feedback', 'claims']
        LOOP
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
            EXECUTE format(
                'CREATE POLICY project_isolation ON %I '
                'USING (project = current_setting(''engram.project'', true)) '
                'WITH CHECK (project = current_setting(''engram.project'', true))', t);
        END LOOP;
    END $$;
    """,
    # 4: full-text matching through its GIN index under Row-Level Security. PostgreSQL applies
    # a query's conditions after the policy's unless their functions are LEAKPROOF, and `@@`
    # (ts_match_vq) is not marked so: a role under RLS would check it row by row over the
    # scope (a sequential scan of a large project). The function reports nothing of its
    # arguments but whether they match, so it is marked LEAKPROOF in this database, which only
    # a superuser may do; migrated by another role, nothing changes here and `engram db status`
    # says what to run.
    f"""
    DO $$
    BEGIN
        IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE '{LEAKPROOF_FULL_TEXT}';
        END IF;
    END $$;
    """,
    # 5: organization roles (`engram.server.control.org_members`): who may create projects and
    # manage every project of an organization; a project's opt-in to private addresses
    """
    CREATE TABLE org_members (
        org_id text NOT NULL REFERENCES orgs (id),
        email text NOT NULL,
        role text NOT NULL,
        created_at text NOT NULL,
        PRIMARY KEY (org_id, email)
    );
    ALTER TABLE projects ADD COLUMN allow_private_urls int NOT NULL DEFAULT 0;
    ALTER TABLE api_keys ADD COLUMN org_wide int NOT NULL DEFAULT 0;
    -- The roles that use the control tables (a server's role, granted rights on every table
    -- when the schema was made) get the same rights on the new one.
    DO $$
    DECLARE
        g record;
    BEGIN
        FOR g IN SELECT DISTINCT grantee, privilege_type FROM information_schema.role_table_grants
                 WHERE table_schema = current_schema() AND table_name = 'api_keys'
                 AND grantee <> current_user
        LOOP
            EXECUTE format('GRANT %s ON org_members TO %I', g.privilege_type, g.grantee);
        END LOOP;
    END $$;
    """,
    # 6: the full text of a scope through one index. A GIN index on (user_id, agent_id, run_id,
    # fts) (btree_gin makes the ids indexable in GIN) answers "this user's memories with any of
    # these lexemes" by intersecting posting lists, where the plain GIN of `fts` read every
    # posting of a common lexeme in the database and a scope's rows were checked one by one
    # (1M memories, a 10k-memory user, three common lexemes: 16 -> 6 ms). It serves unscoped
    # matching as the plain one did (a GIN index is searched on any subset of its columns), so
    # it replaces it. btree_gin is a trusted contrib extension (PostgreSQL 13+: a role that may
    # create objects in the database may install it); where it cannot be installed, the plain
    # index stays and `engram db status` says so.
    f"""
    DO $$
    BEGIN
        CREATE EXTENSION IF NOT EXISTS btree_gin;
        CREATE INDEX IF NOT EXISTS {SCOPED_FULL_TEXT} ON memories
            USING gin (user_id, agent_id, run_id, fts);
        DROP INDEX IF EXISTS memories_fts;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'full text by scope not indexed (btree_gin: %); the plain index stays',
            SQLERRM;
    END $$;
    """,
    # 7: statistics on the expressions the vector statements filter on. Without them the planner
    # guesses that `vector_dims(embedding) = d` keeps 0.5% of the rows (and the byte budget of
    # the users' vectors' index a third), so it took a 100k-memory user for ~170 rows and
    # scanned all of its vectors exactly (93 ms) rather than through the HNSW index.
    """
    CREATE STATISTICS IF NOT EXISTS memories_vector_expressions
        ON (vector_dims(embedding)), (octet_length(project) + octet_length(user_id))
        FROM memories;
    ANALYZE memories;
    """,
    # 8: what made each version of a memory (an add's extraction, an update call, an import).
    """
    ALTER TABLE history ADD COLUMN IF NOT EXISTS cause text;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
NAMES = (
    "the memory store",
    "the server's control tables",
    "row-level security by project",
    "full text through its index under row-level security",
    "organization roles and a project's private addresses",
    "the full text of a scope through one index",
    "statistics on the vector statements' expressions",
    "the cause of each version in the history",
)


async def migrate(conn: AsyncConnection[object]) -> None:
    """Bring the database to `SCHEMA_VERSION` in one transaction, under an advisory lock (another
    process migrating at the same time waits, then finds nothing to do). A database that is up
    to date is only read: a role with no right to create tables (a server's, when another role
    owns the schema) opens it."""
    current = await schema_version(conn)
    await conn.commit()
    _check_version(current)
    if current == SCHEMA_VERSION:
        return
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS engram_schema (one boolean PRIMARY KEY DEFAULT true "
            "CHECK (one), version int NOT NULL)"
        )
        row = await (await conn.execute("SELECT version FROM engram_schema")).fetchone()
        version = 0 if row is None else int(row[0])  # type: ignore[index]
        _check_version(version)
        for number in range(version, SCHEMA_VERSION):
            await conn.execute(MIGRATIONS[number])
        await conn.execute(
            "INSERT INTO engram_schema (one, version) VALUES (true, %s) "
            "ON CONFLICT (one) DO UPDATE SET version = excluded.version",
            (SCHEMA_VERSION,),
        )


def _check_version(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the database has Engram schema version {version}, newer than this Engram "
            f"({SCHEMA_VERSION}): upgrade Engram"
        )


async def migrate_url(url: str) -> None:
    """`migrate` on a connection of its own to `url`."""
    try:
        conn = await AsyncConnection.connect(url, connect_timeout=30)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    try:
        await migrate(conn)
    finally:
        await conn.close()


async def schema_version(conn: AsyncConnection[object]) -> int:
    """The database's schema version (0 before any migration)."""
    found = await (await conn.execute("SELECT to_regclass('engram_schema') IS NOT NULL")).fetchone()
    if not found or not found[0]:  # type: ignore[index]
        return 0
    row = await (await conn.execute("SELECT version FROM engram_schema")).fetchone()
    return 0 if row is None else int(row[0])  # type: ignore[index]


async def status(url: str) -> dict[str, Any]:
    """What `engram db status` shows: the database's schema version against this Engram's, the
    migrations still to apply, the PostgreSQL and pgvector versions, the projects. Reads only."""
    try:
        conn = await AsyncConnection.connect(url, connect_timeout=30, autocommit=True)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    async with conn:
        version = await schema_version(conn)

        async def one(sql: str) -> Any:
            row = await (await conn.execute(sql)).fetchone()
            return None if row is None else row[0]

        out: dict[str, Any] = {
            "schema_version": version,
            "engram_schema_version": SCHEMA_VERSION,
            "pending": [f"{n + 1}: {NAMES[n]}" for n in range(version, SCHEMA_VERSION)],
            "postgresql": await one("SHOW server_version"),
            "pgvector": await one("SELECT extversion FROM pg_extension WHERE extname = 'vector'"),
            "in_recovery": await one("SELECT pg_is_in_recovery()"),
            "projects": [],
        }
        if version > SCHEMA_VERSION:
            out["warning"] = "the database is newer than this Engram: upgrade Engram"
        leakproof = await one(
            "SELECT proleakproof FROM pg_proc WHERE oid = "
            "'pg_catalog.ts_match_vq(tsvector, tsquery)'::regprocedure"
        )
        out["full_text_under_rls"] = (
            "through the GIN index"
            if leakproof
            else f"row by row over the scope; as a superuser, run: {LEAKPROOF_FULL_TEXT}"
        )
        if version >= 6:  # its index
            scoped = await one(f"SELECT to_regclass('{SCOPED_FULL_TEXT}') IS NOT NULL")
            out["full_text_by_scope"] = (
                f"through {SCOPED_FULL_TEXT}"
                if scoped
                else "row by row over the scope (btree_gin could not be installed: as a role "
                "that may, run CREATE EXTENSION btree_gin, then CREATE INDEX "
                f"{SCOPED_FULL_TEXT} ON memories USING gin (user_id, agent_id, run_id, fts))"
            )
        if version >= 1:
            found = await conn.execute(
                "SELECT project, dims, model_id, docs FROM stores ORDER BY project"
            )
            out["projects"] = [
                {"project": r[0], "dims": r[1], "embedder": r[2], "memories": r[3]}
                for r in await found.fetchall()
            ]
        return out
