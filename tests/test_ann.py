"""The approximate (IVF) path: recall against exact search, and the same correctness rules."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from engram.core.filters import parse_filters
from engram.store.base import Delete, Insert, MemoryRecord
from engram.store.sqlite.ann import build_ivf
from engram.store.sqlite.store import SQLiteStore
from engram.store.sqlite.vectors import NO_EXPIRY, Row, VectorIndex, build

DIMS = 64


def clustered(n: int, seed: int = 1) -> npt.NDArray[np.float32]:
    """Unit vectors around 300 topics, like embeddings of many memories."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(300, DIMS))
    x = centers[rng.integers(0, 300, n)] + 0.35 * rng.normal(size=(n, DIMS))
    unit: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(
        np.float32
    )
    return unit


def test_ivf_recall_at_10_is_high() -> None:
    data = clustered(30_000)
    ivf, order = build_ivf(data)
    laid_out = data[order]  # the partition, list by list, as `build` lays it out
    queries = clustered(200, seed=2)
    recalls, scored = [], []
    for q in queries:
        exact = set(order[np.argsort(-(data[order] @ q))[:10]].tolist())
        runs = ivf.ranges(q, len(data))
        cand = np.concatenate([np.arange(s, e) for s, e in runs])
        approx = cand[np.argsort(-(laid_out[cand] @ q))[:10]]
        recalls.append(len(exact & set(order[approx].tolist())) / 10)
        scored.append(len(cand))
    assert np.mean(recalls) >= 0.93
    assert max(scored) < len(data) / 3  # it does prune
    assert (ivf.starts[1:] >= ivf.starts[:-1]).all() and ivf.starts[-1] == len(data)


def _index_with_ivf(data: np.ndarray) -> VectorIndex:
    index = VectorIndex(DIMS, ann_threshold=1000)
    index.upsert(Row(i, ("u", None, None), int(NO_EXPIRY), v) for i, v in enumerate(data))
    ((scope, part),) = index.wanted_builds()
    index.install(scope, part, build(part))
    ((_, installed),) = index.partitions()
    assert installed.ivf is not None and installed is not part  # laid out anew
    return index


def test_ivf_search_respects_deletes_expiry_and_finds_new_rows() -> None:
    data = clustered(5000)
    index = _index_with_ivf(data)
    q = data[42]
    assert index.search(q, {"user_id": "u"}, k=1, today=0)[0][0] == 42
    index.remove([42])
    assert all(rid != 42 for rid, _ in index.search(q, {"user_id": "u"}, k=10, today=0))
    index.upsert([Row(99_999, ("u", None, None), 5, q)])  # appended after the build, expires day 5
    assert index.search(q, {"user_id": "u"}, k=1, today=0)[0][0] == 99_999
    assert index.search(q, {"user_id": "u"}, k=1, today=6)[0][0] != 99_999
    everything = index.search(q, {"user_id": "u"}, k=6000, today=0)
    assert len(everything) == 5000  # 4999 + the new row: fewer than k near q falls back to exact


def test_ivf_is_rebuilt_after_growth_and_not_installed_when_replaced() -> None:
    data = clustered(3100)
    index = _index_with_ivf(data[:2000])
    index.upsert(
        Row(2000 + i, ("u", None, None), int(NO_EXPIRY), v) for i, v in enumerate(data[2000:])
    )
    (wanted,) = index.wanted_builds()
    index.remove(range(1900))  # compaction replaces the partition
    index.install(*wanted, build(wanted[1]))
    (part,) = index.partitions_for({"user_id": "u"})
    assert part.ivf is None


async def test_store_builds_in_background_and_stays_correct(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ann.db", ann_threshold=2000)
    await store.open(dims=DIMS, model_id="m")
    data = clustered(3000)
    now = "2026-01-01T00:00:00.000000+00:00"

    def rec(i: int) -> MemoryRecord:
        return MemoryRecord(id=f"00000000-0000-4000-8000-{i:012d}", memory=f"m{i}", hash="h",
                            created_at=now, updated_at=now, user_id="u")  # fmt: skip

    await store.apply([Insert(rec(i), data[i]) for i in range(3000)])
    scope = parse_filters({"user_id": "u"})
    await store.search(data[0], scope, today="2026-01-01", top_k=5)  # triggers the build
    deadline = time.monotonic() + 30
    while not store.ann_ready({"user_id": "u"}):
        assert time.monotonic() < deadline, "the IVF index was never installed"
        await asyncio.sleep(0.05)
    for i in (0, 1234, 2999):
        hits = await store.search(data[i], scope, today="2026-01-01", top_k=1)
        assert hits[0].record.id == rec(i).id
    await store.apply([Delete(rec(1234).id, at=now)])
    hits = await store.search(data[1234], scope, today="2026-01-01", top_k=3)
    assert rec(1234).id not in [h.record.id for h in hits]
    filtered = await store.search(
        data[7], parse_filters({"user_id": "u", "memory": "m7"}), today="2026-01-01", top_k=3
    )
    assert [h.record.id for h in filtered] == [rec(7).id]
    await store.close()


@pytest.mark.parametrize("n", [10, 999])
def test_small_partitions_never_want_an_index(n: int) -> None:
    index = VectorIndex(DIMS, ann_threshold=1000)
    index.upsert(Row(i, ("u", None, None), int(NO_EXPIRY), v) for i, v in enumerate(clustered(n)))
    assert index.wanted_builds() == []


def test_a_search_looks_only_at_its_own_partitions_for_builds() -> None:
    """Which partitions want an IVF index is asked of the searched scope's partitions only (a
    store of 100k scopes spent 30 ms a search looking at all of them)."""
    index = VectorIndex(DIMS, ann_threshold=1000)
    data = clustered(2200)
    index.upsert(Row(i, ("big", None, None), int(NO_EXPIRY), v) for i, v in enumerate(data[:1500]))
    index.upsert(Row(5000 + i, (f"u{i}", None, None), int(NO_EXPIRY), v)
                 for i, v in enumerate(data[1500:]))  # fmt: skip
    assert index.wanted_builds({"user_id": "u3"}) == []
    ((scope, _),) = index.wanted_builds({"user_id": "big"})
    assert scope == ("big", None, None) and index.wanted_builds() == []  # marked as building
    assert len(index) == 2200
