"""The offline extractor: `offline_rules` statements reconciled against stored memories by
attribute key.

- a single-valued attribute (name, location, employer, job, diet, a favourite, a like/dislike of
  one thing) with a new value UPDATEs the stored fact; the same value is NONE;
- a multi-valued one (allergies, named relatives and pets, things owned or played) is NONE when
  stored already, else ADD;
- a retraction DELETEs the stored fact with the same attribute (and value), if there is one;
- anything else is ADD, or NONE when the same text is stored.
"""

from __future__ import annotations

from engram.pipeline.offline_rules import Key, extract_statements, fact_key
from engram.prompts.extract import Event, ExtractInput, ExtractOutput, Fact, Relation

_CATEGORY_BY_KEY = {
    "name": "personal_details", "location": "personal_details", "origin": "personal_details",
    "age": "personal_details", "employer": "professional_details",
    "job": "professional_details", "diet": "food", "allergy": "health", "named": "family",
    "pref": "user_preferences", "favorite": "user_preferences", "plays": "hobbies",
}  # fmt: skip


def offline_extract(data: ExtractInput) -> ExtractOutput:
    stored = [(i, fact_key(text), text.strip().lower()) for i, text in enumerate(data.existing)]
    used: set[int] = set()
    facts: list[Fact] = []
    for statement in extract_statements(data.messages, data.today):
        key = fact_key(statement.text)
        match = _match(stored, used, key, statement.text.lower(), retract=statement.negated)
        if statement.negated:
            if match is not None:
                used.add(match[0])
                facts.append(Fact(text=data.existing[match[0]], event="DELETE", id=match[0]))
            continue
        event: Event = "ADD"
        target = None
        if match is not None:
            target, same = match
            used.add(target)
            event = "NONE" if same else "UPDATE"
        facts.append(
            Fact(
                text=statement.text, event=event, id=target, categories=_categories(key, data),
                relations=_relations(key) if data.graph else [],
            )
        )  # fmt: skip
    return ExtractOutput(facts=facts)


_RELATIONSHIP = {
    "name": "name", "location": "lives_in", "origin": "is_from", "age": "age",
    "employer": "works_at", "job": "works_as", "diet": "diet", "allergy": "allergic_to",
    "plays": "plays", "has": "has", "does": "does",
}  # fmt: skip


def _relations(key: Key | None) -> list[Relation]:
    """The triple a recognised attribute states about the user."""
    if key is None:
        return []
    kind, _, detail = key.name.partition(":")
    if kind == "pref":
        verb = "likes" if key.value == "+" else "dislikes"
        return [Relation(source="user", relationship=verb, target=key.display)]
    if kind == "favorite":
        relationship = f"favorite_{detail.replace(' ', '_')}"
        return [Relation(source="user", relationship=relationship, target=key.display)]
    if kind == "named":  # "has a sister named Maria": a relation to the named one
        who, _, name = key.display.partition(" ")
        return (
            [Relation(source="user", relationship=f"has_{who.lower()}", target=name)]
            if name
            else []
        )
    if kind in _RELATIONSHIP:
        return [Relation(source="user", relationship=_RELATIONSHIP[kind], target=key.display)]
    return []


def _match(
    stored: list[tuple[int, Key | None, str]],
    used: set[int],
    key: Key | None,
    text: str,
    *,
    retract: bool,
) -> tuple[int, bool] | None:
    """(index, same value) of the stored fact this one is about, if any."""
    for index, stored_key, stored_text in stored:
        if index in used:
            continue
        if stored_text == text:
            return index, True
        if key is None or stored_key is None or stored_key.name != key.name:
            continue
        if retract:
            if not key.single or stored_key.value == key.value or key.name.startswith("pref:"):
                return index, True
            continue
        return index, (stored_key.value == key.value or not key.single)
    return None


def _categories(key: Key | None, data: ExtractInput) -> list[str]:
    if key is None:
        return []
    category = _CATEGORY_BY_KEY.get(key.name.split(":", 1)[0])
    return [category] if category in data.categories else []
