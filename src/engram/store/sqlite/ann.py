"""An inverted-file (IVF) approximate index over one partition's vectors, in numpy.

Spherical k-means on a sample gives `lists` centroids; every vector is filed under its nearest one,
and the partition is then laid out list by list (`build` in vectors.py), so that a list is a
contiguous run of rows. A search scores the centroids, takes the `probe` best lists, and scores
their rows exactly, one contiguous block each (plus every row appended since the build, also
exactly). Built from a snapshot without any lock held; the caller installs it if the partition
has not been replaced meanwhile.
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
# Lists probed: a fraction of them, at least PROBE_MIN (recall@10 0.95 on tests/test_ann.py's
# clustered data; MiniLM vectors at 1M: bench/sqlite_scale.py).
PROBE_FRACTION = 0.2
PROBE_MIN = 4
_ASSIGN_CHUNK = 8192


@dataclass(frozen=True, slots=True)
class IVF:
    centroids: F32  # (lists, dims), unit rows
    starts: I64  # list i is positions [starts[i], starts[i + 1]) of the partition
    built: int  # positions [0, built) are filed; later ones are scanned exactly

    @property
    def lists(self) -> int:
        return len(self.centroids)

    def probes(self) -> int:
        return max(PROBE_MIN, math.ceil(self.lists * PROBE_FRACTION))

    def ranges(self, query: F32, size: int, probe: int | None = None) -> list[tuple[int, int]]:
        """The runs of positions worth scoring exactly: the best lists and the unfiled tail."""
        count = probe or self.probes()
        if count >= self.lists:
            return [(0, size)]
        best = np.argpartition(-(self.centroids @ query), count - 1)[:count]
        found = [(int(self.starts[i]), int(self.starts[i + 1])) for i in np.sort(best).tolist()]
        found = [(s, e) for s, e in found if e > s]
        if size > self.built:
            found.append((self.built, size))
        return found


def build_ivf(vectors: F32, seed: int = 0) -> tuple[IVF, I64]:
    """Cluster `vectors` (unit rows) into about sqrt(n) lists. Returns the index, for the rows
    laid out list by list, and that layout: `order[i]` is the row that goes to position i."""
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
    return IVF(centroids.astype(np.float32), starts.astype(np.int64), n), order
