"""mem0's pgvector configuration: the store goes to PostgreSQL, with mem0's keys."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest

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
