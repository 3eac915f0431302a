"""Turn an extractor's answer into changes, with the rules that keep data safe.

- ADD stores a new memory.
- UPDATE of existing memory `id` replaces its text (the old text stays in history); an UPDATE that
  names no valid id becomes an ADD, so the fact is not lost; an UPDATE of an immutable memory
  becomes an ADD, so the immutable one is untouched.
- DELETE of `id` removes it (history keeps it); immutable memories are never deleted this way.
- NONE changes nothing. Each existing id is changed at most once.
Everything that is not applied as asked is reported in `warnings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol


class FactLike(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def id(self) -> int | None: ...
    @property
    def categories(self) -> list[str]: ...
    @property
    def about(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Existing:
    text: str
    immutable: bool = False


@dataclass(slots=True)
class Change:
    kind: Literal["ADD", "UPDATE", "DELETE"]
    text: str
    target: int | None = None  # index into the existing memories shown to the extractor
    categories: list[str] = field(default_factory=list)
    about: str = "user"
    relations: list[tuple[str, str, str]] = field(default_factory=list)
    speaker: str | None = None  # who said it, when the extractor knows (a new memory's actor_id)


def _triples(fact: FactLike) -> list[tuple[str, str, str]]:
    return [(r.source, r.relationship, r.target) for r in getattr(fact, "relations", [])]


def reconcile(
    facts: Sequence[FactLike],
    existing: Sequence[Existing],
    categories: Sequence[str],
    touched: set[int] | None = None,
) -> tuple[list[Change], list[str]]:
    """`touched`: the existing memories changed already (by an earlier call for another owner's
    facts); it is updated, so that each memory changes at most once across calls."""
    allowed = {c.lower(): c for c in categories}
    changes: list[Change] = []
    warnings: list[str] = []
    touched = set() if touched is None else touched
    added: set[str] = set()
    for fact in facts:
        text = " ".join(fact.text.split())
        cats = list(
            dict.fromkeys(allowed[c.lower()] for c in fact.categories if c.lower() in allowed)
        )
        event = fact.event
        target = fact.id if fact.id is not None and 0 <= fact.id < len(existing) else None
        if event == "NONE" or (not text and event != "DELETE"):
            continue
        if event in ("UPDATE", "DELETE") and target is not None and target in touched:
            if event == "DELETE":
                warnings.append(f"DELETE of memory {target} ignored: it was already changed")
                continue
            warnings.append(f"UPDATE of memory {target} stored as a new memory: it was changed")
            event, target = "ADD", None
        if event == "DELETE":
            if target is None:
                warnings.append(f"DELETE of {fact.id!r} ignored: no such existing memory")
            elif existing[target].immutable:
                warnings.append(f"DELETE of memory {target} ignored: it is immutable")
            else:
                touched.add(target)
                changes.append(Change("DELETE", existing[target].text, target, cats, fact.about))
            continue
        if event == "UPDATE" and target is not None and not existing[target].immutable:
            if text != existing[target].text:
                touched.add(target)
                changes.append(Change("UPDATE", text, target, cats, fact.about, _triples(fact)))
            continue
        if event == "UPDATE":
            reason = "it is immutable" if target is not None else "no such existing memory"
            warnings.append(f"UPDATE of {fact.id!r} stored as a new memory: {reason}")
        if text.lower() not in added:
            added.add(text.lower())
            speaker = getattr(fact, "speaker", None)
            changes.append(Change("ADD", text, None, cats, fact.about, _triples(fact), speaker))
    return changes, warnings
