"""The period a search query asks about, for the `time` signal of search (issue 18).

"What did Nate cook on 9 November, 2022?", "Where was Tim in the week before 16 November 2023?",
"What did I do last week?": a question with a date or a period is answered by what happened
then. `query_period` reads the period (`Period`): a day ("on 1 May, 2022", "May 1st 2022",
"2022-05-01"), a range ("between August 11 and August 15 2023"), a span before or after a day
("the week before 16 November 2023", "the Sunday before October 25, 2022"), part of a month
("the second week of November", "the first half of September 2022", "early August 2023"), a
month ("in January 2022", "in May": that month of any year), a year ("in 2023"), or a relative
phrase read against today ("yesterday", "last week", "this month", "three days ago").

A memory's place in it (`Period.score`) is that of its event time (`created_at`, the add's
`timestamp`): 1 inside, `TOLD_AFTER_SCORE` in the `TOLD_AFTER` days after it (what happened is
often told a few days later: "I watched it last night"), 0 otherwise. Pure: today is an
argument, never the clock.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

TOLD_AFTER = timedelta(days=7)
TOLD_AFTER_SCORE = 0.5

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS |= {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_MONTHS["sept"] = 9
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_MONTH = r"(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"


def _date(p: str) -> str:
    """A day with or without its year: "1 May, 2022", "May 1st 2022", "December 1,2023", "May
    1", "2022-05-01"; its groups named with the prefix `p`."""
    return (
        rf"(?:(?P<{p}d1>{_DAY})(?: of)? (?P<{p}m1>{_MONTH})(?:,? ?(?P<{p}y1>{_YEAR}))?"
        rf"|(?P<{p}m2>{_MONTH}) (?P<{p}d2>{_DAY})(?:,? ?(?P<{p}y2>{_YEAR}))?"
        rf"|(?P<{p}iso>{_YEAR}-\d{{2}}-\d{{2}}))"
    )


_ANY_DATE = _date("a")
_SPANS = {"day": 1, "week": 7, "weekend": 3, "month": 31, "fortnight": 14, "year": 365}
_ORDINAL = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3,
            "4th": 3, "last": 4, "final": 4}  # fmt: skip


_HINT = re.compile(
    rf"\d|\b(?:{_MONTH}|{'|'.join(_WEEKDAYS)}|today|tonight|yesterday|ago|(?:day|week|weekend|"
    r"fortnight|month|year)s?)\b"
)
# Month names that are also words: a month only when written with a capital ("in May", not "may
# be"; "March", not "march").
_WORDS_TOO = re.compile(r"\b(?:may|march)\b")


@dataclass(frozen=True, slots=True)
class Period:
    """From `first` to `last`, both included; `any_year`: those days of every year ("in May")."""

    first: date
    last: date
    any_year: bool = False

    def score(self, day: date) -> float:
        """1 for a day in the period, `TOLD_AFTER_SCORE` within `TOLD_AFTER` after it, else 0."""
        if self.any_year:  # that day in the period's year, or the one before or after it
            years = {self.first.year - 1, self.first.year, self.last.year, self.last.year + 1}
            shifted = [d for year in years if (d := _in_year(day, year)) is not None]
            return max((self._score(d) for d in shifted), default=0.0)
        return self._score(day)

    def _score(self, day: date) -> float:
        if self.first <= day <= self.last:
            return 1.0
        return TOLD_AFTER_SCORE if self.last < day <= self.last + TOLD_AFTER else 0.0


def query_period(query: str, today: date) -> Period | None:
    """The period the query asks about, or None when it names none."""
    text = _WORDS_TOO.sub(lambda m: m.group(0) + "_", query)  # "may" the verb is no month
    text = " ".join(text.lower().replace("\u2019", "'").split())
    if not _HINT.search(text):  # most queries name no time: one scan tells
        return None
    for reader in (_between, _around, _part_of_month, _one_day, _month, _year, _relative):
        found = reader(text, today)
        if found is not None:
            return found
    return None


def _in_year(day: date, year: int) -> date | None:
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February
        return None


def _day_of(match: re.Match[str], prefix: str, year: int | None = None) -> tuple[date, bool] | None:
    """The day a `_date` match names, and whether its year was said (or given as `year`)."""
    groups = {k[len(prefix) :]: v for k, v in match.groupdict().items() if k.startswith(prefix)}
    try:
        if groups["iso"]:
            return date.fromisoformat(groups["iso"]), True
        side = "1" if groups["m1"] else "2"
        day, month, said = groups["d" + side] or "", groups["m" + side] or "", groups["y" + side]
        known = said is not None or year is not None
        number, which = int(re.sub(r"\D", "", day)), _MONTHS[month.rstrip(".")]
        return date(int(said) if said else year or 2000, which, number), known
    except (ValueError, KeyError):
        return None


def _between(text: str, today: date) -> Period | None:
    match = re.search(
        rf"\b(?:between|from) {_date('a')} (?:and|to|until|through|-) "
        rf"{_date('b')}",
        text,
    )
    if match is None:
        return None
    end = _day_of(match, "b")
    if end is None:
        return None
    start = _day_of(match, "a", end[0].year if end[1] else None)
    if start is None:
        return None
    first = start[0]
    if first > end[0] and not (match.group("ay1") or match.group("ay2")):
        first = _in_year(first, first.year - 1) or first  # "Dec 28 to Jan 3 2024": the year before
    if first > end[0]:
        return None
    return Period(first, end[0], any_year=not end[1])


def _around(text: str, today: date) -> Period | None:
    """ "the week before 16 November 2023", "the Sunday before October 25, 2022", "the day
    after May 3"."""
    unit = "|".join([*_SPANS, *_WEEKDAYS])
    match = re.search(rf"\b(?:the )?({unit}) (before|after|prior to) {_ANY_DATE}", text)
    if match is None:
        return None
    found = _day_of(match, "a")
    if found is None:
        return None
    day, known = found
    what, after = match.group(1), match.group(2) == "after"
    if what in _WEEKDAYS:
        step = 1 if after else -1
        moved = day + timedelta(days=step)
        while moved.weekday() != _WEEKDAYS[what]:
            moved += timedelta(days=step)
        return Period(moved, moved, any_year=not known)
    span = timedelta(days=_SPANS[what])
    if after:
        return Period(day + timedelta(days=1), day + span, any_year=not known)
    return Period(day - span, day - timedelta(days=1), any_year=not known)


def _part_of_month(text: str, today: date) -> Period | None:
    """ "the second week of November", "the first half of September 2022", "early August"."""
    match = re.search(
        rf"\b(?:(?P<nth>{'|'.join(_ORDINAL)}) (?P<part>week|half) of|(?P<when>early|mid|late)"
        rf"(?:-| in | of )?) ?(?P<month>{_MONTH})(?:,? (?P<year>{_YEAR}))?",
        text,
    )
    if match is None:
        return None
    year = int(match.group("year")) if match.group("year") else 2000
    month = _MONTHS[match.group("month").rstrip(".")]
    days = calendar.monthrange(year, month)[1]
    if match.group("part") == "week":
        index = _ORDINAL[match.group("nth")]
        first = 1 + 7 * index if index < 4 else days - 6
        last = min(first + 6, days)
    elif match.group("part") == "half":
        first, last = (1, 15) if _ORDINAL[match.group("nth")] == 0 else (16, days)
    else:
        first, last = {"early": (1, 10), "mid": (11, 20), "late": (21, days)}[match.group("when")]
    any_year = match.group("year") is None
    return Period(date(year, month, first), date(year, month, last), any_year=any_year)


def _one_day(text: str, today: date) -> Period | None:
    match = re.search(rf"\b{_ANY_DATE}\b", text)
    if match is None:
        return None
    found = _day_of(match, "a")
    if found is None:
        return None
    return Period(found[0], found[0], any_year=not found[1])


def _month(text: str, today: date) -> Period | None:
    """ "January 2022", "in May" (not the verb: "may I")."""
    match = re.search(rf"\b(?P<month>{_MONTH}),? (?P<year>{_YEAR})\b", text)
    if match is None:
        relative = re.search(rf"\b(?P<which>last|this|next) (?P<month>{_MONTH})\b", text)
        if relative is not None:
            return _that_month(relative.group("which"), relative.group("month"), today)
        match = re.search(rf"\b(?:in|during|of|through|throughout) (?P<month>{_MONTH})\b", text)
    if match is None:
        return None
    said = match.groupdict().get("year")
    year = int(said) if said else 2000
    month = _MONTHS[match.group("month").rstrip(".")]
    last = calendar.monthrange(year, month)[1]
    return Period(date(year, month, 1), date(year, month, last), any_year=said is None)


def _that_month(which: str, name: str, today: date) -> Period:
    """ "last May" (the latest May before this month), "this May", "next May"."""
    month = _MONTHS[name.rstrip(".")]
    year = today.year
    if which == "last" and month >= today.month:
        year -= 1
    elif which == "next" and month <= today.month:
        year += 1
    return Period(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))


def _year(text: str, today: date) -> Period | None:
    match = re.search(rf"\b(?:in|during|of|through|throughout|for) ({_YEAR})\b", text)
    if match is None:
        return None
    year = int(match.group(1))
    return Period(date(year, 1, 1), date(year, 12, 31))


_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
           "seven": 7, "a couple of": 2, "a few": 3}  # fmt: skip


def _relative(text: str, today: date) -> Period | None:
    """ "yesterday", "last week", "this month", "three days ago", "last Friday"."""
    monday = today - timedelta(days=today.weekday())
    fixed = {
        "today": (today, today),
        "tonight": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "this week": (monday, monday + timedelta(days=6)),
        "last week": (monday - timedelta(days=7), monday - timedelta(days=1)),
        "this weekend": (monday + timedelta(days=5), monday + timedelta(days=6)),
        "last weekend": (monday - timedelta(days=2), monday - timedelta(days=1)),
        "this month": (today.replace(day=1), _month_end(today)),
        "last month": (_month_end(today.replace(day=1) - timedelta(days=1)).replace(day=1),
                       today.replace(day=1) - timedelta(days=1)),
        "this year": (date(today.year, 1, 1), date(today.year, 12, 31)),
        "last year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
    }  # fmt: skip
    for phrase, (first, last) in fixed.items():
        if re.search(rf"\b{phrase}\b", text):
            return Period(first, last)
    match = re.search(r"\blast (monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", text)
    if match:
        back = (today.weekday() - _WEEKDAYS[match.group(1)]) % 7 or 7
        day = today - timedelta(days=back)
        return Period(day, day)
    count = "|".join(sorted(_COUNTS, key=len, reverse=True))
    match = re.search(rf"\b(\d{{1,2}}|{count}) (day|week|month|year)s? ago\b", text)
    if match:
        number = int(match.group(1)) if match.group(1).isdigit() else _COUNTS[match.group(1)]
        span = {"day": 1, "week": 7, "month": 30, "year": 365}[match.group(2)]
        middle = today - timedelta(days=number * span)
        slack = timedelta(days=max(1, span // 2))  # "two weeks ago": about then
        return Period(middle - slack, middle + slack)
    return None


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])
