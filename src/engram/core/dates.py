"""Resolve relative date phrases in a fact against the event date ("next month" -> "in April 2026").

Pure: the reference date is an argument, never the clock.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_PHRASE = re.compile(
    r"\b(?P<rel>(?:next|last|this) (?:week|month|year)|tomorrow|yesterday|today|tonight"
    r"|(?:next |this |on |last )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    r"|in (?:january|february|march|april|may|june|july|august|september|october|november"
    r"|december))\b",
    re.IGNORECASE,
)


def resolve_relative_dates(text: str, today: str) -> str:
    """`text` with relative date phrases replaced by absolute ones; unchanged without `today`."""
    if not today:
        return text
    try:
        ref = date.fromisoformat(today[:10])
    except ValueError:
        return text
    return _PHRASE.sub(lambda m: _absolute(m.group("rel").lower(), ref), text)


def _absolute(phrase: str, ref: date) -> str:
    simple = {
        "today": f"on {ref.isoformat()}",
        "tonight": f"on the night of {ref.isoformat()}",
        "tomorrow": f"on {(ref + timedelta(days=1)).isoformat()}",
        "yesterday": f"on {(ref - timedelta(days=1)).isoformat()}",
        "this week": f"in the week of {_monday(ref).isoformat()}",
        "next week": f"in the week of {(_monday(ref) + timedelta(days=7)).isoformat()}",
        "last week": f"in the week of {(_monday(ref) - timedelta(days=7)).isoformat()}",
        "this month": f"in {_month_name(ref.year, ref.month)}",
        "next month": f"in {_month_name(*_shift_month(ref, 1))}",
        "last month": f"in {_month_name(*_shift_month(ref, -1))}",
        "this year": f"in {ref.year}",
        "next year": f"in {ref.year + 1}",
        "last year": f"in {ref.year - 1}",
    }
    if phrase in simple:
        return simple[phrase]
    if phrase.startswith("in "):
        month = _MONTHS[phrase[3:]]
        year = ref.year if month >= ref.month else ref.year + 1
        return f"in {_month_name(year, month)}"
    return f"on {_weekday(phrase, ref).isoformat()}"


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _shift_month(day: date, months: int) -> tuple[int, int]:
    index = day.year * 12 + day.month - 1 + months
    return index // 12, index % 12 + 1


def _month_name(year: int, month: int) -> str:
    return f"{calendar.month_name[month]} {year}"


def _weekday(phrase: str, ref: date) -> date:
    words = phrase.split()
    target = _WEEKDAYS[words[-1]]
    modifier = words[0] if len(words) == 2 else "on"
    if modifier == "last":
        delta = (ref.weekday() - target) % 7 or 7
        return ref - timedelta(days=delta)
    if modifier == "next":
        return _monday(ref) + timedelta(days=7 + target)
    delta = (target - ref.weekday()) % 7  # "on Friday", "this Friday": the coming one
    return ref + timedelta(days=delta)
