"""The offline extractor: `offline_rules` statements reconciled against the stored memories of
whom they are about (the user's, or the agent's).

- a single-valued attribute (name, location, employer, job, diet, relationship status, a
  favourite, a like/dislike of one thing) with a new value UPDATEs the stored fact; the same value
  is NONE; a multi-valued one (allergies, named relatives and pets, things owned or played) is NONE
  when stored already, else ADD;
- a fact that contradicts a stored one otherwise (`offline_keys.conflicts`: the opposite, a diet
  against a food, another choice between the same alternatives) UPDATEs it; with a diet, further
  contradicted foods are DELETEd;
- an event that ends a stored fact ("Sold my motorbike") UPDATEs it, so its history shows both;
- a correction ("X, not Y") UPDATEs the stored fact that says Y (with Y replaced by X when the
  clause states nothing else);
- a retraction DELETEs the stored fact it states: the same attribute (and value), the same text,
  or a fact with the same verb holding all its words ("Plays in the orchestra" retracts "Plays the
  violin in an orchestra");
- anything else is ADD, or NONE when the same text is stored.

When nothing can be stored, `ExtractOutput.notes` says why: what was skipped and for what reason,
or what there was nothing to retract or correct.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from engram.core.messages import Message, one_speaker
from engram.pipeline.offline_keep import third_person_sentence
from engram.pipeline.offline_keys import anchors, conflicts, content, fact_key, stem, words
from engram.pipeline.offline_own_name import in_first_person, same_name
from engram.pipeline.offline_rewrite import with_speaker, without_speaker
from engram.pipeline.offline_rules import About, Extraction, Key, Statement, extract_statements
from engram.prompts.extract import Event, ExtractInput, ExtractOutput, Fact, Relation

LLM_HINT = "configure an LLM for full extraction"
_SHOWN_SKIPS = 3

_CATEGORY_BY_KEY = {
    "name": "personal_details", "location": "personal_details", "origin": "personal_details",
    "age": "personal_details", "employer": "professional_details",
    "job": "professional_details", "diet": "food", "allergy": "health", "named": "family",
    "pref": "user_preferences", "favorite": "user_preferences", "plays": "hobbies",
    "status": "personal_details",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Stored:
    index: int
    text: str  # without its speaker's name: "Lives in Oslo" for "Mel lives in Oslo"
    key: Key | None
    about: About
    speaker: str | None
    shown: str  # as stored


def offline_extract(data: ExtractInput) -> ExtractOutput:
    abouts, speakers = data.existing_about or [], data.existing_speakers or []
    stored = []
    for i, shown in enumerate(data.existing):
        speaker = speakers[i] if i < len(speakers) else None
        text = without_speaker(shown, speaker)
        about: About = "agent" if i < len(abouts) and abouts[i] == "agent" else "user"
        stored.append(_Stored(i, text, fact_key(text), about, speaker, shown))
    extraction = extract_statements(
        _own_name_as_i(data), data.today, speakers=_speakers(data),
        existing=[s.text for s in stored], recent=data.recent,
    )  # fmt: skip
    reconciler = _Reconciler(stored, data)
    for statement in extraction.statements:
        reconciler.take(statement)
    output = ExtractOutput(facts=reconciler.facts)
    output.notes.extend(reconciler.notes)
    if not extraction.statements:
        output.notes.append(_nothing_found(extraction, data))
    return output


def _own_name_as_i(data: ExtractInput) -> list[Message]:
    """The user's messages with the scope's user, named as a sentence's subject, in the first
    person ("Ana is vegan" in user "ana"'s scope reads "I am vegan"): the rules read statements
    about the speaker in the first person."""
    user = data.user_id
    if not user or data.agent_scope:
        return data.messages
    return [
        replace(m, content=in_first_person(m.content, user))
        if m.role == "user" and (m.name is None or same_name(m.name, user)) else m
        for m in data.messages
    ]  # fmt: skip


def _speakers(data: ExtractInput) -> dict[str, About]:
    """Whose statements become memories: the user's; with an agent too, the assistant's about
    itself; for an agent alone, the assistant's (the user's when the assistant says nothing)."""
    if data.with_agent:
        return {"user": "user", "assistant": "agent"}
    if data.agent_scope:
        if any(m.role == "assistant" for m in data.messages):
            return {"assistant": "agent"}
        return {"user": "agent"}
    return {"user": "user"}


class _Reconciler:
    def __init__(self, stored: list[_Stored], data: ExtractInput) -> None:
        self.stored, self.data = stored, data
        self.used: set[int] = set()
        self.facts: list[Fact] = []
        self.notes: list[str] = []

    def own(self, statement: Statement) -> list[_Stored]:
        """The stored facts of whom the statement is about, said by the same speaker; a speaker
        named as the scope's user ("Alice" in `user_id="alice"`) is the user, whose facts said
        without a name are theirs too."""
        speakers = {statement.speaker}
        if statement.speaker and same_name(statement.speaker, self.data.user_id):
            speakers.add(None)
        return [
            s for s in self.stored
            if s.about == statement.about and s.speaker in speakers and s.index not in self.used
        ]  # fmt: skip

    def emit(self, statement: Statement, event: Event, text: str, target: _Stored | None) -> None:
        key = fact_key(text)
        if target is not None:
            self.used.add(target.index)
        if event == "DELETE" and target is not None:
            text = target.shown
        elif statement.speaker and not statement.kept:
            text = with_speaker(text, statement.speaker, owned=statement.owned)
            text = third_person_sentence(text, statement.speaker)  # "... my family" -> "Mel's"
        graph = self.data.graph and event != "DELETE"
        fact = Fact(
            text=text, event=event, id=target.index if target else None,
            categories=_categories(key, self.data), about=statement.about,
            relations=_relations(key, statement.about) if graph else [],
        )  # fmt: skip
        fact.speaker = statement.speaker
        self.facts.append(fact)

    def take(self, statement: Statement) -> None:
        own = self.own(statement)
        if statement.negated:
            self._retract(statement, own)
        elif not statement.text and statement.corrects is not None:
            self._correct(statement, own, statement.corrects)
        else:
            self._state(statement, own)

    def _retract(self, statement: Statement, own: list[_Stored]) -> None:
        target = _retracted(statement.text, own)
        if target is None:
            self.notes.append(f"nothing to retract: no stored memory says {statement.text!r}")
        else:
            self.emit(statement, "DELETE", target.text, target)

    def _correct(self, statement: Statement, own: list[_Stored], fix: tuple[str, str]) -> None:
        new, old = fix
        target = _mentioning(own, old)
        if target is None:
            self.notes.append(f"nothing to correct: no stored memory mentions {old!r}")
            return
        pattern = re.compile(rf"\b{re.escape(old)}\b", re.I)
        self.emit(statement, "UPDATE", pattern.sub(lambda _: new, target.text, count=1), target)

    def _state(self, statement: Statement, own: list[_Stored]) -> None:
        key = fact_key(statement.text)
        same = next((s for s in own if s.text.strip().lower() == statement.text.lower()), None)
        if same is not None:
            self.emit(statement, "NONE", statement.text, same)
            return
        found = _same_key(key, own)
        if found is not None:
            self.emit(statement, "NONE" if found[1] else "UPDATE", statement.text, found[0])
            return
        contradicted = [s for s in own if conflicts(statement.text, s.text)]
        target = (
            _replaced(statement.replaces, own)
            or (contradicted.pop(0) if contradicted else None)
            or (_mentioning(own, statement.corrects[1]) if statement.corrects else None)
        )
        text = statement.text
        if target is None and statement.revises and (revised := _revised(text, own)):
            target, text = revised
        self.emit(statement, "ADD" if target is None else "UPDATE", text, target)
        if key is not None and key.name == "diet":
            for other in contradicted:
                if other.index not in self.used:
                    self.emit(statement, "DELETE", other.text, other)


def _same_key(key: Key | None, own: Sequence[_Stored]) -> tuple[_Stored, bool] | None:
    """The stored fact setting the same attribute, and whether it holds the same value."""
    if key is None:
        return None
    for stored in own:
        if stored.key is not None and stored.key.name == key.name:
            return stored, stored.key.value == key.value or not key.single
    return None


def _retracted(text: str, own: Sequence[_Stored]) -> _Stored | None:
    """The stored fact a retraction takes back."""
    key = fact_key(text)
    for stored in own:
        if stored.text.strip().lower() == text.lower():
            return stored
        if key is not None and stored.key is not None and stored.key.name == key.name:
            prefs = key.name.startswith("pref:")
            if not key.single or stored.key.value == key.value or prefs:
                return stored
    said = content(text)
    verb = stem(words(text)[0]) if words(text) else ""
    for stored in own:
        held = content(stored.text)
        first = words(stored.text)[:1]
        if said and said <= held and first and stem(first[0]) == verb:
            return stored
    return None


def _replaced(replaces: Sequence[str], own: Sequence[_Stored]) -> _Stored | None:
    """The stored fact an ending event names: by attribute ("key:employer"), or the one holding
    all its words with the fewest others ("car": "Has a car" before "Likes car racing")."""
    if not replaces:
        return None
    if replaces[0].startswith("key:"):
        name = replaces[0][4:]
        return next((s for s in own if s.key is not None and s.key.name == name), None)
    wanted = {stem(w.lower()) for w in replaces}
    holding = [s for s in own if wanted <= {stem(w) for w in words(s.text)}]
    return min(holding, key=lambda s: len(content(s.text)), default=None)


_WHEN = re.compile(
    r"\b(?:on|at|in|around|by|until|from)\s+(?:the (?:week|weekend|night) of )?"
    r"(?:\d{4}-\d{2}-\d{2}|[A-Z][a-z]+ \d{4}|\d{1,2}(?::\d{2})?\s*(?:am|pm)|\d{4})(?:\s*(?:am|pm))?"
)


def _revised(text: str, own: Sequence[_Stored]) -> tuple[_Stored, str] | None:
    """The stored fact a correction restates with another date or time ("the flight is on
    Saturday" after "Flight to Oslo is on Friday"), and its text with the new one."""
    said, when = content(text) - anchors(text), anchors(text)
    for stored in own:
        held = content(stored.text) - anchors(stored.text)
        if when and anchors(stored.text) and when != anchors(stored.text) and said <= held:
            new, old = _WHEN.search(text), _WHEN.search(stored.text)
            if new and old:
                return stored, stored.text[: old.start()] + new.group(0) + stored.text[old.end() :]
            return stored, text
    return None


def _mentioning(own: Sequence[_Stored], said: str) -> _Stored | None:
    pattern = re.compile(rf"\b{re.escape(said)}\b", re.I)
    return next((s for s in own if pattern.search(s.text)), None)


def _nothing_found(extraction: Extraction, data: ExtractInput) -> str:
    whom = "the agent" if data.agent_scope else "the user"
    whom = "the user or the agent" if data.with_agent else whom
    speaker = one_speaker(data.messages)
    if speaker and not data.agent_scope:
        whom = speaker  # the one speaker of a named turn: "about Mel"
    skipped = [s for s in extraction.skipped if s.text]
    said = "; ".join(f"{s.text!r} ({s.reason})" for s in skipped[:_SHOWN_SKIPS])
    if len(skipped) > _SHOWN_SKIPS:
        said += f"; and {len(skipped) - _SHOWN_SKIPS} more"
    note = f"the offline extractor found no statement about {whom} to remember"
    note += f" in: {said}" if said else ""
    if not data.agent_scope and any(m.role == "assistant" for m in extraction.unread):
        note += "; the assistant's statements are remembered only with an agent_id"
    return f"{note}; {LLM_HINT}"


_RELATIONSHIP = {
    "name": "name", "location": "lives_in", "origin": "is_from", "age": "age",
    "employer": "works_at", "job": "works_as", "diet": "diet", "allergy": "allergic_to",
    "plays": "plays", "has": "has", "does": "does", "status": "relationship_status",
}  # fmt: skip


def _relations(key: Key | None, about: str) -> list[Relation]:
    """The triple a recognised attribute states about the user (or the agent)."""
    if key is None:
        return []
    kind, _, detail = key.name.partition(":")
    if kind == "pref":
        verb = "likes" if key.value == "+" else "dislikes"
        return [Relation(source=about, relationship=verb, target=key.display)]
    if kind == "favorite":
        relationship = f"favorite_{detail.replace(' ', '_')}"
        return [Relation(source=about, relationship=relationship, target=key.display)]
    if kind == "named":  # "has a sister named Maria": a relation to the named one
        who, _, name = key.display.partition(" ")
        return (
            [Relation(source=about, relationship=f"has_{who.lower()}", target=name)] if name else []
        )
    if kind in _RELATIONSHIP:
        return [Relation(source=about, relationship=_RELATIONSHIP[kind], target=key.display)]
    return []


def _categories(key: Key | None, data: ExtractInput) -> list[str]:
    if key is None:
        return []
    category = _CATEGORY_BY_KEY.get(key.name.split(":", 1)[0])
    return [category] if category in data.categories else []
