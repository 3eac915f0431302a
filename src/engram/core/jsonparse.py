"""Find the JSON value in a model's answer: tolerant of `<think>` blocks, code fences and prose."""

from __future__ import annotations

import json
import re
from typing import Any

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


class JSONNotFoundError(ValueError):
    """No complete JSON object or array in the text; the message says what was wrong."""


def extract_json(text: str) -> Any:
    """The first complete JSON object (or array) in `text`.

    Tried in order: the text as it is; the inside of each code fence; the first `{` or `[` from
    which a complete value decodes. `<think>...</think>` blocks are dropped first."""
    if not isinstance(text, str) or not text.strip():
        raise JSONNotFoundError("the answer is empty")
    cleaned = _THINK.sub("", text).strip()
    candidates = [cleaned, *(m.group(1).strip() for m in _FENCE.finditer(cleaned))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[{\[]", cleaned):
        try:
            value, _ = decoder.raw_decode(cleaned, match.start())
        except ValueError:
            continue
        if isinstance(value, dict | list):
            return value
    if cleaned.count("{") > cleaned.count("}"):
        raise JSONNotFoundError("the JSON in the answer is truncated (unbalanced braces)")
    raise JSONNotFoundError(f"no JSON object in the answer: {cleaned[:120]!r}")
