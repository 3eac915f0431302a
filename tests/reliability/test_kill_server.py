"""kill -9 of `engram serve` at a random moment during concurrent synchronous and asynchronous
adds, a few times over one data directory. After each kill the store is whole; after each restart
every synchronous add that was answered is readable, and every async add that was accepted (an
event id returned) completes once: SUCCEEDED, its one fact stored exactly once (the fake LLM
answers each note with one fact, "Note number N", so a job run twice would store it twice).
tests/server/test_restart.py covers a fixed queue and its webhooks; this is the randomized storm."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.reliability.integrity import check_library_view, check_sqlite
from tests.reliability.writer import USERS, Acked, Acks, text_for
from tests.server.live import (
    ADMIN_KEY,
    fake_llm_config,
    free_port,
    slow_note_extraction,
    start_serve,
)

pytestmark = pytest.mark.slow  # multi-process concurrency
SEED = 1_5_2025
TRIALS = 5
SYNC_CLIENTS = 2
HEADERS = {"Authorization": f"Token {ADMIN_KEY}"}
ASYNC_USER = "kim"


def note_text(note: int) -> str:
    return f"Note number {note}"  # what `slow_note_extraction` extracts from the add below


class Load:
    """Client threads adding until the server dies: SYNC_CLIENTS send synchronous verbatim adds,
    one queues async adds of numbered notes (extracted by the fake LLM, 0.15 s each)."""

    def __init__(self, url: str, trial: int) -> None:
        self.url, self.trial = url, trial
        self.synced: dict[str, Acked] = {}  # answered synchronous adds
        self.events: dict[str, int] = {}  # accepted async adds: event id -> note number
        self.sent_notes: list[int] = []  # every async add sent (its answer may have been lost)
        self.errors: list[str] = []
        self._threads = [
            *(threading.Thread(target=self._sync, args=(w,)) for w in range(SYNC_CLIENTS)),
            threading.Thread(target=self._queue),
        ]
        for thread in self._threads:
            thread.start()

    def wait_answered(self) -> None:
        """Until a synchronous add was answered and an async one accepted: a kill timed from then
        falls among both kinds however slow the server is to start."""
        deadline = time.monotonic() + 60
        while not (self.synced and self.events) and not self.errors:
            assert time.monotonic() < deadline, "no add was answered within 60 s"
            time.sleep(0.01)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=60)

    def _post(self, client: httpx.Client, path: str, body: dict[str, Any]) -> Any:
        """The answer's JSON; None once the server is gone (or answered with an error)."""
        try:
            answer = client.post(path, json=body)
        except httpx.TransportError:
            return None
        if answer.status_code not in (200, 202):
            self.errors.append(f"{path}: {answer.status_code} {answer.text[:200]}")
            return None
        return answer.json()

    def _sync(self, worker: int) -> None:
        user = USERS[worker]
        with httpx.Client(base_url=self.url, headers=HEADERS, timeout=30) as client:
            for number in range(10_000):
                body = {"messages": text_for(f"s{self.trial}", worker, number, 0),
                        "user_id": user, "infer": False, "async_mode": False}  # fmt: skip
                answer = self._post(client, "/v1/memories/", body)
                if answer is None:
                    return
                for result in answer["results"]:
                    self.synced[result["id"]] = Acked(result["memory"], user)

    def _queue(self) -> None:
        with httpx.Client(base_url=self.url, headers=HEADERS, timeout=30) as client:
            for number in range(10_000):
                note = self.trial * 10_000 + number
                self.sent_notes.append(note)
                body = {"messages": f"This is note number {note}.", "user_id": ASYNC_USER}
                answer = self._post(client, "/v3/memories/add/", body)
                if answer is None:
                    return
                self.events[answer["event_id"]] = note
                time.sleep(0.1)


def wait_all_done(client: httpx.Client, events: dict[str, int]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 90
    pending = set(events)
    done: dict[str, dict[str, Any]] = {}
    while pending and time.monotonic() < deadline:
        for event_id in sorted(pending):
            event = client.get(f"/v1/event/{event_id}/").json()
            if event["status"] in ("SUCCEEDED", "FAILED"):
                done[event_id] = event
                pending.discard(event_id)
        time.sleep(0.1)
    assert not pending, f"{len(pending)} accepted async adds never finished: {sorted(pending)[:3]}"
    return done


def stored_texts(client: httpx.Client, user: str) -> Counter[str]:
    texts: Counter[str] = Counter()
    for page in range(1, 1_000):
        answer = client.post("/v3/memories/", json={
            "filters": {"user_id": user}, "page": page, "page_size": 500}).json()  # fmt: skip
        texts.update(m["memory"] for m in answer["results"])
        if answer["next"] is None:
            return texts
    raise AssertionError("more pages than expected")


def check_after_restart(
    client: httpx.Client, synced: dict[str, Acked], events: dict[str, int], sent: list[int]
) -> int:
    """Assert the restarted server completed every accepted job once and reads every answered
    add; the number of memories the async adds stored."""
    done = wait_all_done(client, events)
    failed = {e: d["error"] for e, d in done.items() if d["status"] != "SUCCEEDED"}
    assert not failed, f"{len(failed)} accepted async adds FAILED: {list(failed.items())[:3]}"
    for event_id, note in events.items():
        results = [r["memory"] for r in done[event_id]["results"]]
        assert results == [note_text(note)], f"event {event_id} (note {note}): {results}"
    texts = stored_texts(client, ASYNC_USER)
    twice = {t: n for t, n in texts.items() if n > 1}
    assert not twice, f"stored more than once (a job ran twice?): {twice}"
    missing = [n for n in events.values() if texts[note_text(n)] != 1]
    assert not missing, f"accepted notes not stored: {missing}"
    unexpected = set(texts) - {note_text(n) for n in sent}
    assert not unexpected, f"memories nobody asked for: {unexpected}"
    lost = []
    for memory_id, acked in synced.items():
        answer = client.get(f"/v1/memories/{memory_id}/")
        if answer.status_code != 200 or answer.json()["memory"] != acked.memory:
            lost.append((memory_id, answer.status_code))
    assert not lost, f"{len(lost)} of {len(synced)} answered adds are lost: {lost[:3]}"
    return sum(texts.values())


def check_server_db(home: Path) -> int:
    """The job queue's database is whole; the number of jobs that ran more than once."""
    with contextlib.closing(sqlite3.connect(home / "server.db", timeout=60)) as conn:
        verdict = conn.execute("PRAGMA integrity_check").fetchall()
        assert verdict == [("ok",)], f"server.db: {verdict[:5]}"
        return int(conn.execute("SELECT count(*) FROM jobs WHERE attempts > 1").fetchone()[0])


def test_server_kill_9_during_sync_and_async_adds(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    rng = random.Random(SEED)
    delays = [rng.uniform(0.5, 2.0) for _ in range(TRIALS)]  # each kill, after the first answers
    print(f"\nserver kill -9: seed {SEED}, {TRIALS} trials, {SYNC_CLIENTS} sync clients + 1 async")
    fake_openai.responder = slow_note_extraction
    config = fake_llm_config(tmp_path / "config.json", fake_openai.base_url)
    home, port = tmp_path / "home", free_port()
    url = f"http://127.0.0.1:{port}"
    flags = ("--config", str(config), "--rate-limit", "0")
    env = {"ENGRAM_JOB_WORKERS": "1"}
    synced: dict[str, Acked] = {}
    events: dict[str, int] = {}
    sent: list[int] = []
    server = start_serve(home, port, *flags, env=env)
    try:
        for trial, delay in enumerate(delays):
            load = Load(url, trial)
            load.wait_answered()
            time.sleep(delay)
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=30)
            load.join()
            assert load.errors == [], f"trial {trial}: errors before the kill: {load.errors}"
            assert load.synced and load.events, f"trial {trial}: nothing answered"
            figures = check_sqlite(home / "engram.db")
            check_server_db(home)
            synced.update(load.synced)
            events.update(load.events)
            sent.extend(load.sent_notes)
            server = start_serve(home, port, *flags, env=env)
            with httpx.Client(base_url=url, headers=HEADERS, timeout=30) as client:
                notes = check_after_restart(client, synced, events, sent)
            print(
                f"trial {trial}: killed {delay:.2f} s after the first answers, with {len(load.synced)} sync adds "
                f"answered and {len(load.events)} async adds accepted; store whole "
                f"({figures.memories} rows = {figures.fulltext} full-text entries); after the "
                f"restart all {len(synced)} answered adds readable, all {len(events)} accepted "
                f"jobs SUCCEEDED, {notes} notes stored, each once"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = check_sqlite(home / "engram.db")
    rerun = check_server_db(home)
    vectors, _ = check_library_view(home, Acks(live=synced), rng)
    print(
        f"server kill -9: {TRIALS} kills, {len(synced)} answered adds and {len(events)} accepted "
        f"async adds, 0 lost, 0 duplicated; {rerun} jobs re-run after a kill; {figures.memories} "
        f"rows, {vectors} vectors, {figures.history} history rows"
    )
