"""The PostgreSQL the tests run against is real, and has what the backend needs."""

from __future__ import annotations

import psycopg
from pgvector.psycopg import register_vector


def test_postgres_with_pgvector_and_hnsw(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        register_vector(conn)
        version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None and int(version[0]) >= 150000
        conn.execute("CREATE TABLE v (id int PRIMARY KEY, e vector(3))")
        conn.execute("INSERT INTO v VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0]')")
        conn.execute("CREATE INDEX ON v USING hnsw (e vector_cosine_ops)")
        rows = conn.execute("SELECT id FROM v ORDER BY e <=> '[1,0,0]' LIMIT 2").fetchall()
        assert [r[0] for r in rows] == [1, 3]
        found = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        extversion = found.fetchone()
        assert extversion is not None and tuple(map(int, extversion[0].split("."))) >= (0, 8)
