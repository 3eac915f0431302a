"""A library writer process for the reliability tests.

`python tests/reliability/writer.py DATA_DIR TAG THREADS ADDS [churn]` opens two `Memory` objects
on DATA_DIR (two stores on one file, as two parts of an application would) and runs THREADS
threads that add memories verbatim (`infer=False`), ADDS each (0: until the process is killed).
Every fourth add brings two messages, so two memories in one transaction. With `churn`, every
fifth step also updates one of the thread's memories, or (one time in three) deletes one.

It prints "ready" once the stores are open, then one JSON line per acknowledged change, only after
the call that made it has returned (flushed at once: whatever the parent reads was acknowledged):
`{"id", "memory", "user_id"}` per memory added, `{"updated": id, "memory"}`, `{"deleted": id}`.
An update or delete is announced before it is made (`{"updating": id, "memory"}`,
`{"deleting": id}`): a kill between the two lines leaves it undecided. An error is printed as
`{"error": ...}` and ends the process with status 1.

Run by path, so it imports nothing from `tests`. The tests drive it with `spawn`, `wait_ready`,
`wait_acknowledged` and `read_acks`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from engram import Memory

DIMS = 64
USERS = ("user0", "user1", "user2")
_WORDS = ("lighthouse", "harbour", "violin", "orchard", "glacier", "lantern", "meadow", "canyon")
_print_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Acked:
    """A memory as its last acknowledged change left it."""

    memory: str
    user_id: str


@dataclass
class Acks:
    """What writers acknowledged: the memories there must be, the ones that must be gone, and
    the changes in flight when a writer was killed (id -> the memory as the change would leave
    it, None for a delete): those may or may not have happened."""

    live: dict[str, Acked] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    pending: dict[str, Acked | None] = field(default_factory=dict)
    updates: int = 0
    errors: list[str] = field(default_factory=list)

    def read(self, record: dict[str, Any]) -> None:
        if "error" in record:
            self.errors.append(record["error"])
        elif "id" in record:
            self.live[record["id"]] = Acked(record["memory"], record["user_id"])
        elif "updating" in record:
            memory_id = record["updating"]
            self.pending[memory_id] = Acked(record["memory"], self.live[memory_id].user_id)
        elif "updated" in record:
            memory_id = record["updated"]
            self.live[memory_id] = Acked(record["memory"], self.live[memory_id].user_id)
            del self.pending[memory_id]
            self.updates += 1
        elif "deleting" in record:
            self.pending[record["deleting"]] = None
        else:
            del self.live[record["deleted"]]
            del self.pending[record["deleted"]]
            self.deleted.add(record["deleted"])

    def merge(self, other: Acks) -> None:
        self.live.update(other.live)
        self.deleted |= other.deleted
        self.pending.update(other.pending)
        self.updates += other.updates
        self.errors += other.errors

    def settle(self, found: dict[str, str | None]) -> None:
        """The changes in flight as they turned out (`found`: id -> its text, None if gone)."""
        for memory_id, text in found.items():
            self.pending.pop(memory_id, None)
            if text is None:
                self.live.pop(memory_id, None)
                self.deleted.add(memory_id)
            else:
                self.live[memory_id] = Acked(text, self.live[memory_id].user_id)


def memory_config(data_dir: Path) -> dict[str, Any]:
    """The library configuration the writers and the checks share (a fast, exact embedder)."""
    return {
        "data_dir": str(data_dir),
        "embedder": {"provider": "hashing", "config": {"embedding_dims": DIMS}},
    }


def text_for(tag: str, worker: int, number: int, part: int) -> str:
    """A memory's text; its second word is unique to it (see `token_of`)."""
    return f"Note {tag}w{worker}n{number}p{part} about the {_WORDS[(number + part) % len(_WORDS)]}"


def token_of(text: str) -> str:
    return text.split()[1]


def _say(*records: dict[str, Any]) -> None:
    with _print_lock:
        sys.stdout.write("".join(f"{json.dumps(record)}\n" for record in records))
        sys.stdout.flush()


def _revise(memory: Memory, mine: dict[str, str], number: int) -> None:
    """Update one of `mine` (a text gaining a word), or delete one."""
    target = list(mine)[number * 7 % len(mine)]
    if number % 15 == 14:
        _say({"deleting": target})
        memory.delete(target)
        del mine[target]
        _say({"deleted": target})
        return
    text = f"{mine[target]} revised{number}"
    _say({"updating": target, "memory": text})
    memory.update(target, text)
    mine[target] = text
    _say({"updated": target, "memory": text})


def _work(
    memory: Memory, tag: str, worker: int, adds: int, churn: bool, failed: threading.Event
) -> None:
    user = USERS[worker % len(USERS)]
    mine: dict[str, str] = {}
    number = 0
    try:
        while adds == 0 or number < adds:
            if churn and number % 5 == 4 and mine:
                _revise(memory, mine, number)
            texts = [text_for(tag, worker, number, part) for part in range(1 + (number % 4 == 3))]
            messages = [{"role": "user", "content": text} for text in texts]
            results = memory.add(messages, user_id=user, infer=False)["results"]
            _say(*({"id": r["id"], "memory": r["memory"], "user_id": user} for r in results))
            mine.update((r["id"], r["memory"]) for r in results)
            number += 1
    except Exception as exc:  # reported to the parent, which fails the test with it
        _say({"error": f"{type(exc).__name__}: {exc}"})
        failed.set()


def main(data_dir: str, tag: str, threads: str, adds: str, mode: str = "") -> int:
    memories = [Memory(memory_config(Path(data_dir))) for _ in range(2)]
    for memory in memories:
        memory.get_all(user_id=USERS[0], limit=1)  # open the store now, not in the first add
    with _print_lock:
        print("ready", flush=True)
    failed = threading.Event()
    workers = [
        threading.Thread(
            target=_work, args=(memories[w % 2], tag, w, int(adds), mode == "churn", failed)
        )
        for w in range(int(threads))
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    for memory in memories:
        memory.close()
    return 1 if failed.is_set() else 0


def spawn(
    data_dir: Path, tag: str, threads: int, adds: int, out: IO[bytes], err: IO[bytes],
    *, churn: bool = False,
) -> subprocess.Popen[bytes]:  # fmt: skip
    """This script as a process, writing to `out` (its acknowledgements) and `err`."""
    command = [sys.executable, __file__, str(data_dir), tag, str(threads), str(adds)]
    return subprocess.Popen([*command, *(["churn"] if churn else [])], stdout=out, stderr=err)


def wait_ready(child: subprocess.Popen[bytes], out: Path, err: Path) -> None:
    """Until the writer whose output is `out` has opened its stores."""
    deadline = time.monotonic() + 60
    while not out.read_text().startswith("ready"):
        assert child.poll() is None, f"the writer died before it was ready: {err.read_text()}"
        assert time.monotonic() < deadline, "the writer was not ready within 60 s"
        time.sleep(0.02)


def wait_acknowledged(child: subprocess.Popen[bytes], out: Path, err: Path) -> None:
    """Until the writer whose output is `out` has acknowledged its first change: a kill timed
    from then falls among writes however slow the machine is to start them."""
    deadline = time.monotonic() + 60
    while "\n{" not in out.read_text():
        assert child.poll() is None, f"the writer died before its first change: {err.read_text()}"
        assert time.monotonic() < deadline, "the writer acknowledged nothing within 60 s"
        time.sleep(0.01)


def read_acks(out: Path) -> Acks:
    """What the writer whose output is `out` acknowledged."""
    acks = Acks()
    for line in out.read_text().split("\n")[:-1]:  # a line cut by a kill was not acknowledged
        if line.startswith("{"):
            acks.read(json.loads(line))
    return acks


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
