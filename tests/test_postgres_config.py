"""mem0's pgvector configuration: the store goes to PostgreSQL, with mem0's keys."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from engram import ConfigurationError, DimensionMismatchError, Memory, MemoryConfig
from engram.config import Hnsw

HASHING = {"provider": "hashing", "config": {"embedding_dims": 32}}


def _config(store: dict[str, Any]) -> dict[str, Any]:
    return {"vector_store": {"provider": "pgvector", "config": store}, "embedder": HASHING}


def test_mem0_pgvector_config_by_url_and_by_parts(pg_url: str) -> None:
    with Memory.from_config(_config({"connection_string": pg_url, "collection_name": "a"})) as m:
        m.add("Likes green tea", user_id="u", infer=False)
        assert m.search("tea", user_id="u")["results"][0]["memory"] == "Likes green tea"
    url = urlparse(pg_url)
    parts = {"dbname": url.path.lstrip("/"), "user": url.username, "host": url.hostname,
             "port": url.port, "collection_name": "b", "minconn": 1, "maxconn": 4,
             "hnsw": True, "embedding_model_dims": 32}  # fmt: skip
    with Memory.from_config(_config(parts)) as m:
        assert m.get_all(user_id="u")["total"] == 0  # another collection: another project
        m.add("Plays chess", user_id="u", infer=False)
    with Memory.from_config(_config({"connection_string": pg_url, "collection_name": "a"})) as m:
        assert [r["memory"] for r in m.get_all(user_id="u")["results"]] == ["Likes green tea"]


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"connection_string": "postgresql://x", "colour": "red"}, "unknown pgvector"),
        ({"connection_string": "postgresql://x", "diskann": True}, "pgvectorscale"),
        ({"connection_string": "postgresql://x", "dbname": "d"}, "not both"),
        ({}, "needs a connection_string"),
        ({"dbname": "d", "minconn": 5, "maxconn": 2}, "minconn"),
        ({"dbname": "d", "collection_name": " "}, "collection_name"),
        ({"dbname": "d", "embedding_model_dims": "384"}, "embedding_model_dims"),
        ({"dbname": "d", "hnsw": "yes"}, "hnsw must be true, false or"),
        ({"dbname": "d", "hnsw": {"m": 16, "ef": 5}}, "unknown pgvector hnsw keys: ef"),
        ({"dbname": "d", "hnsw": {"m": "16"}}, "hnsw m must be an integer"),
        ({"dbname": "d", "hnsw": {"m": 16, "ef_construction": 20}}, "2 x m <= ef_construction"),
        ({"dbname": "d", "hnsw": {"ef_search": 0}}, "ef_search must be between"),
    ],
)
def test_bad_pgvector_configs_are_refused(store: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MemoryConfig.from_dict(_config(store))


def test_dims_that_disagree_with_the_embedder_are_an_error(pg_url: str) -> None:
    config = _config({"connection_string": pg_url, "embedding_model_dims": 1536})
    with Memory.from_config(config) as m, pytest.raises(DimensionMismatchError, match="1536"):
        m.get_all(user_id="u")


def test_hnsw_settings_build_the_index_and_steer_searches(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`hnsw` as an object: the index is built with its m and ef_construction, searches use its
    ef_search; a store asking for other settings keeps the index built and says so."""
    hnsw = {"m": 8, "ef_construction": 32, "ef_search": 60}
    parsed = MemoryConfig.from_dict(_config({"connection_string": pg_url, "hnsw": hnsw}))
    assert parsed.postgres is not None and parsed.postgres.hnsw == Hnsw(8, 32, 60)
    with Memory.from_config(_config({"connection_string": pg_url, "hnsw": hnsw})) as memory:
        memory.add([{"role": "user", "content": f"fact number {i}"} for i in range(30)],
                   user_id="u", infer=False)  # fmt: skip
        assert len(memory.search("fact number 7", user_id="u", top_k=5)["results"]) == 5
    with psycopg.connect(pg_url) as conn:
        options = conn.execute(
            "SELECT reloptions FROM pg_class WHERE relname = 'memories_hnsw_32'"
        ).fetchone()
    assert options is not None and sorted(options[0]) == ["ef_construction=32", "m=8"]
    other = {"connection_string": pg_url, "collection_name": "b", "hnsw": {"m": 24}}
    with caplog.at_level("WARNING"), Memory.from_config(_config(other)) as memory:
        memory.add("Plays chess", user_id="u", infer=False)
    assert "memories_hnsw_32 was built with m 8, ef_construction 32" in caplog.text


def test_a_users_vectors_are_read_from_their_own_index(pg_url: str) -> None:
    """A user's exact scan reads the B-tree that carries the user's vectors (index-only), and a
    user whose ids leave no room in it (a hostile 255-emoji id) is stored and found all the
    same, through the heap."""
    dims = 500  # leaves 536 bytes for the project and user ids
    config = {"vector_store": {"provider": "pgvector", "config": {"connection_string": pg_url}},
              "embedder": {"provider": "hashing", "config": {"embedding_dims": dims}}}  # fmt: skip
    long_id = "\U0001f600" * 255
    with Memory.from_config(config) as memory:
        memory.add([{"role": "user", "content": f"fact {i} about topic {i % 17}"}
                    for i in range(300)], user_id="big", infer=False)  # fmt: skip
        for n in range(40):
            memory.add([{"role": "user", "content": f"note {i} of {n}"} for i in range(5)],
                       user_id=f"u{n}", infer=False)  # fmt: skip
        memory.add("Drinks green tea", user_id=long_id, infer=False)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE memories")
        (before,) = _index_scans(conn, f"memories_user_vectors_{dims}")
    # In a table this small, whose pages hold few users each, the planner rightly prefers the
    # heap (a sequential scan, the HNSW index, or any index on the project and the heap) to
    # the users' vectors' wide rows: all out of the way (this test's own database), as for a
    # user whose rows are spread over a big table.
    off = "-c enable_seqscan=off -c enable_bitmapscan=off"
    searching = {**config, "vector_store": {"provider": "pgvector", "config": {
        "connection_string": make_conninfo(pg_url, options=off), "hnsw": False}}}  # fmt: skip
    with psycopg.connect(pg_url, autocommit=True) as conn:
        others = conn.execute(
            "SELECT string_agg(quote_ident(indexname), ', ') FROM pg_indexes WHERE tablename = "
            "'memories' AND indexname NOT LIKE 'memories_user_vectors_%' AND indexdef NOT LIKE "
            "'%UNIQUE%'"
        ).fetchone()
        conn.execute(f"DROP INDEX {others[0]}")  # type: ignore[index]
        conn.execute("ALTER TABLE memories DROP CONSTRAINT memories_project_rid_key, "
                     "DROP CONSTRAINT memories_pkey")  # fmt: skip
    with Memory.from_config(searching) as memory:
        found = memory.search("fact 7 about topic 7", user_id="big", top_k=3)["results"]
        assert found[0]["memory"] == "fact 7 about topic 7"
        assert [r["memory"] for r in memory.search("tea", user_id=long_id)["results"]] == [
            "Drinks green tea"
        ]
    with psycopg.connect(pg_url) as conn:  # the pool's sessions ended: their counts are in
        (after,) = _index_scans(conn, f"memories_user_vectors_{dims}")
        rows = conn.execute(
            "SELECT count(*) FROM memories WHERE octet_length(project) + "
            "octet_length(user_id) > 536"
        ).fetchone()
    assert after > before and rows == (1,)
    # The planner knows what the vector statements' expressions keep (migration 7): every row
    # here, not the 0.5% it guesses for an expression it has no statistics on.
    with psycopg.connect(pg_url) as conn:
        for clause in (f"vector_dims(embedding) = {dims}",
                       "octet_length(project) + octet_length(user_id) <= 536"):  # fmt: skip
            (plan,) = conn.execute(
                f"EXPLAIN (FORMAT JSON) SELECT 1 FROM memories WHERE {clause}"
            ).fetchone()  # type: ignore[misc]
            assert plan[0]["Plan"]["Plan Rows"] >= 300, clause


def _index_scans(conn: psycopg.Connection[Any], name: str) -> tuple[int]:
    row = conn.execute(
        "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = %s", (name,)
    ).fetchone()
    assert row is not None, f"{name} is missing"
    return (int(row[0]),)


def test_a_pool_of_one_connection_searches(pg_url: str) -> None:
    """mem0's `maxconn` 1: a hybrid search's full text (read ahead on its own connection) and
    its nearest vectors take turns on the one connection, never waiting on each other."""
    store = {"connection_string": pg_url, "minconn": 1, "maxconn": 1}
    with Memory.from_config(_config(store)) as memory:
        memory.add([{"role": "user", "content": f"likes tea number {i}"} for i in range(20)],
                   user_id="u", infer=False)  # fmt: skip
        for i in range(5):
            started = time.monotonic()
            found = memory.search(f"tea number {i}", user_id="u", top_k=3)["results"]
            assert found and time.monotonic() - started < 10
