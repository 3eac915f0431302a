"""Score an extractor's facts against labelled expectations (precision and recall)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[\w-]+")
SIMILAR = 0.6  # token Jaccard at which two fact texts count as the same fact


@dataclass(frozen=True, slots=True)
class Scored:
    predicted: int
    expected: int
    matched: int

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0


def _tokens(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def similar(a: str, b: str) -> float:
    ta, tb = _tokens(a), _tokens(b)
    return len(ta & tb) / len(ta | tb) if ta | tb else 1.0


def score(
    predicted: Sequence[tuple[str, str, int | None]],
    expected: Sequence[tuple[str, str, int | None]],
) -> Scored:
    """One-to-one matching: same event, same target id, similar text."""
    free = list(expected)
    matched = 0
    for event, text, target in predicted:
        for candidate in free:
            if (
                candidate[0] == event
                and candidate[2] == target
                and similar(text, candidate[1]) >= SIMILAR
            ):
                free.remove(candidate)
                matched += 1
                break
    return Scored(len(predicted), len(expected), matched)
