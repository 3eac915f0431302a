"""A small rule-based fact extractor, used for `add(infer=True)` until an LLM is configured.

It keeps the user's statements (not questions, greetings or filler), one fact per sentence, and
rewrites the most common first-person openings into third-person facts ("I love hiking" ->
"Loves hiking"). Reconciliation against stored memories happens in the add pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from engram.core.messages import Message

_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_GREETING = re.compile(
    r"^(hi|hello|hey|thanks|thank you|ok|okay|sure|bye|goodbye|good (morning|night|evening))\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"^(?:i\s*'?\s*m|i am|my name is|call me)\s+([A-Z][\w-]+)$", re.IGNORECASE)
_VERB = re.compile(
    r"^i\s+(?:really\s+)?(love|like|hate|prefer|enjoy|dislike|want|need|live|work|own)\s+",
    re.IGNORECASE,
)
_THIRD_PERSON = {"love": "Loves", "like": "Likes", "hate": "Hates", "prefer": "Prefers",
                 "enjoy": "Enjoys", "dislike": "Dislikes", "want": "Wants", "need": "Needs",
                 "live": "Lives", "work": "Works", "own": "Owns"}  # fmt: skip
_OPENINGS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:i\s*'?\s*m|i am)\s+", re.IGNORECASE), "Is "),
    (re.compile(r"^(?:i\s*'?\s*ve|i have)\s+", re.IGNORECASE), "Has "),
    (re.compile(r"^my\s+", re.IGNORECASE), ""),
]


def extract_facts(messages: Sequence[Message]) -> list[str]:
    """Facts from the user's messages (from every non-system message if none is the user's)."""
    sources = [m for m in messages if m.role == "user"] or [
        m for m in messages if m.role != "system"
    ]
    facts: list[str] = []
    for message in sources:
        for sentence in _SENTENCE.split(message.content):
            fact = _fact(sentence.strip())
            if fact and fact.lower() not in (f.lower() for f in facts):
                facts.append(fact)
    return facts


def _fact(sentence: str) -> str | None:
    text = sentence.strip(" \t\"'").rstrip(".!;")
    if not text or text.endswith("?") or (_GREETING.match(text) and len(text.split()) <= 4):
        return None
    name = _NAME.match(text)
    if name and name.group(1)[0].isupper():
        return f"Name is {name.group(1)}"
    if len(text.split()) < 3:
        return None
    verb = _VERB.match(text)
    if verb:
        return f"{_THIRD_PERSON[verb.group(1).lower()]} {text[verb.end() :]}".strip()
    for pattern, replacement in _OPENINGS:
        if pattern.match(text):
            rest = pattern.sub(replacement, text, count=1)
            return rest[:1].upper() + rest[1:]
    return text[:1].upper() + text[1:]
