"""Several processes and several Memory objects on one data directory, all at once."""

from __future__ import annotations

import multiprocessing as mp
import threading
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from engram import Memory
from engram.providers.embedders.hashing import HashingEmbedder
from engram.store.sqlite.store import SQLiteStore

PROCESSES = 4
ADDS = 200


def _open(db: str) -> Memory:
    return Memory(embedder=HashingEmbedder(256), store=SQLiteStore(db))


def _writer(db: str, worker: int, out: mp.Queue[tuple[str, Any]]) -> None:
    try:
        with _open(db) as memory:
            ids: list[str] = []
            for i in range(ADDS):
                result = memory.add(f"worker {worker} fact {i}", user_id="shared", infer=False)
                ids.extend(r["id"] for r in result["results"])
        out.put(("ok", ids))
    except Exception as exc:  # report to the parent instead of dying silently
        out.put(("error", repr(exc)))


def _searcher(db: str, stop: Event, out: mp.Queue[tuple[str, Any]]) -> None:
    try:
        count = 0
        with _open(db) as memory:
            while not stop.is_set():
                memory.search("fact", user_id="shared", top_k=5)
                memory.get_all(user_id="shared", limit=10)
                count += 1
        out.put(("searches", count))
    except Exception as exc:
        out.put(("error", repr(exc)))


def test_four_processes_add_while_others_search(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    with _open(db) as memory:  # create the schema once, like a deployment would
        memory.get_all(user_id="shared")
    ctx = mp.get_context("spawn")
    results: mp.Queue[tuple[str, Any]] = ctx.Queue()
    stop = ctx.Event()
    searchers = [ctx.Process(target=_searcher, args=(db, stop, results)) for _ in range(2)]
    writers = [ctx.Process(target=_writer, args=(db, w, results)) for w in range(PROCESSES)]
    for p in searchers + writers:
        p.start()
    for p in writers:
        p.join(timeout=300)
    stop.set()
    for p in searchers:
        p.join(timeout=60)
    outcomes = [results.get(timeout=10) for _ in range(len(writers) + len(searchers))]
    errors = [o for o in outcomes if o[0] == "error"]
    assert errors == []
    ids = [i for kind, value in outcomes if kind == "ok" for i in value]
    assert len(ids) == len(set(ids)) == PROCESSES * ADDS
    assert all(value > 0 for kind, value in outcomes if kind == "searches")
    with _open(db) as memory:
        assert memory.get_all(user_id="shared")["total"] == PROCESSES * ADDS
        # Each index holds every process's writes: the vector index finds the exact text first,
        # the full-text index every writer's "fact 199". (The fused order is not asserted: with a
        # bag-of-words test embedder and interleaved turns of one scope, `neighbours` can lift
        # an adjacent turn above the exact one.)
        found = memory.search("worker 3 fact 199", user_id="shared", top_k=1, recipe="vector")
        assert found["results"][0]["memory"] == "worker 3 fact 199"
        found = memory.search("199", user_id="shared", top_k=10, recipe="keyword")
        expected = {f"worker {w} fact 199" for w in range(PROCESSES)}
        assert {r["memory"] for r in found["results"]} == expected


def test_several_memory_objects_in_one_process(tmp_path: Path) -> None:
    db = str(tmp_path / "threads.db")
    memories = [_open(db) for _ in range(3)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for i in range(50):
                memories[index].add(f"thread {index} note {i}", user_id="t", infer=False)
                memories[(index + 1) % 3].search("note", user_id="t", top_k=3)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for memory in memories:
        assert memory.get_all(user_id="t")["total"] == 150
        memory.close()
