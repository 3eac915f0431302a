from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.live import LiveServer


@pytest.fixture(params=["sqlite", "postgres"])
def server_db(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The server's database settings: the data directory's SQLite files, or a fresh PostgreSQL
    database (`ENGRAM_DATABASE_URL`)."""
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("pg_url")}


@pytest.fixture
def server(tmp_path: Path, server_db: dict[str, Any]) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "server-data", **server_db)
    yield live
    live.close()


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
