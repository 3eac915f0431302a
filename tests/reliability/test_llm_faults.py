"""LLM fault injection at 30% with zero partial writes. The fake OpenAI-compatible server fails
FAULT_RATE of the chat calls, seeded: HTTP errors (500, 503, 429), a 200 whose body is not JSON
or holds no choice, an answer slower than the client's timeout, and answers that are not JSON,
are cut off (finish_reason "length") or break the schema. Every add(infer=True) either succeeds
whole (each fact the LLM gave stored once, with its ADD in history, and nothing else changed) or
fails with a typed error (an `EngramError`; over HTTP its status and JSON `code`) and leaves the
store exactly as it was: every row of memories, history, messages, claims, the full-text index,
the vector change log and the graph, compared before and after. Through the library, and through
`engram serve` (the app in a thread, its own retry policy)."""

from __future__ import annotations

import contextlib
import json
import random
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engram import Memory
from engram.errors import EngramError
from engram.providers._http import RetryPolicy
from engram.providers.embedders.hashing import HashingEmbedder
from engram.providers.llm.openai import OpenAILLM
from engram.store.sqlite.store import SQLiteStore
from tests.fakes.openai_server import ChatReply, FakeOpenAI
from tests.server.live import LiveServer, wait_event

SEED = 30_2025
FAULT_RATE = 0.3
TIMEOUT = 0.5  # seconds the LLM client waits for an answer
SLOW = 0.8  # seconds a slow answer takes
LIBRARY_ADDS = 300
SERVER_ADDS = 100
ASYNC_ADDS = 40
USERS = ("kim", "lee")
WORDS = ("violin", "harbour", "tea", "glacier", "chess", "lantern", "orchard", "rowing")
# What the store holds, table by table (the columns of memories and history that say what a
# row is; every column of the others).
SNAPSHOT = {
    "memories": "SELECT id, memory, hash, user_id, metadata, categories, created_at, updated_at, "
    "embedding, feedback FROM memories",
    "history": "SELECT memory_id, event, old_memory, new_memory, id FROM history",
    **{table: f"SELECT * FROM {table}" for table in (
        "messages", "claims", "index_log", "memories_fts_docsize", "entities", "relations",
        "profile")},
}  # fmt: skip
Snapshot = dict[str, set[tuple[Any, ...]]]


def facts_for(note: int) -> list[str]:
    return [f"Note number {note}", f"Note {note} mentions the {WORDS[note % len(WORDS)]}"]


def good_answer(note: int) -> str:
    """The extraction of "This is note number N."."""
    return json.dumps({"facts": [{"text": text, "event": "ADD"} for text in facts_for(note)]})


def note_of(body: dict[str, Any]) -> int:
    """The note a chat request is about: the last one in the prompt's first message (the NEW
    messages come after the earlier ones)."""
    return int(re.findall(r"note number (\d+)", body["messages"][1]["content"])[-1])


# The faults a request may meet (the fake's queue), and the ones an answer may carry.
QUEUED: dict[str, Callable[[FakeOpenAI], None]] = {
    "500": lambda fake: fake.fail(500),
    "503": lambda fake: fake.fail(503),
    "429": lambda fake: fake.fail(429, headers={"Retry-After": "0"}),
    "body not JSON": lambda fake: fake.fail(200, body="<html>upstream error</html>"),
    "no choice": lambda fake: fake.fail(200, body='{"choices": []}'),
    "slow": lambda fake: fake.fail(200, body="{}", delay=SLOW),
}
ANSWERS: dict[str, ChatReply] = {
    "not JSON": ChatReply("Sorry, I cannot help with that."),
    "cut off": ChatReply('{"facts": [{"text": "Note number', finish_reason="length"),
    "wrong schema": ChatReply('{"facts": [{"text": 7, "event": "REMEMBER"}]}'),
}


class Faults:
    """Which chat calls fail, and how. The first call of each add takes its fate from the fake's
    queue (`before_add`: any fault, or the right answer); later ones (retries, repairs) from the
    responder, which can fail only in the ways an answer can (slow, not JSON, cut off, wrong
    schema)."""

    def __init__(self, fake: FakeOpenAI, rng: random.Random) -> None:
        self.fake, self.rng = fake, rng
        self.injected: Counter[str] = Counter()
        fake.responder = self._respond

    def before_add(self, note: int) -> None:
        if self.rng.random() >= FAULT_RATE:
            self.fake.reply(good_answer(note))
            return
        kind = self.rng.choice([*QUEUED, *ANSWERS])
        self.injected[kind] += 1
        if kind in QUEUED:
            QUEUED[kind](self.fake)
        else:
            answer = ANSWERS[kind]
            self.fake.reply(answer.text, finish_reason=answer.finish_reason)

    def _respond(self, body: dict[str, Any]) -> str | ChatReply:
        if self.rng.random() >= FAULT_RATE:
            return good_answer(note_of(body))
        kind = self.rng.choice(["slow", *ANSWERS])
        self.injected[kind] += 1
        if kind != "slow":
            return ANSWERS[kind]
        time.sleep(SLOW)  # the client has given up: nobody reads this answer
        return good_answer(note_of(body))


def snapshot(db: Path) -> Snapshot:
    with contextlib.closing(sqlite3.connect(db, timeout=60)) as conn:
        return {table: set(conn.execute(sql).fetchall()) for table, sql in SNAPSHOT.items()}


class Ledger:
    """Each add's outcome, checked against the store before and after it."""

    def __init__(self) -> None:
        self.succeeded = 0
        self.typed: Counter[str] = Counter()
        self.untyped: list[str] = []
        self.partial: list[str] = []

    def failed(self, note: int, error: str, before: Snapshot, after: Snapshot) -> None:
        self.typed[error] += 1
        changed = [table for table in SNAPSHOT if before[table] != after[table]]
        if changed:
            self.partial.append(f"note {note} failed ({error}) but changed {changed}")

    def stored(
        self, note: int, results: Sequence[Mapping[str, Any]], before: Snapshot, after: Snapshot
    ) -> None:
        """A success: exactly its facts were added, each with its history, nothing else."""
        self.succeeded += 1
        problems = []
        if sorted((r["memory"], r["event"]) for r in results) != sorted(
            (text, "ADD") for text in facts_for(note)
        ):
            problems.append(f"results {results}")
        added = {row[0]: row[1] for row in after["memories"] - before["memories"]}
        if added != {r["id"]: r["memory"] for r in results}:
            problems.append(f"rows added {added}")
        if before["memories"] - after["memories"]:
            problems.append("rows changed or removed")
        history = sorted(row[:2] for row in after["history"] - before["history"])
        if (
            history != sorted((r["id"], "ADD") for r in results)
            or before["history"] - after["history"]
        ):
            problems.append(f"history {history}")
        if problems:
            self.partial.append(f"note {note} succeeded but: {'; '.join(problems)}")

    def report(self, where: str, fake: FakeOpenAI, faults: Faults, adds: int) -> str:
        calls = len(fake.chat_requests)
        injected = sum(faults.injected.values())
        return (
            f"LLM faults, {where}: seed {SEED}, {adds} adds, {calls} LLM calls, {injected} "
            f"faults injected ({injected / calls:.0%}: {dict(sorted(faults.injected.items()))}); "
            f"{self.succeeded} adds succeeded whole, {sum(self.typed.values())} typed errors "
            f"({dict(sorted(self.typed.items()))}), {len(self.untyped)} untyped errors, "
            f"partial writes: {len(self.partial)}"
        )

    def check(self) -> None:
        assert self.untyped == [], f"errors that are not EngramErrors: {self.untyped[:5]}"
        assert self.partial == [], f"{len(self.partial)} partial writes: {self.partial[:5]}"
        assert self.succeeded and self.typed, "the faults should make some adds fail, not all"


def test_library_adds_succeed_whole_or_change_nothing(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    rng = random.Random(SEED)
    faults = Faults(fake_openai, rng)
    llm = OpenAILLM(
        model="gpt-test", base_url=fake_openai.base_url, api_key="test-key", timeout=TIMEOUT,
        retry=RetryPolicy(max_retries=1, backoff=0.01),
    )  # fmt: skip
    db = tmp_path / "data" / "engram.db"
    ledger = Ledger()
    with Memory(embedder=HashingEmbedder(256), store=SQLiteStore(db), llm=llm) as memory:
        memory.get_all(user_id=USERS[0])  # the store exists before the first snapshot
        for note in range(LIBRARY_ADDS):
            before = snapshot(db)
            faults.before_add(note)
            try:
                result = memory.add(f"This is note number {note}.", user_id=rng.choice(USERS))
            except EngramError as exc:
                ledger.failed(note, type(exc).__name__, before, snapshot(db))
            except Exception as exc:  # a bug: every failure should be typed
                ledger.untyped.append(f"note {note}: {exc!r}")
            else:
                ledger.stored(note, result["results"], before, snapshot(db))
    print("\n" + ledger.report("library", fake_openai, faults, LIBRARY_ADDS))
    ledger.check()


def test_server_adds_succeed_whole_or_change_nothing(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    rng = random.Random(SEED + 1)
    faults = Faults(fake_openai, rng)
    llm = {"provider": "openai", "config": {"openai_base_url": fake_openai.base_url,
                                            "api_key": "test-key", "timeout": TIMEOUT}}  # fmt: skip
    live = LiveServer(tmp_path / "server-data", memory={"llm": llm}, rate_limit=0)
    db = live.settings.data_dir / "engram.db"
    ledger = Ledger()
    try:
        with live.client() as client:
            client.post("/v3/memories/", json={"filters": {"user_id": USERS[0]}})  # opens the store
            for note in range(SERVER_ADDS):
                before = snapshot(db)
                faults.before_add(note)
                answer = client.post("/v1/memories/", json={
                    "messages": f"This is note number {note}.", "user_id": rng.choice(USERS),
                    "async_mode": False})  # fmt: skip
                body = answer.json()
                if answer.status_code == 200:
                    ledger.stored(note, body["results"], before, snapshot(db))
                elif answer.status_code in (429, 502, 503, 504) and "code" in body:
                    ledger.failed(note, f"{answer.status_code} {body['code']}", before,
                                  snapshot(db))  # fmt: skip
                else:
                    ledger.untyped.append(f"note {note}: {answer.status_code} {answer.text}")
    finally:
        live.close()
    print("\n" + ledger.report("server", fake_openai, faults, SERVER_ADDS))
    ledger.check()


def test_server_async_adds_complete_whole_or_fail_clean(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    """Queued adds: a job that meets a fault runs again (up to its attempts); each ends
    SUCCEEDED with its facts stored exactly once, or FAILED with nothing stored."""
    rng = random.Random(SEED + 2)
    faults = Faults(fake_openai, rng)  # every call's fate from the responder: jobs run unordered
    llm = {"provider": "openai", "config": {"openai_base_url": fake_openai.base_url,
                                            "api_key": "test-key", "timeout": TIMEOUT}}  # fmt: skip
    live = LiveServer(tmp_path / "server-data", memory={"llm": llm}, rate_limit=0)
    try:
        with live.client() as client:
            events = {
                client.post("/v3/memories/add/", json={
                    "messages": f"This is note number {note}.", "user_id": "kim"}).json()[
                    "event_id"]: note
                for note in range(ASYNC_ADDS)
            }  # fmt: skip
            done = {e: wait_event(client, e, timeout=120) for e in events}
            listed = client.post("/v3/memories/", json={
                "filters": {"user_id": "kim"}, "page_size": 1000}).json()["results"]  # fmt: skip
    finally:
        live.close()
    stored = Counter(m["memory"] for m in listed)
    statuses = Counter(d["status"] for d in done.values())
    wrong = []
    for event_id, note in events.items():
        status, results = done[event_id]["status"], done[event_id]["results"]
        want = 1 if status == "SUCCEEDED" else 0
        if [stored[text] for text in facts_for(note)] != [want, want]:
            wrong.append(f"note {note} {status}: stored {[stored[t] for t in facts_for(note)]}")
        if status == "SUCCEEDED" and sorted(r["memory"] for r in results) != sorted(
            facts_for(note)
        ):
            wrong.append(f"note {note}: the event says {results}")
    with contextlib.closing(sqlite3.connect(live.settings.data_dir / "server.db")) as conn:
        rerun = conn.execute("SELECT count(*) FROM jobs WHERE attempts > 1").fetchone()[0]
    calls, injected = len(fake_openai.chat_requests), sum(faults.injected.values())
    print(
        f"\nLLM faults, server async adds: seed {SEED + 2}, {ASYNC_ADDS} jobs, {calls} LLM calls, "
        f"{injected} faults injected ({injected / calls:.0%}: {dict(sorted(faults.injected.items()))}"
        f"); {dict(statuses)}, {rerun} jobs run more than once, partial or repeated writes: "
        f"{len(wrong)}"
    )
    assert set(statuses) <= {"SUCCEEDED", "FAILED"}, statuses
    assert wrong == [], wrong[:5]
    assert sum(stored.values()) == 2 * statuses["SUCCEEDED"], stored
