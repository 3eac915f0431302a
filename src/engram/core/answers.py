"""Whether a query asks for a name, and whether a memory names something (English).

"Which city have both Jean and John visited?" or "What book was John reading?" is answered by a
memory that names a place or a work ("Took a short trip last week to Rome", "I'm reading
'The Name of the Wind'"), while both retrievers rank by topic: a line about travel or reading
that names nothing is as close to the question. So search lifts, for such a query, the
candidates that name something (a recipe's `names`, see `core.scoring`).

What counts as naming, in a memory's text:
- a capitalised word after a preposition of place or a verb of visiting ("in Spain", "to Oregon",
  "from Sweden", "visited Paris"), when it is not a speaker's name, a month or a weekday;
- a quoted title that starts with a capital ('"Charlotte's Web"', "'Eternal Sunshine'");
- two capitalised words or more in a row inside a sentence ("the Minnesota Wolves", "Star Wars").
"""

from __future__ import annotations

import calendar
import functools
import re

# What a question asks for a name of: a place, a work, a group.
_KINDS = re.compile(
    r"\b(?:countr(?:y|ies)|states?|cit(?:y|ies)|towns?|places?|locations?|areas?|regions?|"
    r"continents?|parks?|streets?|neighbou?rhoods?|restaurants?|cafes?|shops?|stores?|hotels?|"
    r"museums?|schools?|universit(?:y|ies)|colleges?|compan(?:y|ies)|teams?|clubs?|brands?|"
    r"apps?|websites?|books?|novels?|movies?|films?|songs?|shows?|series|albums?|games?|"
    r"bands?|artists?|authors?|podcasts?|titles?|named|called)\b",
    re.IGNORECASE,
)
_WHAT = re.compile(r"\b(?:what|which)\b", re.IGNORECASE)
# A question answered otherwise: yes or no ("Would Linh enjoy a ski trip?"), a manner, a reason,
# a time or a person ("How does Linh get around the city?").
_NOT_A_NAME = re.compile(
    r"^\W*(?:is|are|was|were|do|does|did|can|could|should|would|will|has|have|had|may|might|"
    r"shall|how|why|when|who|whom|whose)\b",
    re.IGNORECASE,
)
_WHERE = re.compile(r"^\W*where\b", re.IGNORECASE)
_NOT_NAMES = frozenset(("I", *calendar.month_name[1:], *calendar.day_name))
_I = ("I'", "I\u2019")  # I'm, I've, I'll
_PLACE_WORDS = frozenset((
    "in", "to", "from", "at", "near", "around", "across", "through", "toward", "towards", "of",
    "visit", "visits", "visited", "visiting",
))  # fmt: skip
_JOINING = frozenset(("of", "the", "and"))  # inside a name: "Bank of America"
_QUOTED_TITLE = re.compile(r"[\"\u201c']([^\W\d_][^\"\u201d']{2,60})[\"\u201d']")
# A capitalised word (Latin, Greek and Cyrillic capitals); what may stand between it and the word
# before it, and how far back that word is looked for.
_CAPITALS = "".join(
    c for r in (range(0x41, 0x5B), range(0xC0, 0x250), range(0x370, 0x530))
    for c in map(chr, r) if c.isupper()
)  # fmt: skip
_CAPITALISED = re.compile(f"(?<![\\w'\u2019-])[{re.escape(_CAPITALS)}][\\w'\u2019-]*")
_OPENING = " \t\n\"'\u201c\u2018("
_LOOK_BACK = 40  # characters
_BRACKETED = re.compile(r"\[[^\]]*\]")  # "[image: a photo of ...]": what the sender attached


def asks_for_name(query: str) -> bool:
    """Whether the query asks for a place or a named work: a "where" question, or a "what" or
    "which" question about a kind of place, work or group ("Which countries has Maria been to?",
    "What books has Tim read?"); not a yes-or-no question, nor one that asks how, why, when or
    who ("Would Linh enjoy a ski trip?")."""
    if _WHERE.match(query):
        return True
    return (
        _NOT_A_NAME.match(query) is None
        and _WHAT.search(query) is not None
        and _KINDS.search(query) is not None
    )


@functools.lru_cache(maxsize=8192)  # search passes texts of at most CONTENT_CHARS: 5 MB at most
def names_something(memory: str, speakers: frozenset[str] = frozenset()) -> bool:
    """Whether the memory names a place, a titled work or a group (see the module's docstring):
    the words that start the text or a sentence, a speaker's name ("said to Mel"), "I", months
    and weekdays are not names. Search asks it of every candidate of a query that asks for a
    name, so only the capitalised words are looked at, and what is before them, and the
    answers for recent texts are kept."""
    text = _BRACKETED.sub(" ", memory)
    if any(quoted[0].isupper() for quoted in _QUOTED_TITLE.findall(text)):
        return True
    end, run = -1, 0  # where the last name ended, and how many were in a row
    for found in _CAPITALISED.finditer(text):
        token, start = found.group(), found.start()
        if token in _NOT_NAMES or token.startswith(_I) or token in speakers:
            continue
        before = text[max(0, start - _LOOK_BACK) : start].rstrip(_OPENING).rsplit(None, 2)
        if not before or before[-1][-1] in ".!?:":  # a sentence's first word
            end, run = found.end(), 0
            continue
        word = before[-1].lower()
        if word in _PLACE_WORDS or (word == "the" and len(before) > 1
                                    and before[-2].lower() in _PLACE_WORDS):  # fmt: skip
            return True
        joined = end >= 0 and all(w in _JOINING for w in text[end:start].split())
        end, run = found.end(), run + 1 if joined else 1
        if run >= 2:
            return True
    return False
