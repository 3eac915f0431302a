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
_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^i\s*'?\s*m\s+", re.IGNORECASE), "Is "),
    (re.compile(r"^i am\s+", re.IGNORECASE), "Is "),
    (re.compile(r"^i\s*'?\s*ve\s+", re.IGNORECASE), "Has "),
    (re.compile(r"^i have\s+", re.IGNORECASE), "Has "),
    (
        re.compile(
            r"^i\s+(really\s+)?(love|like|hate|prefer|enjoy|dislike|want|need|live|work|own)"
            r"\s+",
            re.IGNORECASE,
        ),
        "",
    ),
    (re.compile(r"^my\s+", re.IGNORECASE), ""),
]
_VERB3 = {"love": "Loves", "like": "Likes", "hate": "Hates", "prefer": "Prefers", "enjoy": "Enjoys",
          "dislike": "Dislikes", "want": "Wants", "need": "Needs", "live": "Lives",
          "work": "Works", "own": "Owns"}  # fmt: skip


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
    if len(text.split()) < 3:
        return None
    match = _REWRITES[4][0].match(text)
    if match:
        verb = match.group(2).lower()
        return f"{_VERB3[verb]} {text[match.end() :]}".strip()
    for pattern, replacement in _REWRITES:
        if pattern.match(text):
            rest = pattern.sub(replacement, text, count=1)
            return rest[:1].upper() + rest[1:]
    return text[:1].upper() + text[1:]
