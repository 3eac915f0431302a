from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from engram import AsyncMemory, Memory
from engram.providers.embedders.hashing import HashingEmbedder
from engram.store.base import Store
from engram.store.sqlite.store import SQLiteStore
from tests.fakes.openai_server import FakeOpenAI
from tests.pg import Cluster, skip_or_fail, unavailable


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_cache: Path) -> None:
    """No test touches the real ~/.engram or ~/.cache/engram; the model is built once a session."""
    monkeypatch.setenv("ENGRAM_HOME", str(tmp_path / "engram-home"))
    monkeypatch.setenv("ENGRAM_CACHE_DIR", str(model_cache))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "engram.db"


Backend = Callable[..., Store]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, db_path: Path) -> Backend:
    """Makes stores of each backend: `backend()` the test's store, `backend("other")` another
    one (SQLite: a file beside it; PostgreSQL: another project of the same real database)."""
    if request.param == "postgres":
        from engram.store.postgres.store import PostgresStore

        url = request.getfixturevalue("pg_url")
        return lambda name="test": PostgresStore(url, project=name)
    return lambda name="test": SQLiteStore(db_path if name == "test" else db_path.parent / name)


@pytest.fixture
async def amemory(backend: Backend) -> AsyncIterator[AsyncMemory]:
    memory = AsyncMemory(embedder=HashingEmbedder(128), store=backend())
    yield memory
    await memory.close()


@pytest.fixture
def memory(backend: Backend) -> Iterator[Memory]:
    with Memory(embedder=HashingEmbedder(128), store=backend()) as mem:
        yield mem


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX build for the whole session."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def _no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real provider through keys in the developer's environment."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A real PostgreSQL 15 + pgvector server for the session (see tests/pg.py)."""
    reason = unavailable()
    if reason is not None:
        skip_or_fail(reason)
    base = Path(tempfile.mkdtemp(prefix="engram-pg-"))
    cluster = Cluster(base)
    yield cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A fresh database of that server (with the vector extension)."""
    return pg_cluster.database()
