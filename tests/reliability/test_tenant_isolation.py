"""Randomized multi-tenant isolation over HTTP. PROJECTS projects, each with its own API key, and
a seeded random sequence of operations: adds (synchronous and queued), searches, lists, reads,
updates, deletes, history, feedback, batch updates and deletes, scoped delete-alls, events,
entities and JSON Lines exports, where each key also tries the ids of the other projects. Every
answer's body is scanned: none may carry another project's memory id, event id, text or user;
every access to another project's memory or event by id is a 404 (a batch naming one changes
nothing); and every list matches what that project was told it stored. On each database the
`server_db` fixture gives (SQLite files per project; one PostgreSQL database, rows confined by
project). tests/server/test_tenants.py covers the same rules with fixed steps."""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.live import LiveServer, new_project, wait_event

SEED = 27_4_2025
PROJECTS = 4
OPERATIONS = 1500
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WORDS = ("violin", "harbour", "tea", "glacier", "chess", "lantern", "orchard", "rowing")


def secret(project: int) -> str:
    """A word in every text of one project (and in no other)."""
    return f"secretp{project}x"


def sole_user(project: int) -> str:
    """A user id only this project uses (the others share "ann" and "bob" too)."""
    return f"sole{project}x"


@pytest.fixture
def live(tmp_path: Path, server_db: dict[str, Any]) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "server-data", rate_limit=0, **server_db)
    yield server
    server.close()


@dataclass
class Tenant:
    index: int
    project_id: str
    client: httpx.Client
    memories: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (text, user)
    gone: list[str] = field(default_factory=list)  # deleted ids
    events: list[str] = field(default_factory=list)

    @property
    def users(self) -> tuple[str, ...]:
        return ("ann", "bob", sole_user(self.index))


class Storm:
    """The random operations, the model of what each project holds, and the findings."""

    def __init__(self, tenants: list[Tenant], rng: random.Random) -> None:
        self.tenants, self.rng = tenants, rng
        self.owner: dict[str, int] = {}  # every memory and event id ever made -> its project
        self.ran: Counter[str] = Counter()
        self.foreign: Counter[str] = Counter()  # attempts on another project's ids
        self.leaks: list[str] = []
        self.wrong: list[str] = []  # unexpected statuses, lists that disagree with the model
        self.step = 0
        self.me = tenants[0]
        self.ops: list[tuple[int, Callable[[], None]]] = [
            (25, self.add), (3, self.add_queued), (12, self.search), (8, self.list_scope),
            (8, self.get_own), (8, self.get_foreign), (5, self.update_own),
            (4, self.update_foreign), (3, self.delete_own), (3, self.delete_foreign),
            (4, self.history_own), (4, self.history_foreign), (2, self.feedback_foreign),
            (2, self.batch_update_own), (2, self.batch_with_foreign), (1, self.batch_delete_own),
            (1, self.delete_all_scope), (2, self.event_foreign), (1, self.events),
            (1, self.entities), (1, self.export), (1, self.other_project_param),
        ]  # fmt: skip

    def run(self, operations: int) -> None:
        weights = [w for w, _ in self.ops]
        for step in range(operations):
            self.step, self.me = step, self.rng.choice(self.tenants)
            op = self.rng.choices([f for _, f in self.ops], weights)[0]
            if op.__name__ != "add" and not self.me.memories:
                op = self.add
            self.ran[op.__name__] += 1
            op()

    # -- plumbing -----------------------------------------------------------------------------

    def call(self, method: str, path: str, expect: int, **kw: Any) -> httpx.Response:
        answer = self.me.client.request(method, path, **kw)
        asked = path + json.dumps(kw.get("json")) + json.dumps(kw.get("params"))
        self.scan(f"{method} {path}", answer.text, asked)
        if answer.status_code != expect:
            self.wrong.append(f"{method} {path}: {answer.status_code}, not {expect}: "
                              f"{answer.text[:200]}")  # fmt: skip
        return answer

    def scan(self, what: str, body: str, asked: str) -> None:
        """Record any other project's id, text or user in `body`, but the ones the request
        `asked` named (a 404 says which id it did not find)."""
        me = self.me.index
        for found in set(UUID.findall(body)) - set(UUID.findall(asked)):
            if self.owner.get(found, me) != me:
                self.leaks.append(
                    f"project {me}, {what}: id {found} of project {self.owner[found]}"
                )
        for other in range(PROJECTS):
            for word in (secret(other), sole_user(other)):
                if other != me and word in body and word not in asked:
                    self.leaks.append(f"project {me}, {what}: {word} of project {other}")

    def text(self) -> str:
        return f"{secret(self.me.index)} note {self.step} about {self.rng.choice(WORDS)}"

    def own_id(self) -> str:
        return self.rng.choice(list(self.me.memories))  # in the order made: seeded choices

    def foreign_id(self, kind: str) -> str:
        self.foreign[kind] += 1
        others = [t for t in self.tenants if t is not self.me and (t.memories or t.gone)]
        if not others:
            return "00000000-0000-4000-8000-000000000000"
        other = self.rng.choice(others)
        return self.rng.choice([*other.memories, *other.gone])

    def stored(self, results: list[dict[str, Any]], user: str) -> None:
        for result in results:
            self.me.memories[result["id"]] = (result["memory"], user)
            self.owner[result["id"]] = self.me.index

    def check_model(self, what: str, results: list[dict[str, Any]], user: str | None) -> None:
        got = {r["id"]: r["memory"] for r in results}
        want = {i: text for i, (text, u) in self.me.memories.items() if user in (None, u)}
        if got != want:
            self.wrong.append(f"{what} of project {self.me.index} ({user}): "
                              f"{len(got.keys() - want.keys())} unexpected, "
                              f"{len(want.keys() - got.keys())} missing, "
                              f"{sum(got[i] != want[i] for i in got.keys() & want.keys())} "
                              "changed")  # fmt: skip

    # -- the operations -------------------------------------------------------------------------

    def add(self) -> None:
        user = self.rng.choice(self.me.users)
        texts = [self.text() for _ in range(self.rng.choice((1, 1, 2)))]
        body = {"messages": [{"role": "user", "content": t} for t in texts], "user_id": user,
                "infer": False, "async_mode": False}  # fmt: skip
        answer = self.call("POST", "/v1/memories/", 200, json=body)
        if answer.status_code == 200:
            self.stored(answer.json()["results"], user)

    def add_queued(self) -> None:
        user = self.rng.choice(self.me.users)
        body = {"messages": self.text(), "user_id": user, "infer": False}
        answer = self.call("POST", "/v3/memories/add/", 202, json=body)
        if answer.status_code != 202:
            return
        event_id = answer.json()["event_id"]
        self.owner[event_id] = self.me.index
        self.me.events.append(event_id)
        event = wait_event(self.me.client, event_id)
        self.scan(f"GET /v1/event/{event_id}/", json.dumps(event), event_id)
        if event["status"] != "SUCCEEDED":
            self.wrong.append(f"event {event_id}: {event}")
        self.stored(event["results"], user)

    def search(self) -> None:
        user = self.rng.choice(self.me.users)
        words = [self.rng.choice(WORDS), "note"]
        if self.rng.random() < 0.3:  # ask for another project's words
            words.append(secret(self.rng.randrange(PROJECTS)))
        query = " ".join(words)
        if self.rng.random() < 0.5:
            body = {"query": query, "filters": {"user_id": user}, "top_k": 50}
            self.call("POST", "/v3/memories/search/", 200, json=body)
        else:
            body = {"query": query, "user_id": user, "limit": 50}
            self.call("POST", "/v1/memories/search/", 200, json=body)

    def list_scope(self) -> None:
        user = self.rng.choice([*self.me.users, None])
        if user is None:
            answer = self.call("GET", "/v1/memories/", 200, params={"page_size": 1000})
        else:
            body = {"filters": {"user_id": user}, "page_size": 1000}
            answer = self.call("POST", "/v3/memories/", 200, json=body)
        if answer.status_code == 200:
            self.check_model("list", answer.json()["results"], user)

    def get_own(self) -> None:
        memory_id = self.own_id()
        answer = self.call("GET", f"/v1/memories/{memory_id}/", 200)
        if answer.status_code == 200 and answer.json()["memory"] != self.me.memories[memory_id][0]:
            self.wrong.append(f"{memory_id}: {answer.json()['memory']!r}")

    def get_foreign(self) -> None:
        self.call("GET", f"/v1/memories/{self.foreign_id('get')}/", 404)

    def update_own(self) -> None:
        memory_id, text = self.own_id(), self.text()
        if self.call("PUT", f"/v1/memories/{memory_id}/", 200, json={"text": text}).is_success:
            self.me.memories[memory_id] = (text, self.me.memories[memory_id][1])

    def update_foreign(self) -> None:
        path = f"/v1/memories/{self.foreign_id('update')}/"
        self.call("PUT", path, 404, json={"text": self.text()})

    def delete_own(self) -> None:
        memory_id = self.own_id()
        if self.call("DELETE", f"/v1/memories/{memory_id}/", 200).is_success:
            del self.me.memories[memory_id]
            self.me.gone.append(memory_id)

    def delete_foreign(self) -> None:
        self.call("DELETE", f"/v1/memories/{self.foreign_id('delete')}/", 404)

    def history_own(self) -> None:
        self.call("GET", f"/v1/memories/{self.own_id()}/history/", 200)

    def history_foreign(self) -> None:
        self.call("GET", f"/v1/memories/{self.foreign_id('history')}/history/", 404)

    def feedback_foreign(self) -> None:
        body = {"memory_id": self.foreign_id("feedback"), "feedback": "NEGATIVE"}
        self.call("POST", "/v1/feedback/", 404, json=body)

    def _some_own(self) -> list[str]:
        return self.rng.sample(list(self.me.memories), min(3, len(self.me.memories)))

    def batch_update_own(self) -> None:
        items = [{"memory_id": i, "text": self.text()} for i in self._some_own()]
        if self.call("PUT", "/v1/batch/", 200, json={"memories": items}).is_success:
            for item in items:
                self.me.memories[item["memory_id"]] = (item["text"],
                                                       self.me.memories[item["memory_id"]][1])  # fmt: skip

    def batch_with_foreign(self) -> None:
        """A batch of own ids and one of another project's: refused whole (nothing changes)."""
        items = [{"memory_id": i, "text": self.text()} for i in self._some_own()]
        items.insert(self.rng.randrange(len(items) + 1), {"memory_id": self.foreign_id("batch"),
                                                          "text": self.text()})  # fmt: skip
        if self.rng.random() < 0.5:
            self.call("PUT", "/v1/batch/", 404, json={"memories": items})
        else:
            ids = [{"memory_id": item["memory_id"]} for item in items]
            self.call("DELETE", "/v1/batch/", 404, json={"memories": ids})

    def batch_delete_own(self) -> None:
        ids = self._some_own()
        body = {"memories": [{"memory_id": i} for i in ids]}
        if self.call("DELETE", "/v1/batch/", 200, json=body).is_success:
            for memory_id in ids:
                del self.me.memories[memory_id]
                self.me.gone.append(memory_id)

    def delete_all_scope(self) -> None:
        user = self.rng.choice(self.me.users)
        if self.call("DELETE", "/v1/memories/", 200, params={"user_id": user}).is_success:
            for memory_id in [i for i, (_, u) in self.me.memories.items() if u == user]:
                del self.me.memories[memory_id]
                self.me.gone.append(memory_id)

    def event_foreign(self) -> None:
        others = [e for t in self.tenants if t is not self.me for e in t.events]
        if others:
            self.foreign["event"] += 1
            self.call("GET", f"/v1/event/{self.rng.choice(others)}/", 404)

    def events(self) -> None:
        self.call("GET", "/v1/events/", 200, params={"page_size": 1000})

    def entities(self) -> None:
        self.call("GET", "/v1/entities/", 200)

    def export(self) -> None:
        self.call("GET", "/v1/exports/jsonl/", 200)

    def other_project_param(self) -> None:
        """A key naming another project in the query (1.x clients send project_id): 403."""
        self.foreign["project_id"] += 1
        other = self.rng.choice([t for t in self.tenants if t is not self.me])
        self.call("GET", "/v1/memories/", 403, params={"project_id": other.project_id})

    def list_everything(self) -> None:
        """The final word: each project holds exactly what it was told it stored."""
        for tenant in self.tenants:
            self.me = tenant
            answer = self.call("GET", "/v1/memories/", 200, params={"page_size": 10_000})
            if answer.status_code == 200:
                self.check_model("the final list", answer.json()["results"], None)


def test_randomized_tenant_isolation(live: LiveServer, server_db: dict[str, Any]) -> None:
    database = "postgres" if server_db else "sqlite"
    rng = random.Random(SEED)
    with live.client() as admin:
        made = [new_project(admin, f"tenant{i}") for i in range(PROJECTS)]
    tenants = [Tenant(i, project, live.client(key)) for i, (_, project, key) in enumerate(made)]
    storm = Storm(tenants, rng)
    started = time.monotonic()
    try:
        storm.run(OPERATIONS)
        storm.list_everything()
    finally:
        for tenant in tenants:
            tenant.client.close()
    seconds = time.monotonic() - started
    print(
        f"\ntenant isolation on {database}: seed {SEED}, {PROJECTS} projects, {OPERATIONS} "
        f"operations in {seconds:.1f} s ({dict(sorted(storm.ran.items()))}); "
        f"{sum(storm.foreign.values())} attempts on other projects' ids or project "
        f"({dict(sorted(storm.foreign.items()))}), all refused; "
        f"{sum(len(t.memories) for t in tenants)} memories live; leaks found: {len(storm.leaks)}"
    )
    assert storm.leaks == [], f"{len(storm.leaks)} leaks; the first: {storm.leaks[:5]}"
    assert storm.wrong == [], f"{len(storm.wrong)} wrong answers; the first: {storm.wrong[:5]}"
