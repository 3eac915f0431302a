"""The vector index saved beside the database, so that a process opens a large store without
reading every vector out of SQLite (1M memories: 18 s) and without holding them all in memory.

`<database>-vectors` holds the index as of one `index_log` sequence number: every live row's
vector, laid out partition by partition (a partition with an IVF index list by list, its
centroids after), the rows' ids and expiration days, and a JSON header naming the store's epoch,
the sequence number, the dimensions and the partitions. Opening maps the vectors (pages are read
when a search touches them, and shared with every process that maps the file) and replays the
log past that sequence number. The file is used only when the database names it: each file
carries a random token that the process writing it then records in the database's `meta` table,
so a file from another database, an older copy restored over this one, or a write that raced
another process's does not match; nor does another epoch (a reset), a log trimmed past its
sequence number or other dimensions. A damaged file is ignored too. Then the index is read from
the database as before. It is a cache: rewritten (atomically, by rename) when a process that
loaded or replayed many rows closes the store, never the only copy of anything.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import numpy.typing as npt

logger = logging.getLogger("engram.store.sqlite")
MAGIC = b"ENGRAM-VECTORS-1\n"
ALIGN = 64
_CHUNK = 65536  # rows written per block


class Part(NamedTuple):  # (a named tuple: a hundred thousand are made at open)
    """One partition as saved: its scope, where its rows start and how many, and its IVF (the
    rows [0, built) filed in lists at `starts`) when it has one."""

    scope: tuple[str | None, str | None, str | None]
    start: int
    rows: int
    ivf: tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], int] | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    token: str  # also in the database's meta table (`vectors`) once the file is in place
    epoch: str
    seq: int
    vectors: npt.NDArray[np.float32]  # (rows, dims), mapped read-only
    rids: npt.NDArray[np.int64]
    expires: npt.NDArray[np.int32]
    parts: list[Part]


def path_for(database: Path) -> Path:
    return Path(f"{database}-vectors")


def _pad(f: BinaryIO) -> None:
    f.write(b"\0" * (-f.tell() % ALIGN))


def write(
    path: Path, *, token: str, epoch: str, seq: int, dims: int,
    parts: Iterable[tuple[Any, Any]],
) -> int:  # fmt: skip
    """Save the partitions ((scope, _Partition) pairs, read under the caller's lock) as of `seq`;
    returns the rows written. Written to a temporary file, flushed to disk, then renamed."""
    saved = []
    for scope, part in parts:
        alive = part.alive[: part.size]
        count = int(alive.sum())
        if count:
            saved.append((scope, part, alive, count))
    rows = sum(c for *_, c in saved)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            header: dict[str, Any] = {"token": token, "epoch": epoch, "seq": seq, "dims": dims,
                                      "rows": rows, "parts": []}  # fmt: skip
            ivfs: list[tuple[Any, Any, int]] = []
            start = 0
            for scope, part, alive, count in saved:
                entry: dict[str, Any] = {"scope": list(scope), "start": start, "count": count}
                if part.ivf is not None:
                    ivf = part.ivf
                    live = np.concatenate([[0], np.cumsum(alive[: ivf.built], dtype=np.int64)])
                    entry["ivf"] = len(ivfs)
                    ivfs.append((ivf.centroids, live[ivf.starts], int(live[-1])))
                header["parts"].append(entry)
                start += count
            header["ivf"] = [[len(c), int(b)] for c, _, b in ivfs]
            blob = json.dumps(header, separators=(",", ":")).encode()
            f.write(MAGIC + struct.pack("<Q", len(blob)) + blob)
            _pad(f)
            for *_, part, alive, _count in saved:  # vectors, then rids, then expiration days
                for s in range(0, part.size, _CHUNK):
                    e = min(s + _CHUNK, part.size)
                    f.write(part.vectors[s:e][alive[s:e]].astype("<f4", copy=False).tobytes())
            _pad(f)
            for *_, part, alive, _count in saved:
                f.write(part.rids[: part.size][alive].astype("<i8").tobytes())
            _pad(f)
            for *_, part, alive, _count in saved:
                f.write(part.expires[: part.size][alive].astype("<i4").tobytes())
            for centroids, starts, _built in ivfs:
                _pad(f)
                f.write(np.ascontiguousarray(centroids, dtype="<f4").tobytes())
                f.write(np.asarray(starts, dtype="<i8").tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def read(path: Path, dims: int) -> Snapshot | None:
    """The saved index, its vectors mapped; None when there is none or it cannot be used."""
    try:
        return _read(path, dims)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        logger.warning("%s is unusable (%s): the vector index is read from the database", path,
                       exc)  # fmt: skip
        return None


def _read(path: Path, dims: int) -> Snapshot | None:
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError("not an Engram vector index")
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    if header["dims"] != dims:
        return None
    rows = int(header["rows"])
    at = len(MAGIC) + 8 + length
    size = path.stat().st_size

    def take(dtype: str, *shape: int) -> np.ndarray[Any, Any]:
        """The next block (each starts aligned, as `write` pads them), mapped."""
        nonlocal at
        at += -at % ALIGN
        nbytes = np.dtype(dtype).itemsize * int(np.prod(shape))
        if at + nbytes > size:
            raise ValueError("truncated")
        array = np.memmap(path, dtype=dtype, mode="r", offset=at, shape=shape) if nbytes else \
            np.zeros(shape, dtype=dtype)  # fmt: skip
        at += nbytes
        return array

    vectors = take("<f4", rows, dims)
    rids = np.array(take("<i8", rows), dtype=np.int64)
    expires = np.array(take("<i4", rows), dtype=np.int32)
    ivfs = []
    for lists, built in header["ivf"]:
        centroids = np.array(take("<f4", lists, dims), dtype=np.float32)
        starts = np.array(take("<i8", lists + 1), dtype=np.int64)
        ivfs.append((centroids, starts, int(built)))
    parts = []
    for entry in header["parts"]:
        u, a, r = entry["scope"]
        ivf = ivfs[entry["ivf"]] if "ivf" in entry else None
        parts.append(Part((u, a, r), int(entry["start"]), int(entry["count"]), ivf))
    if parts and parts[-1].start + parts[-1].rows != rows:
        raise ValueError("partitions do not cover the rows")
    return Snapshot(str(header["token"]), str(header["epoch"]), int(header["seq"]), vectors, rids,
                    expires, parts)  # fmt: skip
