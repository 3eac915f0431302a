"""An in-process vector index derived from the SQL rows, partitioned by scope.

Each (user_id, agent_id, run_id) triple owns a partition: a contiguous float32 matrix plus row ids
and expiration days, so a search touches only the partitions of its scope, never the whole store.
Scores are exact (a matrix-vector product per partition, then `argpartition`): at 100k vectors of
384 dimensions that is one 150 MB pass, a few milliseconds.

The index is kept current by replaying `index_log` (see schema.py): whoever wrote the rows, this
process or another, the next search first applies the changes since its last sequence number.
"""

from __future__ import annotations

import contextlib
import mmap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engram.store.sqlite.ann import IVF, build_ivf
from engram.store.sqlite.snapshot import Snapshot

ScopeKey = tuple[str | None, str | None, str | None]
RawRow = tuple[int, str | None, str | None, str | None, str | None, bytes]  # INDEX_COLUMNS
MetaRow = tuple[
    int, str | None, str | None, str | None, str | None
]  # INDEX_COLUMNS less the vector
_LOAD_CHUNK = 4096
ANN_THRESHOLD = 200_000  # vectors in one scope; below it exact search is cheaper (~5 ms at 100k)
_HUGE_MIN = 8 << 20
NO_EXPIRY = np.iinfo(np.int32).max
_SCOPE_FIELDS = ("user_id", "agent_id", "run_id")


@dataclass(slots=True)
class Row:
    rid: int
    scope: ScopeKey
    expires: int  # days since 1970-01-01, NO_EXPIRY when none
    vector: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Built:
    """A partition's IVF index and its positions [0, ivf.built) laid out list by list (copies
    made outside the lock: positions below a partition's size never change)."""

    ivf: IVF
    order: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32]
    rids: npt.NDArray[np.int64]
    expires: npt.NDArray[np.int32]


def build(part: _Partition) -> Built:
    """The IVF index of a partition's rows so far, and those rows in its layout."""
    size = part.size
    ivf, order = build_ivf(part.vectors[:size])
    return Built(ivf, order, part.vectors[:size][order], part.rids[:size][order],
                 part.expires[:size][order])  # fmt: skip


def _allocate(shape: tuple[int, ...], dtype: type[np.generic]) -> npt.NDArray[Any]:
    """Zeroed array; large ones on transparent huge pages where the kernel offers them, since
    first-touch page faults dominate loading a large index (3-5x faster measured here)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    advise = getattr(mmap, "MADV_HUGEPAGE", None)
    if size < _HUGE_MIN or advise is None:
        return np.zeros(shape, dtype=dtype)
    area = mmap.mmap(-1, size)
    with contextlib.suppress(OSError):  # not supported here: plain pages
        area.madvise(advise)
    return np.frombuffer(area, dtype=dtype).reshape(shape)


class _Partition:
    def __init__(self, dims: int, capacity: int = 16) -> None:
        self.vectors = _allocate((capacity, dims), np.float32)
        self.rids = np.zeros(capacity, dtype=np.int64)
        self.expires = np.zeros(capacity, dtype=np.int32)
        self.alive = np.zeros(capacity, dtype=bool)
        self.size = 0
        self.dead = 0
        self.ivf: IVF | None = None
        self.building = False

    @classmethod
    def over(
        cls, vectors: npt.NDArray[np.float32], rids: npt.NDArray[np.int64],
        expires: npt.NDArray[np.int32], alive: npt.NDArray[np.bool_] | None = None,
    ) -> _Partition:  # fmt: skip
        """A full partition over existing arrays (views are fine: growing copies them; `alive`,
        all true, is written in place)."""
        part = cls.__new__(cls)
        part.vectors, part.rids, part.expires = vectors, rids, expires
        part.alive = np.ones(len(rids), dtype=bool) if alive is None else alive
        part.size, part.dead = len(rids), 0
        part.ivf, part.building = None, False
        return part

    def append(self, row: Row) -> int:
        if self.size == len(self.rids):  # doubling, then by a quarter past 64k rows
            self._grow(max(16, 2 * self.size if self.size < 65536 else self.size * 5 // 4))
        pos = self.size
        self.vectors[pos] = row.vector
        self.rids[pos] = row.rid
        self.expires[pos] = row.expires
        self.alive[pos] = True
        self.size += 1
        return pos

    def _grow(self, capacity: int) -> None:
        def grown(array: Any) -> Any:
            out = _allocate((capacity, *array.shape[1:]), array.dtype.type)
            out[: self.size] = array[: self.size]
            return out

        self.vectors = grown(self.vectors)
        self.rids = grown(self.rids)
        self.expires = grown(self.expires)
        self.alive = grown(self.alive)


class VectorIndex:
    """Cosine search over unit vectors, partitioned by scope. Not thread-safe by itself.

    Partitions below `ann_threshold` vectors are searched exactly. Larger ones are searched through
    an IVF index (see ann.py) once one is built; `wanted_builds()` names the partitions that need
    one and `install()` attaches it. Searches with an `allowed` set stay exact."""

    def __init__(self, dims: int, *, ann_threshold: int | None = ANN_THRESHOLD) -> None:
        self.dims = dims
        self.ann_threshold = ann_threshold
        self.clear()

    def clear(self) -> None:
        self._partitions: dict[ScopeKey, _Partition] = {}
        self._by_field: list[dict[str, set[ScopeKey]]] = [defaultdict(set) for _ in _SCOPE_FIELDS]
        # Where each row is: the rows of a whole load in sorted arrays (rid -> partition, position;
        # built in numpy: a dict of a million rows took 2 s), and the rows placed since in
        # `_where`, which overrides them (None: removed).
        self._base_rids = np.empty(0, dtype=np.int64)
        self._base_part = np.empty(0, dtype=np.int32)
        self._base_pos = np.empty(0, dtype=np.int64)
        self._base_keys: list[ScopeKey] = []
        self._where: dict[int, tuple[ScopeKey, int] | None] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _set_base(
        self, keys: list[ScopeKey], counts: list[int], rids: npt.NDArray[np.int64]
    ) -> None:
        """The rows of a whole load: partition i holds rids[starts[i]:starts[i] + counts[i]]."""
        if not keys:
            return
        sizes = np.asarray(counts, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        part = np.repeat(np.arange(len(keys), dtype=np.int32), sizes)
        pos = np.arange(len(rids), dtype=np.int64) - np.repeat(starts, sizes)
        order = np.argsort(rids, kind="stable")
        self._base_rids, self._base_part, self._base_pos = rids[order], part[order], pos[order]
        self._base_keys = keys
        self._count = len(rids)

    def _locate(self, rid: int) -> tuple[ScopeKey, int] | None:
        if rid in self._where:
            return self._where[rid]
        i = int(np.searchsorted(self._base_rids, rid))
        if i < len(self._base_rids) and self._base_rids[i] == rid:
            return self._base_keys[self._base_part[i]], int(self._base_pos[i])
        return None

    def _locate_many(self, rids: list[int]) -> list[tuple[ScopeKey, int] | None]:
        """`_locate` of each row, with one search of the load's arrays for all."""
        base = self._base_rids
        if not len(base) or not rids:
            return [self._where.get(rid) for rid in rids]
        at = np.minimum(np.searchsorted(base, np.asarray(rids, dtype=np.int64)), len(base) - 1)
        hit = (base[at] == rids).tolist()
        parts, positions = self._base_part[at].tolist(), self._base_pos[at].tolist()
        keys, placed = self._base_keys, self._where
        return [
            placed[rid] if rid in placed else (keys[parts[j]], positions[j]) if hit[j] else None
            for j, rid in enumerate(rids)
        ]

    def _place(self, rid: int, scope: ScopeKey, pos: int) -> None:
        self._where[rid] = (scope, pos)

    def load(self, meta: Sequence[MetaRow], blobs: Iterable[bytes]) -> None:
        """Replace the whole index. `meta` and `blobs` describe the same rows in the same order;
        each vector is copied once, straight into one array laid out scope by scope (each
        partition is a view of it), because copying large fresh arrays is what reloads cost."""
        self.clear()
        n = len(meta)
        if n == 0:
            return
        groups: dict[ScopeKey, list[int]] = defaultdict(list)
        for i, row in enumerate(meta):
            groups[(row[1], row[2], row[3])].append(i)
        order = np.fromiter((i for members in groups.values() for i in members), np.int64, n)
        dest = np.empty(n, dtype=np.int64)
        dest[order] = np.arange(n)
        vectors = _allocate((n, self.dims), np.float32)
        chunk: list[bytes] = []
        done = 0
        for blob in blobs:
            chunk.append(blob)
            if len(chunk) == _LOAD_CHUNK:
                done = self._copy_chunk(vectors, dest, done, chunk)
        self._copy_chunk(vectors, dest, done, chunk)
        rids = np.fromiter((r[0] for r in meta), np.int64, n)[order]
        expires = np.fromiter((days_since_epoch(r[4]) for r in meta), np.int32, n)[order]
        start = 0
        alive = np.ones(n, dtype=bool)
        for scope, members in groups.items():
            end = start + len(members)
            part = _Partition.over(vectors[start:end], rids[start:end], expires[start:end],
                                   alive[start:end])  # fmt: skip
            self._add_partition(scope, part)
            start = end
        self._set_base(list(groups), [len(m) for m in groups.values()], rids)

    def load_snapshot(self, snap: Snapshot) -> None:
        """Replace the whole index with a saved one; its vectors stay mapped from the file
        (read-only: a partition that grows is copied first, as any full partition is)."""
        self.clear()
        vectors = np.asarray(snap.vectors)  # a plain array over the mapping: cheaper views
        alive = np.ones(len(snap.rids), dtype=bool)
        for saved in snap.parts:
            s, e = saved.start, saved.start + saved.rows
            part = _Partition.over(vectors[s:e], snap.rids[s:e], snap.expires[s:e], alive[s:e])
            if saved.ivf is not None and self.ann_threshold is not None:
                part.ivf = IVF(*saved.ivf)  # (exact search only: the lists' layout stays)
            self._add_partition(saved.scope, part)
        self._set_base([p.scope for p in snap.parts], [p.rows for p in snap.parts], snap.rids)

    def partitions(self) -> list[tuple[ScopeKey, _Partition]]:
        return list(self._partitions.items())

    def _copy_chunk(
        self, vectors: npt.NDArray[np.float32], dest: npt.NDArray[np.int64], done: int,
        chunk: list[bytes],
    ) -> int:  # fmt: skip
        if chunk:
            block = np.frombuffer(b"".join(chunk), dtype=np.float32).reshape(len(chunk), self.dims)
            vectors[dest[done : done + len(chunk)]] = block
            done += len(chunk)
            chunk.clear()
        return done

    def _add_partition(self, scope: ScopeKey, partition: _Partition) -> None:
        self._partitions[scope] = partition
        for i, value in enumerate(scope):
            if value is not None:
                self._by_field[i][value].add(scope)

    def upsert(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.remove([row.rid])
            partition = self._partitions.get(row.scope)
            if partition is None:
                partition = _Partition(self.dims)
                self._add_partition(row.scope, partition)
            self._place(row.rid, row.scope, partition.append(row))
            self._count += 1

    def remove(self, rids: Iterable[int]) -> None:
        for rid in rids:
            found = self._locate(rid)
            if found is None:
                continue
            self._where[rid] = None  # (a tombstone over the load's arrays)
            self._count -= 1
            scope, pos = found
            partition = self._partitions[scope]
            partition.alive[pos] = False
            partition.dead += 1
            if partition.dead > 64 and partition.dead * 4 > partition.size:
                self._compact(scope, partition)

    def _compact(self, scope: ScopeKey, partition: _Partition) -> None:
        keep = np.flatnonzero(partition.alive[: partition.size])
        n = len(keep)
        fresh = _Partition(self.dims, capacity=max(16, n))
        fresh.vectors[:n] = partition.vectors[keep]
        fresh.rids[:n] = partition.rids[keep]
        fresh.expires[:n] = partition.expires[keep]
        fresh.alive[:n] = True
        fresh.size = n
        self._partitions[scope] = fresh
        for pos, rid in enumerate(fresh.rids[:n].tolist()):
            self._place(rid, scope, pos)

    def search_exact_scope(self, query: npt.NDArray[np.float32], scope: ScopeKey) -> float | None:
        """The best cosine among the live rows of exactly this scope (expired ones included)."""
        part = self._partitions.get(scope)
        found = _score(part, query, -(2**31), None, None) if part else None
        return float(found[0].max()) if found is not None else None

    def in_scope(self, rids: Iterable[int], scope: dict[str, str], today: int) -> list[bool]:
        """Whether each row is indexed, in a partition agreeing with `scope`, and not expired
        before day `today`."""
        wanted = set(self._keys_for(scope))
        out = []
        for found in self._locate_many(list(rids)):
            if found is None or found[0] not in wanted:
                out.append(False)
                continue
            out.append(int(self._partitions[found[0]].expires[found[1]]) >= today)
        return out

    def cosines(self, query: npt.NDArray[np.float32], rids: Iterable[int]) -> dict[int, float]:
        """The cosine of the query with each indexed row (rows not indexed are left out)."""
        out: dict[int, float] = {}
        asked = list(rids)
        for rid, found in zip(asked, self._locate_many(asked), strict=True):
            if found is not None:
                scope, pos = found
                out[rid] = float(self._partitions[scope].vectors[pos] @ query)
        return out

    def wanted_builds(
        self, scope: dict[str, str] | None = None
    ) -> list[tuple[ScopeKey, _Partition]]:
        """Partitions (of `scope`, the ones a search just read; None: all) that need an (up to
        date) IVF index; each is marked as being built. Only a search's own partitions are
        looked at: a store of 100k scopes would otherwise spend 30 ms a search on this."""
        if self.ann_threshold is None:
            return []
        wanted = []
        keys = self._partitions.keys() if scope is None else self._keys_for(scope)
        for key in keys:
            part = self._partitions[key]
            live = part.size - part.dead
            stale = part.ivf is None or part.size > part.ivf.built * 1.5
            if live >= self.ann_threshold and stale and not part.building:
                part.building = True
                wanted.append((key, part))
        return wanted

    def install(self, scope: ScopeKey, part: _Partition, built: Built | None) -> bool:
        """Attach a built index, with the partition laid out as it files them, unless the
        partition was replaced (compacted) meanwhile; whether it was. Rows appended since the
        build stay after the filed ones; rows removed since stay removed."""
        part.building = False
        if built is None or self._partitions.get(scope) is not part:
            return False
        b, n = built.ivf.built, part.size
        if b > n:
            return False
        alive = np.concatenate([part.alive[:b][built.order], part.alive[b:n]])
        if n == b:
            vectors, rids, expires = built.vectors, built.rids, built.expires
        else:
            vectors = np.concatenate([built.vectors, part.vectors[b:n]])
            rids = np.concatenate([built.rids, part.rids[b:n]])
            expires = np.concatenate([built.expires, part.expires[b:n]])
        fresh = _Partition.over(vectors, rids, expires)
        fresh.alive, fresh.dead, fresh.ivf = alive, part.dead, built.ivf
        self._partitions[scope] = fresh
        live = np.flatnonzero(alive[:b])
        for rid, p in zip(rids[live].tolist(), live.tolist(), strict=True):
            self._place(rid, scope, p)
        return True

    def scope_of_row(self, rid: int) -> ScopeKey | None:
        """The partition an indexed row is in."""
        found = self._locate(rid)
        return None if found is None else found[0]

    def sizes_for(self, scope: dict[str, str]) -> dict[ScopeKey, int]:
        """The live rows of each partition agreeing with the given field values."""
        parts = self._partitions
        return {k: parts[k].size - parts[k].dead for k in self._keys_for(scope)}

    def partitions_for(self, scope: dict[str, str]) -> list[_Partition]:
        """The partitions whose scope agrees with the given field values ({} means all)."""
        return [self._partitions[k] for k in self._keys_for(scope)]

    def _keys_for(self, scope: dict[str, str]) -> list[ScopeKey]:
        keys: set[ScopeKey] | None = None
        for i, name in enumerate(_SCOPE_FIELDS):
            if name in scope:
                found = self._by_field[i].get(scope[name], set())
                keys = set(found) if keys is None else keys & found
        chosen = self._partitions.keys() if keys is None else keys
        return [k for k in chosen if k in self._partitions]

    def search(
        self,
        query: npt.NDArray[np.float32],
        scope: dict[str, str],
        *,
        k: int,
        today: int,
        allowed: npt.NDArray[np.int64] | None = None,
    ) -> list[tuple[int, float]]:
        """(rid, cosine) of the best `k` live rows in scope, best first.

        `today` hides rows whose expiration day is before it (pass a negative value to keep
        them); `allowed`, a sorted array of rids, restricts the candidates further."""
        scores: list[npt.NDArray[np.float32]] = []
        rids: list[npt.NDArray[np.int64]] = []
        for part in self.partitions_for(scope):
            found = None
            if part.ivf is not None and allowed is None:
                found = _score_runs(part, query, today, part.ivf.ranges(query, part.size))
                if found is not None and len(found[0]) < k:
                    found = None  # too few near the query: look at everything
            if found is None:
                found = _score(part, query, today, allowed, None)
            if found is not None:
                scores.append(found[0])
                rids.append(found[1])
        if not scores:
            return []
        all_scores = np.concatenate(scores)
        all_rids = np.concatenate(rids)
        if k < len(all_scores):
            top = np.argpartition(-all_scores, k - 1)[:k]
        else:
            top = np.arange(len(all_scores))
        top = top[np.argsort(-all_scores[top], kind="stable")]
        return list(zip(all_rids[top].tolist(), all_scores[top].tolist(), strict=True))


def _score(
    part: _Partition,
    query: npt.NDArray[np.float32],
    today: int,
    allowed: npt.NDArray[np.int64] | None,
    positions: npt.NDArray[np.int64] | None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None:
    """Scores and rids of the live, unexpired (and allowed) rows among `positions` (None: all)."""
    n = part.size
    if n == 0:
        return None
    if positions is None:
        keep = part.alive[:n] & (part.expires[:n] >= today)
        if allowed is not None:
            keep &= _member(part.rids[:n], allowed)
        if keep.all():
            return part.vectors[:n] @ query, part.rids[:n]
        positions = np.flatnonzero(keep)
    else:
        positions = positions[part.alive[positions] & (part.expires[positions] >= today)]
    if len(positions) == 0:
        return None
    return part.vectors[positions] @ query, part.rids[positions]


def _score_runs(
    part: _Partition, query: npt.NDArray[np.float32], today: int, runs: list[tuple[int, int]]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None:
    """`_score` over runs of contiguous positions (an IVF's probed lists): one block each."""
    scores, rids = [], []
    for start, end in runs:
        keep = part.alive[start:end] & (part.expires[start:end] >= today)
        block = part.vectors[start:end] @ query
        if keep.all():
            scores.append(block)
            rids.append(part.rids[start:end])
        else:
            scores.append(block[keep])
            rids.append(part.rids[start:end][keep])
    if not scores:
        return None
    return np.concatenate(scores), np.concatenate(rids)


def _member(
    values: npt.NDArray[np.int64], sorted_allowed: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    pos = np.searchsorted(sorted_allowed, values)
    pos[pos >= len(sorted_allowed)] = 0
    return sorted_allowed[pos] == values if len(sorted_allowed) else np.zeros(len(values), bool)


def days_since_epoch(iso_date: str | None) -> int:
    if not iso_date:
        return int(NO_EXPIRY)
    return int(np.datetime64(iso_date[:10], "D").astype(np.int64))


def rows_from(raw: Sequence[RawRow]) -> list[Row]:
    return [
        Row(rid, (u, a, r), days_since_epoch(exp), np.frombuffer(blob, dtype=np.float32))
        for rid, u, a, r, exp, blob in raw
    ]
