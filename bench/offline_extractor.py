"""Offline-extractor bench: labelled multi-turn conversations through `Memory.add(infer=True)`.

    .venv/bin/python bench/offline_extractor.py [--embedder hashing|minilm] [--verbose]
                                                [--data tests/data/offline_conversations.jsonl]

Each line of the data is one conversation: a scope (`user_id`, `agent_id`, or both), a sequence
of adds (messages with roles, optionally a `timestamp`), and the labels: the memories that should
be stored at the end, for the user and for the agent; `optional` memories that are acceptable but
not required; and every UPDATE/DELETE that should happen (`previous`: the memory replaced or
removed; `event` "UPDATE", "DELETE" or "UPDATE|DELETE" when either is right).

No LLM is configured, so the offline extractor runs, through the public API on a temporary SQLite
store. The clock is fixed at 2026-03-10 (a Tuesday) plus one second per call; adds without a
`timestamp` happen then. The embedder (default: `HashingEmbedder(256)`; `--embedder minilm`: the
default local model) only picks which stored memories the extractor sees (up to 15, so all of them
in these conversations) and the near-duplicate check on insert.

Scored items are the final memories (with their owner, user or agent) and the UPDATE/DELETE
events. A stored memory matches a label when their content words (lower case, light stemming,
function words dropped) have a Jaccard similarity of at least 0.6, with the same polarity (a
negation on one side only never matches), the same numbers, dates and month names, and the
label's proper names present. Matching is one to one, best pairs first. Precision: matched
stored memories and events over all stored (a memory matching an optional label counts on neither
side); recall: matched over all labelled. Figures are printed overall, for memories and events
apart, and per category. An add that stores nothing must say why in `warnings`: "silent adds"
counts those that do not.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "offline_conversations.jsonl"
START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SIMILAR = 0.6

# -- the labelled set --------------------------------------------------------------------------

Label = list[str]  # alternatives: any one of them matches


@dataclass(frozen=True, slots=True)
class ExpectedEvent:
    kinds: frozenset[str]
    previous: str


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    category: str
    scope: dict[str, str]
    adds: list[dict[str, Any]]
    expect: dict[str, list[Label]]  # owner ("user" / "agent") -> labels
    optional: dict[str, list[Label]]
    events: list[ExpectedEvent]


def _labels(raw: Sequence[str | list[str]]) -> list[Label]:
    return [[item] if isinstance(item, str) else list(item) for item in raw]


def load_cases(path: Path = DATA) -> list[Case]:
    cases = []
    for line in path.read_text().splitlines():
        raw = json.loads(line)
        scope = {k: raw[k] for k in ("user_id", "agent_id") if k in raw}
        cases.append(
            Case(
                id=raw["id"],
                category=raw["category"],
                scope=scope,
                adds=raw["adds"],
                expect={k: _labels(v) for k, v in raw["expect"].items()},
                optional={k: _labels(v) for k, v in raw.get("optional", {}).items()},
                events=[
                    ExpectedEvent(frozenset(e["event"].split("|")), e["previous"])
                    for e in raw.get("events", [])
                ],
            )
        )
    return cases


# -- the lenient matcher -----------------------------------------------------------------------

_WORD = re.compile(r"[\w'-]+")
_STOP = {
    "a", "an", "the", "is", "are", "am", "be", "been", "was", "were", "to", "in", "on", "at",
    "of", "for", "with", "as", "and", "or", "has", "have", "having", "named", "called", "name",
    "user", "users", "their", "his", "her", "my", "our", "its", "it", "this", "that", "these",
    "those", "very", "really", "also", "just", "now", "currently", "still", "so", "too", "some",
    "i", "me", "they", "them", "he", "she", "s",
}  # fmt: skip
_NEGATIVE = {"not", "no", "never", "dislikes", "dislike", "hates", "hate", "detests", "cannot",
             "nor", "without"}  # fmt: skip
_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december"}  # fmt: skip


def _words(text: str) -> list[str]:
    return [w.strip("'-").removesuffix("'s") for w in _WORD.findall(text.lower())]


def _stem(word: str) -> str:
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: -len(suffix)] + keep
            if suffix in ("ing", "ed") and len(word) > 3 and word[-1] == word[-2]:
                word = word[:-1]  # stopped -> stop
            return word
    return word


def content(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w and w not in _STOP and w not in _NEGATIVE}


def _negative(text: str) -> bool:
    return any(w in _NEGATIVE or w.endswith("n't") for w in _words(text))


def _anchors(text: str) -> set[str]:
    """Numbers, dates and month names: they must agree exactly."""
    return {w for w in _words(text) if any(c.isdigit() for c in w) or w in _MONTHS}


def _names(text: str) -> set[str]:
    """Capitalised words after the first: proper names the label requires."""
    words = re.findall(r"[\w'-]+", text)[1:]
    return {_stem(w.lower().removesuffix("'s")) for w in words if w[:1].isupper()} - _STOP


def similarity(stored: str, label: str) -> float:
    """0 when they cannot be the same fact, else the Jaccard similarity of their content."""
    if _negative(stored) != _negative(label) or _anchors(stored) != _anchors(label):
        return 0.0
    a, b = content(stored), content(label)
    if not _names(label) <= a or not a | b:
        return 0.0
    return len(a & b) / len(a | b)


def best_pairs(
    stored: Sequence[str], labels: Sequence[Label], threshold: float = SIMILAR
) -> list[tuple[int, int]]:
    """One-to-one (stored index, label index) pairs, the most similar first."""
    scored = sorted(
        (
            (max(similarity(text, alt) for alt in label), i, j)
            for i, text in enumerate(stored)
            for j, label in enumerate(labels)
        ),
        reverse=True,
    )
    used_stored: set[int] = set()
    used_labels: set[int] = set()
    pairs = []
    for value, i, j in scored:
        if value < threshold or i in used_stored or j in used_labels:
            continue
        used_stored.add(i)
        used_labels.add(j)
        pairs.append((i, j))
    return pairs


# -- running a conversation --------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    memories: list[tuple[str, str]]  # (owner, text)
    events: list[tuple[str, str]]  # (UPDATE/DELETE, the memory replaced or removed)
    empty_adds: int = 0  # adds that stored nothing
    silent_adds: list[str] = field(default_factory=list)  # ... and did not say why


def _ids(case: Case) -> dict[str, str]:
    return {k: f"{case.id}:{v}" for k, v in case.scope.items()}


def run_case(memory: Any, case: Case) -> Outcome:
    scope = _ids(case)
    outcome = Outcome([], [])
    for add in case.adds:
        result = memory.add(add["messages"], timestamp=add.get("timestamp"), **scope)
        for item in result["results"]:
            if item["event"] == "UPDATE":
                outcome.events.append(("UPDATE", item.get("previous_memory", "")))
            elif item["event"] == "DELETE":
                outcome.events.append(("DELETE", item["memory"]))
        if not result["results"]:
            outcome.empty_adds += 1
            if not result.get("warnings"):
                said = " | ".join(f"{m['role']}: {m['content']}" for m in add["messages"])
                outcome.silent_adds.append(said)
    for owner, key in (("user", "user_id"), ("agent", "agent_id")):
        if key in scope:
            found = memory.get_all(**{key: scope[key]})["results"]
            outcome.memories += [(owner, r["memory"]) for r in found]
    return outcome


# -- scoring ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    predicted: int = 0
    expected: int = 0
    matched: int = 0

    def add(self, other: Tally) -> None:
        self.predicted += other.predicted
        self.expected += other.expected
        self.matched += other.matched

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(slots=True)
class Scored:
    case: Case
    facts: Tally
    events: Tally
    misses: list[str]
    empty_adds: int
    silent_adds: list[str]


def score_case(case: Case, outcome: Outcome) -> Scored:
    misses: list[str] = []
    facts = Tally()
    for owner in ("user", "agent"):
        stored = [text for who, text in outcome.memories if who == owner]
        labels = case.expect.get(owner, [])
        optional = case.optional.get(owner, [])
        pairs = best_pairs(stored, labels)
        matched_stored = {i for i, _ in pairs}
        extra = [t for i, t in enumerate(stored) if i not in matched_stored]
        accepted = {i for i, _ in best_pairs(extra, optional)}
        extra = [t for i, t in enumerate(extra) if i not in accepted]
        facts.add(Tally(len(pairs) + len(extra), len(labels), len(pairs)))
        found = {j for _, j in pairs}
        misses += [f"missing {owner} memory: {label[0]!r}" for j, label in enumerate(labels)
                   if j not in found]  # fmt: skip
        misses += [f"unexpected {owner} memory: {text!r}" for text in extra]
    events = _score_events(case, outcome, misses)
    misses += [f"add stored nothing and said nothing: {said}" for said in outcome.silent_adds]
    return Scored(case, facts, events, misses, outcome.empty_adds, outcome.silent_adds)


def _score_events(case: Case, outcome: Outcome, misses: list[str]) -> Tally:
    free = list(case.events)
    matched = 0
    for kind, previous in outcome.events:
        fits = [e for e in free if kind in e.kinds and similarity(previous, e.previous) >= SIMILAR]
        if fits:
            free.remove(max(fits, key=lambda e: similarity(previous, e.previous)))
            matched += 1
        else:
            misses.append(f"unexpected {kind} of {previous!r}")
    misses += [f"missing {'/'.join(sorted(e.kinds))} of {e.previous!r}" for e in free]
    return Tally(len(outcome.events), len(case.events), matched)


# -- the whole set ---------------------------------------------------------------------------


def fixed_clock() -> Callable[[], datetime]:
    """START, then one second later at each call."""
    ticks = iter(range(10**9))
    return lambda: START + timedelta(seconds=next(ticks))


def _embedder(name: str, cache: Path) -> Any:
    if name == "minilm":
        from engram.providers.embedders.minilm import MiniLMEmbedder

        return MiniLMEmbedder(cache_dir=cache)
    from engram.providers.embedders.hashing import HashingEmbedder

    return HashingEmbedder(256)


def run(cases: Sequence[Case], embedder: str = "hashing") -> list[Scored]:
    """Every conversation through one offline `Memory` on a temporary SQLite store."""
    from engram import Memory, MemoryConfig
    from engram.store.sqlite.store import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "engram.db")
        embed = _embedder(embedder, Path(tmp) / "models")
        offline = MemoryConfig(llm_provider="offline")  # whatever keys the environment holds
        with Memory(offline, embedder=embed, store=store, clock=fixed_clock()) as memory:
            return [score_case(case, run_case(memory, case)) for case in cases]


def totals(scored: Sequence[Scored]) -> tuple[Tally, Tally, Tally]:
    """(memories and events together, memories, events)."""
    facts, events, both = Tally(), Tally(), Tally()
    for s in scored:
        facts.add(s.facts)
        events.add(s.events)
        both.add(s.facts)
        both.add(s.events)
    return both, facts, events


def by_category(scored: Sequence[Scored]) -> Iterator[tuple[str, list[Scored]]]:
    categories = dict.fromkeys(s.case.category for s in scored)
    for category in categories:
        yield category, [s for s in scored if s.case.category == category]


def _row(name: str, tally: Tally, cases: int | str = "") -> str:
    return (
        f"{name:<14} {cases!s:>5} {tally.precision:>9.3f} {tally.recall:>7.3f} {tally.f1:>7.3f}"
        f"   ({tally.matched}/{tally.predicted} stored, {tally.matched}/{tally.expected} labelled)"
    )


def report(scored: Sequence[Scored], *, verbose: bool = False) -> str:
    both, facts, events = totals(scored)
    lines = [f"{'':<14} {'cases':>5} {'precision':>9} {'recall':>7} {'F1':>7}"]
    lines.append(_row("overall", both, len(scored)))
    lines.append(_row("  memories", facts))
    lines.append(_row("  events", events))
    for category, group in by_category(scored):
        tally = Tally()
        for s in group:
            tally.add(s.facts)
            tally.add(s.events)
        lines.append(_row(category, tally, len(group)))
    empty = sum(s.empty_adds for s in scored)
    silent = sum(len(s.silent_adds) for s in scored)
    adds = sum(len(s.case.adds) for s in scored)
    lines.append(f"adds: {adds}; stored nothing: {empty}; of those without a warning: {silent}")
    if verbose:
        for s in scored:
            lines += [f"{s.case.id}: {miss}" for miss in s.misses]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--embedder", choices=("hashing", "minilm"), default="hashing")
    parser.add_argument("--category", help="only the conversations of this category")
    parser.add_argument("--verbose", action="store_true", help="list every miss")
    args = parser.parse_args(argv)
    cases = load_cases(args.data)
    if args.category:
        cases = [c for c in cases if c.category == args.category]
    print(f"{args.data.name}: {len(cases)} conversations, embedder {args.embedder}")
    print(report(run(cases, args.embedder), verbose=args.verbose))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
