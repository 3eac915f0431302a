"""Reading LoCoMo (../shared/locomo/dev.json, CC BY-NC 4.0: read in place, never copied)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[3] / "shared" / "locomo" / "dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


@dataclass(frozen=True)
class Turn:
    dia_id: str
    speaker: str
    text: str
    session: int
    when: str  # ISO 8601


@dataclass(frozen=True)
class Question:
    text: str
    answer: str
    evidence: tuple[str, ...]
    category: int


@dataclass(frozen=True)
class Conversation:
    index: int
    speakers: tuple[str, str]
    turns: list[Turn]
    questions: list[Question]


def session_date(text: str) -> str:
    """LoCoMo's "1:56 pm on 8 May, 2023" as ISO 8601 (UTC)."""
    return datetime.strptime(text, "%I:%M %p on %d %B, %Y").isoformat() + "+00:00"


def _text(turn: dict[str, Any]) -> str:
    text = str(turn["text"])
    caption = turn.get("blip_caption")
    return f"{text} [image: {caption}]" if caption else text


def _evidence(question: dict[str, Any]) -> tuple[str, ...]:
    """Evidence turn ids ("D8:6; D9:17" in one entry also happens)."""
    ids = (e.strip() for entry in question["evidence"] for e in re.split(r"[;,]", entry))
    return tuple(e for e in ids if e)


def load(path: Path = DATA, limit: int | None = None) -> list[Conversation]:
    out = []
    for index, item in enumerate(json.loads(path.read_text())[:limit]):
        conv = item["conversation"]
        turns = []
        keys = sorted(
            (k for k in conv if re.fullmatch(r"session_\d+", k)), key=lambda k: int(k[8:])
        )
        for key in keys:
            when = session_date(conv[f"{key}_date_time"])
            for turn in conv[key]:
                turns.append(Turn(turn["dia_id"], turn["speaker"], _text(turn), int(key[8:]), when))
        questions = [
            Question(q["question"], str(q.get("answer", "")), _evidence(q), int(q["category"]))
            for q in item["qa"]
            if int(q["category"]) in CATEGORIES and q.get("evidence")
        ]
        out.append(Conversation(index, (conv["speaker_a"], conv["speaker_b"]), turns, questions))
    return out
