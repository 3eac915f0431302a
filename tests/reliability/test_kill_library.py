"""kill -9 at random points during concurrent writes through the library. A writer process (see
writer.py: four threads, two stores on one file) adds, and now and then updates or deletes, until
it is killed; then the store is whole (integrity, full-text index and vectors match the rows,
history matches memories), every memory whose add had returned is readable with its last
acknowledged text, and every acknowledged delete holds. A change in flight at the kill may have
happened or not, nothing else. The trials share one data directory, so each one also starts from
the state the previous kill left."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.reliability.integrity import check_library_view, check_sqlite
from tests.reliability.writer import Acks, read_acks, spawn, wait_acknowledged, wait_ready

pytestmark = pytest.mark.slow  # multi-process concurrency
SEED = 8_15_2024
TRIALS = 8
THREADS = 4


def test_kill_9_during_concurrent_adds_keeps_every_acknowledged_memory(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    delays = [rng.uniform(0.3, 1.5) for _ in range(TRIALS)]  # each kill, after the first ack
    print(f"\nlibrary kill -9: seed {SEED}, {TRIALS} trials, {THREADS} writer threads")
    data = tmp_path / "data"
    acks = Acks()
    for trial, delay in enumerate(delays):
        out, err = tmp_path / f"trial{trial}.out", tmp_path / f"trial{trial}.err"
        with out.open("wb") as sink, err.open("wb") as errors:
            child = spawn(data, f"t{trial}", THREADS, 0, sink, errors, churn=True)
            try:
                wait_ready(child, out, err)
                wait_acknowledged(child, out, err)
                time.sleep(delay)
                assert child.poll() is None, f"the writer stopped by itself: {err.read_text()}"
            finally:
                child.kill()  # SIGKILL
                child.wait(timeout=30)
        trial_acks = read_acks(out)
        assert trial_acks.errors == [], f"trial {trial}: the writer failed: {trial_acks.errors}"
        assert trial_acks.live, f"trial {trial}: nothing was acknowledged"
        acks.merge(trial_acks)
        figures = check_sqlite(data / "engram.db")
        vectors, settled = check_library_view(data, acks, rng)
        acks.settle(settled)
        print(
            f"trial {trial}: killed {delay:.2f} s after the first change; acknowledged: {len(trial_acks.live)} "
            f"memories, {trial_acks.updates} updates, {len(trial_acks.deleted)} deletes "
            f"({len(acks.live)} live, {len(acks.deleted)} deleted in all), all found as "
            f"acknowledged; {len(settled)} changes in "
            f"flight ({sum(t is None for t in settled.values())} had deleted); "
            f"{figures.memories} rows, {figures.fulltext} full-text entries, {vectors} vectors, "
            f"{figures.history} history rows; {figures.memories - len(acks.live)} committed but "
            "not acknowledged before the kill; integrity ok"
        )
    print(
        f"library kill -9: {TRIALS} kills; acknowledged: {len(acks.live)} live memories, "
        f"{acks.updates} updates, {len(acks.deleted)} deletes; 0 lost, 0 changed, 0 back"
    )
