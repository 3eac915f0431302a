"""An inverted-file (IVF) approximate index over one partition's vectors, in numpy.

Spherical k-means on a sample gives `lists` centroids; every vector is filed under its nearest one.
A search scores the centroids, takes the `probe` best lists, and scores their vectors exactly
(plus every vector appended since the build, also exactly). Built from a snapshot without any lock
held; the caller installs it if the partition has not been replaced meanwhile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
SAMPLE = 20_000
ITERATIONS = 8
PROBE_FRACTION = 0.2  # of the lists: recall@10 0.95 on tests/test_ann.py data; see bench/core.py
_ASSIGN_CHUNK = 8192


@dataclass(frozen=True, slots=True)
class IVF:
    centroids: F32  # (lists, dims), unit rows
    order: I64  # partition positions, grouped by list
    starts: I64  # list i holds order[starts[i]:starts[i + 1]]
    built: int  # positions [0, built) are filed; later ones are scanned exactly

    @property
    def lists(self) -> int:
        return len(self.centroids)

    def candidates(self, query: F32, size: int, probe: int | None = None) -> I64:
        """Positions worth scoring exactly: the best lists' members and the unfiled tail."""
        count = probe or max(4, math.ceil(self.lists * PROBE_FRACTION))
        if count >= self.lists:
            return np.arange(size, dtype=np.int64)
        best = np.argpartition(-(self.centroids @ query), count - 1)[:count]
        parts = [self.order[self.starts[i] : self.starts[i + 1]] for i in best.tolist()]
        parts.append(np.arange(self.built, size, dtype=np.int64))
        return np.concatenate(parts)


def build_ivf(vectors: F32, seed: int = 0) -> IVF:
    """Cluster `vectors` (unit rows) into about sqrt(n) lists."""
    n = len(vectors)
    lists = int(min(4096, max(16, math.sqrt(n))))
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(n, min(n, SAMPLE), replace=False)]
    centroids = sample[rng.choice(len(sample), lists, replace=False)].copy()
    for _ in range(ITERATIONS):
        nearest = np.argmax(sample @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, nearest, sample)
        counts = np.bincount(nearest, minlength=lists)
        empty = counts == 0
        sums[empty] = sample[rng.choice(len(sample), int(empty.sum()))]  # reseed empty lists
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    assignment = np.concatenate(
        [
            np.argmax(vectors[s : s + _ASSIGN_CHUNK] @ centroids.T, axis=1)
            for s in range(0, n, _ASSIGN_CHUNK)
        ]
    )
    order = np.argsort(assignment, kind="stable").astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(np.bincount(assignment, minlength=lists))])
    return IVF(centroids.astype(np.float32), order, starts.astype(np.int64), n)
