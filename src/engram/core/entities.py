"""Graph entities and relationships, named the same way by every backend: normalised names
(resolution by name and acronym), normalised relationships, and which relationships hold one
value at a time (a new value ends the previous one, and is a profile fact)."""

from __future__ import annotations

import re

FUNCTIONAL = frozenset(
    {
        "lives_in",
        "works_at",
        "works_as",
        "name",
        "age",
        "diet",
        "is_from",
        "married_to",
        "birthday",
        "email",
        "phone",
        "job_title",
    }
)
NAME_SIMILARITY = 0.9
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")
_NON_WORD = re.compile(r"[^\w\s-]+")


def functional(relationship: str) -> bool:
    """A relationship with one value at a time: a new value ends the previous one."""
    return relationship in FUNCTIONAL or relationship.startswith("favorite_")


def norm_name(name: str) -> str:
    """An entity's name for resolution: "The Alps" and "alps" are one entity."""
    text = _NON_WORD.sub(" ", name.strip().lower())
    return " ".join(_ARTICLE.sub("", text).split())


def norm_relationship(relationship: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", relationship.strip().lower()).strip("_")


def same_by_initials(a: str, b: str) -> bool:
    """One normalised name is the acronym of the other ("nyc", "new york city")."""
    return a.replace(" ", "") == initials(b) or b.replace(" ", "") == initials(a)


def initials(norm: str) -> str:
    words = norm.split()
    return "".join(w[0] for w in words) if len(words) > 1 else ""
