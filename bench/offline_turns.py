"""Offline-extractor bench, turn by turn: does each chat turn that says something worth keeping
produce a memory, and does chit-chat produce none?

    .venv/bin/python bench/offline_turns.py [--verbose] [--data tests/data/offline_turns.jsonl]

Each line of the data is one invented two-person chat (`speakers`, `turns`), sessions on a few
dates. Every turn has its `speaker`, `text`, `timestamp` and a label: `keep` true when it states
something worth remembering about someone's life (an event, plan, opinion, preference, possession,
relation, job, health, what happened to someone they know, even without "I" or as a short answer),
false for greetings, thanks, goodbyes, pure questions, acknowledgements, compliments and
encouragement addressed to the other speaker, filler and general knowledge; null when a careful
reader could go either way (not scored). A keep turn lists 1-3 `mentions`: lower-case phrases
from its own words that a memory made from it must contain. The labels say what a person would
want kept, not what the extractor does; `offline_turns_heldout.jsonl` was written beside the
dev file, before either was run.

No LLM is configured, so the offline extractor runs, through the public API: one fresh `Memory`
per conversation on a temporary SQLite store, the embedder `HashingEmbedder(256)`, the clock fixed
at 2026-03-10 plus one second per call. Each turn is one add, as a chat integration sends it:
`{"role": "user", "content": text, "name": speaker}` with the conversation's id as `user_id`,
the turn's `timestamp` and `metadata={"turn": i}`.

A turn "produced" when a stored memory at the end carries its `metadata["turn"]`. Precision:
keep turns among the labelled turns that produced; recall: keep turns that produced; mention
recall: keep turns with one produced memory containing all their mentions (case-insensitive);
leakage: skip turns that produced. A memory UPDATEd by a later turn keeps the metadata of the turn
that first added it, so the later turn does not count as produced: "update-only" turns are
counted apart so the gap stays visible.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "offline_turns.jsonl"
HELDOUT = DATA.with_name("offline_turns_heldout.jsonl")

# -- the labelled set --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: str
    text: str
    timestamp: str
    keep: bool | None  # None: ambiguous, not scored
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    speakers: tuple[str, str]
    turns: tuple[Turn, ...]


def load(path: Path = DATA) -> list[Conversation]:
    conversations = []
    for line in path.read_text().splitlines():
        raw = json.loads(line)
        turns = tuple(
            Turn(t["speaker"], t["text"], t["timestamp"], t["keep"], tuple(t.get("mentions", ())))
            for t in raw["turns"]
        )
        conversations.append(Conversation(raw["id"], tuple(raw["speakers"]), turns))
    return conversations


# -- running a conversation --------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    conversation: Conversation
    memories: list[list[str]]  # per turn: the stored memories carrying its turn number
    update_only: set[int] = field(default_factory=set)  # turns whose add only UPDATEd

    def produced(self, i: int) -> bool:
        return bool(self.memories[i])

    def mentioned(self, i: int) -> bool:
        """One memory of turn i contains every mention."""
        wanted = self.conversation.turns[i].mentions
        return any(all(m in text.lower() for m in wanted) for text in self.memories[i])


def _add_turns(memory: Any, conversation: Conversation) -> set[int]:
    """Every turn, one add each; returns the turns whose add only UPDATEd earlier memories."""
    update_only = set()
    for i, turn in enumerate(conversation.turns):
        result = memory.add(
            {"role": "user", "content": turn.text, "name": turn.speaker},
            user_id=conversation.id,
            timestamp=turn.timestamp,
            metadata={"turn": i},
        )
        events = {item["event"] for item in result["results"]}
        if "UPDATE" in events and "ADD" not in events:
            update_only.add(i)
    return update_only


def run_conversation(conversation: Conversation) -> Outcome:
    """The conversation through a fresh offline `Memory` on a temporary SQLite store."""
    from bench.offline_extractor import fixed_clock  # the same clock as the other set's
    from engram import Memory, MemoryConfig
    from engram.providers.embedders.hashing import HashingEmbedder
    from engram.store.sqlite.store import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "engram.db")
        offline = MemoryConfig(llm_provider="offline")  # whatever keys the environment holds
        embedder, clock = HashingEmbedder(256), fixed_clock()
        with Memory(offline, embedder=embedder, store=store, clock=clock) as memory:
            update_only = _add_turns(memory, conversation)
            stored = memory.get_all(user_id=conversation.id, top_k=100000)["results"]
    memories: list[list[str]] = [[] for _ in conversation.turns]
    for record in stored:
        turn = (record.get("metadata") or {}).get("turn")
        if isinstance(turn, int) and 0 <= turn < len(memories):
            memories[turn].append(record["memory"])
    return Outcome(conversation, memories, update_only - {i for i, m in enumerate(memories) if m})


def run(conversations: Sequence[Conversation]) -> list[Outcome]:
    return [run_conversation(c) for c in conversations]


# -- scoring ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Totals:
    turns: int = 0
    memories: int = 0
    keep: int = 0
    keep_produced: int = 0
    keep_mentioned: int = 0
    skip: int = 0
    skip_produced: int = 0
    unlabelled: int = 0
    update_only: int = 0

    @property
    def precision(self) -> float:
        produced = self.keep_produced + self.skip_produced
        return self.keep_produced / produced if produced else 1.0

    @property
    def recall(self) -> float:
        return self.keep_produced / self.keep if self.keep else 1.0

    @property
    def mention_recall(self) -> float:
        return self.keep_mentioned / self.keep if self.keep else 1.0

    @property
    def leakage(self) -> float:
        return self.skip_produced / self.skip if self.skip else 0.0

    @property
    def per_turn(self) -> float:
        return self.memories / self.turns if self.turns else 0.0


def totals(outcomes: Sequence[Outcome]) -> Totals:
    t = Totals()
    for outcome in outcomes:
        t.update_only += len(outcome.update_only)
        for i, turn in enumerate(outcome.conversation.turns):
            t.turns += 1
            t.memories += len(outcome.memories[i])
            if turn.keep is None:
                t.unlabelled += 1
            elif turn.keep:
                t.keep += 1
                t.keep_produced += outcome.produced(i)
                t.keep_mentioned += outcome.mentioned(i)
            else:
                t.skip += 1
                t.skip_produced += outcome.produced(i)
    return t


def misses(outcomes: Sequence[Outcome]) -> list[str]:
    """Every false keep (with its memories), missed keep and keep without its mentions."""
    lines = []
    for outcome in outcomes:
        for i, turn in enumerate(outcome.conversation.turns):
            where = f"{outcome.conversation.id}#{i} {turn.speaker}: {turn.text!r}"
            if turn.keep is False and outcome.produced(i):
                lines.append(f"false keep {where} -> {outcome.memories[i]!r}")
            elif turn.keep and not outcome.produced(i):
                note = " (update only)" if i in outcome.update_only else ""
                lines.append(f"missed keep{note} {where}")
            elif turn.keep and not outcome.mentioned(i):
                lines.append(f"no mention {where} {list(turn.mentions)} -> {outcome.memories[i]!r}")
    return lines


def report(outcomes: Sequence[Outcome], *, verbose: bool = False) -> str:
    t = totals(outcomes)
    produced = t.keep_produced + t.skip_produced
    lines = [
        f"turns {t.turns}: keep {t.keep}, skip {t.skip}, unlabelled {t.unlabelled}",
        f"precision      {t.precision:.3f}   ({t.keep_produced}/{produced} labelled turns that "
        "produced)",
        f"recall         {t.recall:.3f}   ({t.keep_produced}/{t.keep} keep turns)",
        f"mention recall {t.mention_recall:.3f}   ({t.keep_mentioned}/{t.keep} keep turns)",
        f"leakage        {t.leakage:.3f}   ({t.skip_produced}/{t.skip} skip turns)",
        f"memories/turn  {t.per_turn:.3f}   ({t.memories} memories)",
        f"update-only turns (counted as not produced): {t.update_only}",
    ]
    if verbose:
        lines += misses(outcomes)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--verbose", action="store_true", help="list every miss")
    args = parser.parse_args(argv)
    conversations = load(args.data)
    print(f"{args.data.name}: {len(conversations)} conversations, embedder hashing")
    print(report(run(conversations), verbose=args.verbose))


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]  # run as a script: engram, bench
    main()
