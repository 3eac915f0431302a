"""Answer metrics of the LoCoMo QA protocol: token F1 and BLEU-1 on normalised text."""

from __future__ import annotations

import math
import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the|and)\b")


def normalize(text: str) -> list[str]:
    """Lowercase, no punctuation, no articles, split on whitespace (SQuAD-style)."""
    text = str(text).lower().translate(str.maketrans("", "", string.punctuation))
    return _ARTICLES.sub(" ", text).split()


def f1(prediction: str, answer: str) -> float:
    predicted, expected = normalize(prediction), normalize(answer)
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def bleu1(prediction: str, answer: str) -> float:
    """Clipped unigram precision with the brevity penalty."""
    predicted, expected = normalize(prediction), normalize(answer)
    if not predicted or not expected:
        return float(predicted == expected)
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    precision = overlap / len(predicted)
    penalty = (
        1.0 if len(predicted) > len(expected) else math.exp(1 - len(expected) / len(predicted))
    )
    return precision * penalty
