"""Many processes writing one data directory at once: library writer processes (writer.py: two
stores and two threads each) and two `engram serve` processes on the same home, whose default
project keeps its memories in the data directory's `engram.db`, the file the library opens. No
add fails or is lost, the counts are exact, every memory is readable through the library and
through either server, and the store is whole. (tests/test_concurrency.py: the library alone.)"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.integrity import check_library_view, check_sqlite
from tests.reliability.writer import DIMS, Acked, Acks, read_acks, spawn, text_for, wait_ready
from tests.server.live import ADMIN_KEY, free_port, start_serve

pytestmark = pytest.mark.slow  # multi-process concurrency
SEED = 3_2025
LIBRARY_WRITERS = 4
THREADS = 2
ADDS = 150  # per writer thread; every fourth add stores two memories
HTTP_ADDS = 250  # per server
HEADERS = {"Authorization": f"Token {ADMIN_KEY}"}


def http_writer(url: str, worker: int, acked: dict[str, Acked], errors: list[str]) -> None:
    user = f"http{worker}"
    with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as client:
        for number in range(HTTP_ADDS):
            text = text_for("h", worker, number, 0)
            answer = client.post("/v1/memories/", json={
                "messages": text, "user_id": user, "infer": False, "async_mode": False})  # fmt: skip
            if answer.status_code != 200:
                errors.append(f"{url}: {answer.status_code} {answer.text[:200]}")
                return
            for result in answer.json()["results"]:
                acked[result["id"]] = Acked(result["memory"], user)


def test_library_processes_and_two_servers_write_one_data_directory(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    home = tmp_path / "home"
    config = tmp_path / "hashing.json"
    embedder = {"provider": "hashing", "config": {"embedding_dims": DIMS}}
    config.write_text(json.dumps({"embedder": embedder}))
    ports = [free_port(), free_port()]
    servers = [start_serve(home, p, "--config", str(config), "--rate-limit", "0") for p in ports]
    writers: list[subprocess.Popen[bytes]] = []
    try:
        outs = [tmp_path / f"writer{w}.out" for w in range(LIBRARY_WRITERS)]
        errs = [tmp_path / f"writer{w}.err" for w in range(LIBRARY_WRITERS)]
        sinks = [path.open("wb") for path in (*outs, *errs)]
        writers.extend(
            spawn(home, f"L{w}", THREADS, ADDS, sinks[w], sinks[LIBRARY_WRITERS + w])
            for w in range(LIBRARY_WRITERS)
        )
        for writer, out, err in zip(writers, outs, errs, strict=True):
            wait_ready(writer, out, err)  # they write while the servers do
        started = time.monotonic()
        http_acked: dict[str, Acked] = {}
        errors: list[str] = []
        clients = [
            threading.Thread(target=http_writer, args=(f"http://127.0.0.1:{p}", i, http_acked,
                                                       errors))
            for i, p in enumerate(ports)
        ]  # fmt: skip
        for thread in clients:
            thread.start()
        statuses = [w.wait(timeout=240) for w in writers]
        for thread in clients:
            thread.join(timeout=240)
        for sink in sinks:
            sink.close()
        seconds = time.monotonic() - started
        assert statuses == [0] * LIBRARY_WRITERS, [e.read_text()[-2000:] for e in errs]
        acked: dict[str, Acked] = dict(http_acked)
        for out in outs:
            acks = read_acks(out)
            errors.extend(acks.errors)
            acked.update(acks.live)
        assert errors == [], f"adds failed: {errors[:5]}"
        per_thread = ADDS + len(range(3, ADDS, 4))
        expected = LIBRARY_WRITERS * THREADS * per_thread + len(ports) * HTTP_ADDS
        assert len(acked) == expected, f"{len(acked)} distinct ids acknowledged, not {expected}"
        for index, port in enumerate(ports):  # each server reads what the others wrote
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS) as client:
                listed = client.get("/v1/memories/", params={"page_size": 1}).json()
                assert listed["count"] == expected, f"server {index} lists {listed['count']}"
                for memory_id in rng.sample(sorted(acked), 200):
                    answer = client.get(f"/v1/memories/{memory_id}/")
                    assert answer.status_code == 200, (memory_id, answer.text)
                    assert answer.json()["memory"] == acked[memory_id].memory
    finally:
        for process in [*writers, *servers]:
            process.terminate()
            process.wait(timeout=30)
    figures = check_sqlite(home / "engram.db")
    assert figures.memories == figures.history == expected, figures
    vectors, _ = check_library_view(home, Acks(live=acked), rng)
    with contextlib.closing(sqlite3.connect(home / "server.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    print(
        f"\none data directory, {LIBRARY_WRITERS} library processes x {THREADS} threads x {ADDS} "
        f"adds + {len(ports)} server processes x {HTTP_ADDS} HTTP adds, seed {SEED}: "
        f"{len(acked)} memories in {seconds:.1f} s, 0 errors, 0 lost; {figures.memories} rows, "
        f"{figures.fulltext} full-text entries, {vectors} vectors, {figures.history} history "
        "rows; integrity ok"
    )
