"""Resolve relative date phrases in a fact against the event date ("next month" -> "in April 2026").

Pure: the reference date is an argument, never the clock. A fact about the past (`past=True`,
"Went to a concert on Saturday") reads a weekday, a month or "this weekend" as the one before the
event date; otherwise as the coming one; with `past=None` (either: "booked the gym in January")
a month is the nearest, before or after.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
           "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
           "a couple of": 2, "a few": 3}  # fmt: skip
_COUNT = r"(?:\d{1,2}|a couple of|a few|" + "|".join(k for k in _COUNTS if " " not in k) + ")"
_UNIT = r"(?:day|week|month|year)s?"
_PHRASE = re.compile(
    r"\b(?P<rel>(?:next|last|this) (?:week|month|year|weekend)|the (?:week|weekend) after next"
    r"|tomorrow|yesterday|today|tonight|last night|this (?:morning|afternoon|evening)"
    rf"|in {_COUNT} {_UNIT}|{_COUNT} {_UNIT} ago"
    r"|(?<!every )(?<!each )(?<!\ba )(?<!\ban )(?<!\bthe )(?<!\bmy )(?<!\bour )"  # "a Sunday X"
    r"(?:next |this |on |last )?"
    r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    r"|in (?:january|february|march|april|may|june|july|august|september|october|november"
    r"|december))\b",
    re.IGNORECASE,
)


def resolve_relative_dates(text: str, today: str, *, past: bool | None = False) -> str:
    """`text` with relative date phrases replaced by absolute ones; unchanged without `today`."""
    if not today:
        return text
    try:
        ref = date.fromisoformat(today[:10])
    except ValueError:
        return text
    return _PHRASE.sub(lambda m: _resolved(m, ref, past), text)


def _resolved(match: re.Match[str], ref: date, past: bool | None) -> str:
    """One phrase; after a preposition its own "on" is dropped ("for Friday" -> "for
    2026-03-13", not "for on ..."), and after "since" it is gone by ("since Tuesday" ->
    "since 2026-01-20", not the coming Tuesday)."""
    phrase = match.group("rel").lower()
    before = _PREPOSITION.search(match.string[: match.start()])
    if before is None:
        return _absolute(phrase, ref, past)
    since = before.group(1).lower() == "since"
    absolute = _absolute(phrase, ref, True if since else past)
    return re.sub(r"^(?:on|in) " if not since else r"^(?:on|in) (?:the week of )?", "", absolute)


_PREPOSITION = re.compile(r"\b(since|for|by|until|till|from|before|after)\s+$", re.I)


def _absolute(phrase: str, ref: date, past: bool | None) -> str:
    simple = {
        "today": f"on {ref.isoformat()}",
        "tonight": f"on the night of {ref.isoformat()}",
        "tomorrow": f"on {(ref + timedelta(days=1)).isoformat()}",
        "yesterday": f"on {(ref - timedelta(days=1)).isoformat()}",
        "last night": f"on the night of {(ref - timedelta(days=1)).isoformat()}",
        "this morning": f"on {ref.isoformat()}",
        "this afternoon": f"on {ref.isoformat()}",
        "this evening": f"on the evening of {ref.isoformat()}",
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
    if phrase == "the week after next":
        return f"in the week of {(_monday(ref) + timedelta(days=14)).isoformat()}"
    if phrase == "the weekend after next":
        return f"on the weekend of {(_weekend('next', ref, past) + timedelta(days=7)).isoformat()}"
    if phrase.endswith("weekend"):
        saturday = _weekend(phrase.split(maxsplit=1)[0], ref, past)
        return f"on the weekend of {saturday.isoformat()}"
    if phrase.endswith("ago") or re.fullmatch(rf"in {_COUNT} {_UNIT}", phrase):
        return _counted(phrase, ref)
    if phrase.startswith("in "):
        month = _MONTHS[phrase[3:]]
        if past is None:  # either way: the nearest ("booked the gym in January", said in March)
            past = (ref.month - month) % 12 < (month - ref.month) % 12
        if past:
            return f"in {_month_name(ref.year if month <= ref.month else ref.year - 1, month)}"
        return f"in {_month_name(ref.year if month >= ref.month else ref.year + 1, month)}"
    return f"on {_weekday(phrase, ref, past).isoformat()}"


def _counted(phrase: str, ref: date) -> str:
    """ "in two weeks" (ahead) or "two weeks ago" (back) from the event date."""
    words = phrase.removeprefix("in ").removesuffix(" ago").split()
    unit = words[-1].removesuffix("s")
    count_text = " ".join(words[:-1])
    count = int(count_text) if count_text.isdigit() else _COUNTS[count_text]
    sign = -1 if phrase.endswith("ago") else 1
    if unit == "year":
        return f"in {ref.year + sign * count}"
    if unit == "month":
        return f"in {_month_name(*_shift_month(ref, sign * count))}"
    if unit == "week":
        return f"around {(ref + timedelta(days=sign * 7 * count)).isoformat()}"
    return f"on {(ref + timedelta(days=sign * count)).isoformat()}"


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _weekend(modifier: str, ref: date, past: bool | None) -> date:
    """The Saturday of "this", "next" or "last" weekend."""
    saturday = _monday(ref) + timedelta(days=5)
    if modifier == "next":
        return saturday + timedelta(days=7)
    if modifier == "last" or (past and saturday > ref):
        return saturday - timedelta(days=7)
    return saturday


def _shift_month(day: date, months: int) -> tuple[int, int]:
    index = day.year * 12 + day.month - 1 + months
    return index // 12, index % 12 + 1


def _month_name(year: int, month: int) -> str:
    return f"{calendar.month_name[month]} {year}"


def _weekday(phrase: str, ref: date, past: bool | None) -> date:
    words = phrase.split()
    target = _WEEKDAYS[words[-1]]
    modifier = words[0] if len(words) == 2 else "on"
    if modifier == "last" or (past and modifier in ("on", "this")):
        delta = (ref.weekday() - target) % 7 or (7 if modifier == "last" else 0)
        return ref - timedelta(days=delta)
    if modifier == "next":
        return _monday(ref) + timedelta(days=7 + target)
    delta = (target - ref.weekday()) % 7  # "on Friday", "this Friday": the coming one
    return ref + timedelta(days=delta)
