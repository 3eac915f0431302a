"""Embedders: MiniLM against sentence-transformers' vectors; the OpenAI-compatible provider over
real HTTP with injected faults."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engram import AsyncMemory, ConfigurationError, DimensionMismatchError, Memory, MemoryConfig
from engram.errors import (
    AuthenticationError,
    EmbeddingError,
    MissingDependencyError,
    NetworkError,
    RateLimitError,
)
from engram.providers._http import RetryPolicy
from engram.providers.embedders.minilm import MiniLMEmbedder, model_dir
from engram.providers.embedders.openai import OpenAIEmbedder
from engram.store.sqlite.store import SQLiteStore
from tests.fakes.openai_server import FakeOpenAI

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())
FAST = RetryPolicy(max_retries=2, backoff=0.01)


@pytest.fixture(scope="module")
def minilm(model_cache: Path) -> MiniLMEmbedder:
    return MiniLMEmbedder(cache_dir=model_cache, precision="fp32")


def test_onnx_graph_matches_reference_vectors(minilm: MiniLMEmbedder, model_cache: Path) -> None:
    got = minilm.embed_sync(REFERENCE["sentences"])
    want = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    assert minilm.backend == "onnx"
    assert np.abs(got - want).max() < 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert list(model_cache.glob("minilm-*.onnx")), "the ONNX graph is cached"


def test_numpy_fallback_matches_reference_vectors(model_cache: Path) -> None:
    numpy_backend = MiniLMEmbedder(cache_dir=model_cache, backend="numpy")
    got = numpy_backend.embed_sync(REFERENCE["sentences"][:3])
    want = np.asarray(REFERENCE["vectors"][:3], dtype=np.float32)
    assert numpy_backend.backend == "numpy"
    assert np.abs(got - want).max() < 1e-4


def test_padding_does_not_change_vectors(minilm: MiniLMEmbedder) -> None:
    """Batched with a long text (padded) or alone (no padding): the same vector."""
    short = "Loves sci-fi movies"
    alone = minilm.embed_sync([short])[0]
    batched = minilm.embed_sync([short, REFERENCE["sentences"][-1]])[0]
    assert np.abs(alone - batched).max() < 1e-5


def test_a_batchs_chunks_run_side_by_side_in_order(model_cache: Path) -> None:
    """By default a batch's chunks of 32 run on every core at once: each text still gets its
    own vector, the same as with one inference of two threads, and close to the text embedded
    alone (int8 quantizes a chunk's activations with one scale: its companions move it a
    little)."""
    texts = [f"Memory number {i}: " + "went hiking again " * (i % 9) for i in range(150)]
    default = MiniLMEmbedder(cache_dir=model_cache)
    together = default.embed_sync(texts)
    two = MiniLMEmbedder(cache_dir=model_cache, threads=2).embed_sync(texts)
    alone = np.stack([default.embed_sync([t])[0] for t in texts[::15]])
    assert np.abs(together - two).max() < 1e-5
    assert (np.sum(together[::15] * alone, axis=1) > 0.98).all()  # (measured: 0.983-0.995)


def test_damaged_weights_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir(), copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(EmbeddingError, match="sha256"):
        MiniLMEmbedder(cache_dir=tmp_path / "cache", weights_dir=copy).embed_sync(["x"])


def test_the_int8_graph_keeps_the_vectors(minilm: MiniLMEmbedder, model_cache: Path) -> None:
    """The default graph (int8, quantized at cache time) points where fp32 does, under its own
    model id; both are loaded once per process, whatever the number of embedders."""
    int8 = MiniLMEmbedder(cache_dir=model_cache)
    assert (int8.precision, minilm.precision) == ("int8", "fp32")
    assert int8.model_id != minilm.model_id and "int8" in int8.model_id
    got = int8.embed_sync(REFERENCE["sentences"])
    want = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    cosines = (got * want).sum(axis=1)
    assert cosines.mean() >= 0.99 and cosines.min() >= 0.96, cosines
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert list(model_cache.glob("minilm-*-int8.onnx")), "the int8 graph is cached"
    assert list(model_cache.glob("minilm-*-int8.ort*.optimized.onnx")), "and as optimized"
    again = MiniLMEmbedder(cache_dir=model_cache)
    again.warm()
    assert again._runner is int8._runner  # one session per process and graph


async def test_a_store_of_fp32_vectors_keeps_fp32(tmp_path: Path, model_cache: Path) -> None:
    """A store written by the fp32 graph (before int8 was the default) is opened by the default
    embedder as fp32; asking for int8 on it is a clear error, never mixed vectors."""
    db = tmp_path / "e.db"
    fp32 = MiniLMEmbedder(cache_dir=model_cache, precision="fp32")
    async with AsyncMemory(embedder=fp32, store=SQLiteStore(db)) as m:
        await m.add("Loves hiking in the Alps", user_id="a", infer=False)
    default = MiniLMEmbedder(cache_dir=model_cache)  # shared, as a server's projects share it
    async with AsyncMemory(embedder=default, store=SQLiteStore(db)) as m:
        found = (await m.search("mountain walks", user_id="a"))["results"]
        await m.add("Reads novels", user_id="a", infer=False)
        assert getattr(m.embedder, "precision", None) == "fp32"
    assert found[0]["memory"] == "Loves hiking in the Alps"
    assert default.precision == "int8"  # the shared one is untouched: a new store gets int8
    async with AsyncMemory(embedder=default, store=SQLiteStore(tmp_path / "new.db")) as m:
        await m.add("Reads novels", user_id="a", infer=False)
    with sqlite3.connect(tmp_path / "new.db") as conn:
        (recorded,) = conn.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()
    assert recorded == default.model_id
    explicit = MiniLMEmbedder(cache_dir=model_cache, precision="int8")
    other = AsyncMemory(embedder=explicit, store=SQLiteStore(db))
    with pytest.raises(DimensionMismatchError, match=r"int8") as caught:
        await other.get_all(user_id="a")
    assert caught.value.details["stored_model_id"] == fp32.model_id
    await other.close()


def test_precision_is_checked(model_cache: Path) -> None:
    with pytest.raises(ConfigurationError, match="precision"):
        MiniLMEmbedder(cache_dir=model_cache, precision="int4")  # type: ignore[arg-type]
    with pytest.raises(MissingDependencyError, match="int8"):
        MiniLMEmbedder(cache_dir=model_cache, precision="int8", backend="numpy")
    assert MiniLMEmbedder(cache_dir=model_cache, backend="numpy").precision == "fp32"
    with pytest.raises(ConfigurationError, match="precision"):
        MemoryConfig.from_dict({"embedder": {"provider": "minilm", "config": {"precision": 8}}})


async def test_store_refuses_another_embedder(tmp_path: Path, model_cache: Path) -> None:
    db = tmp_path / "e.db"
    async with AsyncMemory(
        embedder=MiniLMEmbedder(cache_dir=model_cache), store=SQLiteStore(db)
    ) as m:
        await m.add("something", user_id="a", infer=False)
    from engram.providers.embedders.hashing import HashingEmbedder

    other = AsyncMemory(embedder=HashingEmbedder(384), store=SQLiteStore(db))
    with pytest.raises(DimensionMismatchError, match="all-MiniLM"):
        await other.get_all(user_id="a")
    await other.close()


async def test_an_empty_store_takes_the_next_embedder_and_never_mixes(tmp_path: Path) -> None:
    """A read on a fresh store (`engram list`) does not tie it to the embedder of that read;
    but once another process gave it another embedder, this one writes no vectors into it."""
    from engram.providers.embedders.hashing import HashingEmbedder

    db = tmp_path / "e.db"
    first = AsyncMemory(embedder=HashingEmbedder(64), store=SQLiteStore(db))
    assert (await first.get_all(user_id="a"))["total"] == 0  # opened: records 64 dimensions
    second = AsyncMemory(embedder=HashingEmbedder(32), store=SQLiteStore(db))
    await second.add("Likes tea", user_id="a", infer=False)  # empty: it takes 32
    with pytest.raises(DimensionMismatchError, match="reopen"):
        await first.add("Likes rain", user_id="a", infer=False)
    assert (await second.get_all(user_id="a"))["total"] == 1
    await first.close()
    await second.close()


# -- OpenAI-compatible ----------------------------------------------------------------------------


def _client(fake: FakeOpenAI, **kw: object) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        model="text-embedding-3-small", base_url=fake.base_url, api_key="test-key",
        embedding_dims=fake.dims, retry=FAST, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_openai_embeddings_in_order_and_batched(fake_openai: FakeOpenAI) -> None:
    embedder = _client(fake_openai, batch_size=2)
    vectors = await embedder.embed(["one", "two", "three"])
    await embedder.aclose()
    assert vectors.shape == (3, fake_openai.dims)
    from engram.providers.embedders.hashing import HashingEmbedder

    assert np.allclose(
        vectors, HashingEmbedder(fake_openai.dims).embed_sync(["one", "two", "three"])
    )
    assert len(fake_openai.requests) == 2
    first = fake_openai.requests[0]
    assert first["path"] == "/v1/embeddings"
    assert first["headers"]["Authorization"] == "Bearer test-key"
    assert first["json"] == {
        "model": "text-embedding-3-small",
        "input": ["one", "two"],
        "dimensions": 64,
    }


async def test_openai_retries_429_and_500(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(429, headers={"Retry-After": "0.05"})
    fake_openai.fail(500)
    embedder = _client(fake_openai)
    assert (await embedder.embed(["x"])).shape == (1, 64)
    await embedder.aclose()
    assert len(fake_openai.requests) == 3


async def test_openai_errors_are_typed(fake_openai: FakeOpenAI) -> None:
    embedder = _client(fake_openai)
    fake_openai.fail(429, times=3, headers={"Retry-After": "0"})
    with pytest.raises(RateLimitError):
        await embedder.embed(["x"])
    fake_openai.fail(400)
    with pytest.raises(EmbeddingError, match="400"):
        await embedder.embed(["x"])
    fake_openai.fail(200, body="not json")
    with pytest.raises(EmbeddingError, match="not JSON"):
        await embedder.embed(["x"])
    fake_openai.fail(200, body=json.dumps({"data": []}))
    with pytest.raises(EmbeddingError):
        await embedder.embed(["x"])
    await embedder.aclose()
    wrong_key = OpenAIEmbedder(
        base_url=fake_openai.base_url, api_key="nope", embedding_dims=64, retry=FAST
    )
    with pytest.raises(AuthenticationError):
        await wrong_key.embed(["x"])
    await wrong_key.aclose()


async def test_openai_timeouts_and_unreachable(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(200, delay=0.5, times=3)
    slow = _client(fake_openai, timeout=0.1)
    with pytest.raises(NetworkError):
        await slow.embed(["x"])
    await slow.aclose()
    dead = OpenAIEmbedder(base_url="http://127.0.0.1:9/v1", embedding_dims=8, retry=FAST)
    with pytest.raises(NetworkError):
        await dead.embed(["x"])
    await dead.aclose()


async def test_openai_dimension_probe_and_memory(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    embedder = OpenAIEmbedder(
        model="my-model", base_url=fake_openai.base_url, api_key="test-key", retry=FAST
    )
    async with AsyncMemory(embedder=embedder, store=SQLiteStore(tmp_path / "o.db")) as memory:
        await memory.add("Prefers window seats", user_id="a", infer=False)
        found = await memory.search("window seats", user_id="a")
    assert embedder.dims == fake_openai.dims
    assert found["results"][0]["memory"] == "Prefers window seats"
    assert "dimensions" not in fake_openai.requests[0]["json"]


def test_an_unwritable_model_cache_is_not_a_failure(tmp_path: Path) -> None:
    """A cache directory that cannot be made (here: a file is in its way) only costs a build in
    memory; the vectors are the same."""
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    embedder = MiniLMEmbedder(cache_dir=blocked / "cache")
    vectors = embedder.embed_sync(["I love hiking in the Alps."])
    assert vectors.shape == (1, 384) and abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-5


def test_a_process_that_ends_while_the_model_loads_exits_cleanly(tmp_path: Path) -> None:
    """`Memory(...)` starts loading MiniLM on a thread; a script that only reads and ends before
    the load is done must exit with 0 (the runtime aborted the process when a daemon thread was
    killed mid-load: status 134, "terminate called without an active exception")."""
    with Memory({"data_dir": str(tmp_path / "first")}) as memory:  # the model's cache is built
        memory.search("a first use", user_id="x")
    script = (
        "import sys\nfrom engram import Memory\n"
        "with Memory({'data_dir': sys.argv[1]}) as m:\n    m.get_all(user_id='x')\n"
    )
    for run in range(3):
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / f"data{run}")],
            check=False, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
