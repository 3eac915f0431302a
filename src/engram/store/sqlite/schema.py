"""The SQLite schema, as an ordered list of migrations; `PRAGMA user_version` records the last one.

Derived structures are kept in SQL too: the FTS5 index follows `memories` by trigger, and so does
`index_log`, the change log that in-process vector indexes (one per process) replay to stay exact.
"""

from __future__ import annotations

import sqlite3

from engram.errors import StoreError
from engram.store.sqlite.transaction import atomic

MIGRATIONS: list[str] = [
    # 1: memories, history, full-text index, vector change log
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE memories (
        rid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        memory TEXT NOT NULL,
        hash TEXT NOT NULL,
        user_id TEXT,
        agent_id TEXT,
        run_id TEXT,
        app_id TEXT,
        actor_id TEXT,
        role TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        categories TEXT NOT NULL DEFAULT '[]',
        memory_type TEXT,
        immutable INTEGER NOT NULL DEFAULT 0,
        expiration_date TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        embedding BLOB NOT NULL
    );
    CREATE INDEX memories_user ON memories (user_id, created_at);
    CREATE INDEX memories_agent ON memories (agent_id, created_at);
    CREATE INDEX memories_run ON memories (run_id, created_at);
    CREATE INDEX memories_hash ON memories (hash);
    CREATE INDEX memories_created ON memories (created_at);

    CREATE TABLE history (
        id TEXT PRIMARY KEY,
        memory_id TEXT NOT NULL,
        old_memory TEXT,
        new_memory TEXT,
        event TEXT NOT NULL CHECK (event IN ('ADD', 'UPDATE', 'DELETE')),
        created_at TEXT NOT NULL,
        updated_at TEXT,
        is_deleted INTEGER NOT NULL DEFAULT 0,
        actor_id TEXT,
        role TEXT
    );
    CREATE INDEX history_memory ON history (memory_id);

    CREATE VIRTUAL TABLE memories_fts USING fts5(
        memory, content='memories', content_rowid='rid', tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, memory) VALUES (new.rid, new.memory);
    END;
    CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, memory)
        VALUES ('delete', old.rid, old.memory);
    END;
    CREATE TRIGGER memories_fts_update AFTER UPDATE OF memory ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, memory)
        VALUES ('delete', old.rid, old.memory);
        INSERT INTO memories_fts (rowid, memory) VALUES (new.rid, new.memory);
    END;

    CREATE TABLE index_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, rid INTEGER NOT NULL);
    CREATE TRIGGER index_log_insert AFTER INSERT ON memories BEGIN
        INSERT INTO index_log (rid) VALUES (new.rid);
    END;
    CREATE TRIGGER index_log_delete AFTER DELETE ON memories BEGIN
        INSERT INTO index_log (rid) VALUES (old.rid);
    END;
    CREATE TRIGGER index_log_update
    AFTER UPDATE OF embedding, user_id, agent_id, run_id, expiration_date ON memories BEGIN
        INSERT INTO index_log (rid) VALUES (new.rid);
    END;
    """,
    # 2: the recent messages of each scope, context for the next add
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        user_id TEXT,
        agent_id TEXT,
        run_id TEXT,
        role TEXT NOT NULL,
        name TEXT,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX messages_scope ON messages (user_id, agent_id, run_id, id);
    """,
    # 3: full-text index over the text and the speaker, with stemming; the feedback signal
    """
    DROP TRIGGER memories_fts_insert;
    DROP TRIGGER memories_fts_delete;
    DROP TRIGGER memories_fts_update;
    DROP TABLE memories_fts;
    CREATE VIRTUAL TABLE memories_fts USING fts5(
        memory, actor_id, content='memories', content_rowid='rid',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, memory, actor_id)
        VALUES (new.rid, new.memory, new.actor_id);
    END;
    CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, memory, actor_id)
        VALUES ('delete', old.rid, old.memory, old.actor_id);
    END;
    CREATE TRIGGER memories_fts_update AFTER UPDATE OF memory, actor_id ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, memory, actor_id)
        VALUES ('delete', old.rid, old.memory, old.actor_id);
        INSERT INTO memories_fts (rowid, memory, actor_id)
        VALUES (new.rid, new.memory, new.actor_id);
    END;
    INSERT INTO memories_fts (memories_fts) VALUES ('rebuild');
    ALTER TABLE memories ADD COLUMN feedback REAL NOT NULL DEFAULT 0;
    """,
    # 4: graph memory (entities, relations with validity) and profile facts (key -> value)
    """
    CREATE TABLE entities (
        id INTEGER PRIMARY KEY,
        user_id TEXT,
        agent_id TEXT,
        run_id TEXT,
        name TEXT NOT NULL,
        norm TEXT NOT NULL,
        type TEXT,
        embedding BLOB,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX entities_norm
        ON entities (coalesce(user_id, ''), coalesce(agent_id, ''), coalesce(run_id, ''), norm);
    CREATE TABLE relations (
        id INTEGER PRIMARY KEY,
        user_id TEXT,
        agent_id TEXT,
        run_id TEXT,
        source_id INTEGER NOT NULL REFERENCES entities (id),
        relationship TEXT NOT NULL,
        target_id INTEGER NOT NULL REFERENCES entities (id),
        memory_id TEXT,
        valid_at TEXT NOT NULL,
        invalid_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX relations_memory ON relations (memory_id);
    CREATE INDEX relations_source ON relations (source_id, relationship);
    CREATE INDEX relations_target ON relations (target_id);
    CREATE TABLE profile (
        user_id TEXT,
        agent_id TEXT,
        run_id TEXT,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        memory_id TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX profile_key
        ON profile (coalesce(user_id, ''), coalesce(agent_id, ''), coalesce(run_id, ''), key);
    CREATE TABLE profile_history (
        id INTEGER PRIMARY KEY,
        user_id TEXT,
        agent_id TEXT,
        run_id TEXT,
        key TEXT NOT NULL,
        old_value TEXT,
        new_value TEXT,
        memory_id TEXT,
        changed_at TEXT NOT NULL
    );
    """,
    # 5: feedback on memories (the memory's `feedback` column holds the current signal)
    """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        memory_id TEXT NOT NULL,
        feedback TEXT,
        reason TEXT,
        value REAL NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX feedback_memory ON feedback (memory_id);
    """,
    # 6: the date a memory is about, as words ("8 May 2023"), in the full-text index too
    """
    ALTER TABLE memories ADD COLUMN date_words TEXT GENERATED ALWAYS AS (
        CAST(CAST(strftime('%d', created_at) AS INTEGER) AS TEXT) || ' ' ||
        CASE strftime('%m', created_at)
            WHEN '01' THEN 'January' WHEN '02' THEN 'February' WHEN '03' THEN 'March'
            WHEN '04' THEN 'April' WHEN '05' THEN 'May' WHEN '06' THEN 'June'
            WHEN '07' THEN 'July' WHEN '08' THEN 'August' WHEN '09' THEN 'September'
            WHEN '10' THEN 'October' WHEN '11' THEN 'November' WHEN '12' THEN 'December'
        END || ' ' || strftime('%Y', created_at)
    ) VIRTUAL;
    DROP TRIGGER memories_fts_insert;
    DROP TRIGGER memories_fts_delete;
    DROP TRIGGER memories_fts_update;
    DROP TABLE memories_fts;
    CREATE VIRTUAL TABLE memories_fts USING fts5(
        memory, actor_id, date_words, content='memories', content_rowid='rid',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, memory, actor_id, date_words)
        VALUES (new.rid, new.memory, new.actor_id, new.date_words);
    END;
    CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, memory, actor_id, date_words)
        VALUES ('delete', old.rid, old.memory, old.actor_id, old.date_words);
    END;
    CREATE TRIGGER memories_fts_update AFTER UPDATE OF memory, actor_id, created_at ON memories
    BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, memory, actor_id, date_words)
        VALUES ('delete', old.rid, old.memory, old.actor_id, old.date_words);
        INSERT INTO memories_fts (rowid, memory, actor_id, date_words)
        VALUES (new.rid, new.memory, new.actor_id, new.date_words);
    END;
    INSERT INTO memories_fts (memories_fts) VALUES ('rebuild');
    """,
    # 7: idempotency keys of applied change sets (retried requests and jobs apply once)
    """
    CREATE TABLE claims (
        key TEXT PRIMARY KEY,
        result TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 8: the scope's ids as words in the full-text index (weight 0 in BM25), so that a search
    # confines its MATCH to its scope and ranks only the scope's rows. `scope_words` holds one
    # word per id: 'u'/'a'/'r', the id's UTF-8 bytes in hex, and 'x' (a word the stemmer leaves
    # as it is); see keyword.scope_phrase.
    """
    ALTER TABLE memories ADD COLUMN scope_words TEXT GENERATED ALWAYS AS (
        CASE WHEN user_id IS NULL THEN '' ELSE 'u' || hex(user_id) || 'x ' END ||
        CASE WHEN agent_id IS NULL THEN '' ELSE 'a' || hex(agent_id) || 'x ' END ||
        CASE WHEN run_id IS NULL THEN '' ELSE 'r' || hex(run_id) || 'x' END
    ) VIRTUAL;
    DROP TRIGGER memories_fts_insert;
    DROP TRIGGER memories_fts_delete;
    DROP TRIGGER memories_fts_update;
    DROP TABLE memories_fts;
    CREATE VIRTUAL TABLE memories_fts USING fts5(
        memory, actor_id, date_words, scope_words, content='memories', content_rowid='rid',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, memory, actor_id, date_words, scope_words)
        VALUES (new.rid, new.memory, new.actor_id, new.date_words, new.scope_words);
    END;
    CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, memory, actor_id, date_words, scope_words)
        VALUES ('delete', old.rid, old.memory, old.actor_id, old.date_words, old.scope_words);
    END;
    CREATE TRIGGER memories_fts_update
    AFTER UPDATE OF memory, actor_id, created_at, user_id, agent_id, run_id ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, memory, actor_id, date_words, scope_words)
        VALUES ('delete', old.rid, old.memory, old.actor_id, old.date_words, old.scope_words);
        INSERT INTO memories_fts (rowid, memory, actor_id, date_words, scope_words)
        VALUES (new.rid, new.memory, new.actor_id, new.date_words, new.scope_words);
    END;
    INSERT INTO memories_fts (memories_fts) VALUES ('rebuild');
    """,
    # What made each version of a memory (an add's extraction, an update call, an import, ...).
    """
    ALTER TABLE history ADD COLUMN cause TEXT;
    """,
    # 10: the change log also records edits of what the full text reads (the text, the speaker,
    # the date): each process's in-memory full-text indexes (lexicon.py) replay it as the vector
    # index does.
    """
    DROP TRIGGER index_log_update;
    CREATE TRIGGER index_log_update
    AFTER UPDATE OF embedding, user_id, agent_id, run_id, expiration_date, memory, actor_id,
        created_at ON memories BEGIN
        INSERT INTO index_log (rid) VALUES (new.rid);
    END;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to `SCHEMA_VERSION`, one transaction per migration."""
    with atomic(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the database has schema version {version}, newer than this Engram "
                f"({SCHEMA_VERSION}): upgrade Engram"
            )
        for number in range(version, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (triggers contain `;` inside BEGIN ... END)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise StoreError(f"incomplete statement in migration: {buffer[:80]!r}")
    return statements
