"""Whether a query asks for a name, and whether a memory names something (English).

"Which city have both Jean and John visited?" or "What book was John reading?" is answered by a
memory that names a place or a work ("Took a short trip last week to Rome", "I'm reading
'The Name of the Wind'"), while both retrievers rank by topic: a line about travel or reading
that names nothing is as close to the question. So search lifts, for such a query, the
candidates that name something (a recipe's `names`, see `core.scoring`).

What counts as naming, in a memory's text:
- a capitalised word after a preposition of place ("in", "to", "from", "at", "of", ...), a verb
  of visiting or naming ("in Spain", "to Oregon", "from Sweden", "visited Paris", "a dog called
  Biscuit"), when it is not a speaker's name, a month, a weekday or "Mom";
- a quoted title that starts with a capital ('"Charlotte's Web"', "'Eternal Sunshine'", "'Dune'");
- two capitalised words or more in a row inside a sentence ("the Minnesota Wolves", "Star Wars").
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Collection

# What a question asks for a name of: a place, a work, a group. It is what "what" or "which"
# asks for (the kind, at most two words after it: "which European countries", "what board
# games"), not a word elsewhere in the question ("What time does the store open?").
_KINDS = (
    r"(?:countr(?:y|ies)|states?|cit(?:y|ies)|towns?|places?|locations?|areas?|regions?|"
    r"continents?|parks?|streets?|neighbou?rhoods?|restaurants?|cafes?|shops?|stores?|hotels?|"
    r"museums?|schools?|universit(?:y|ies)|colleges?|compan(?:y|ies)|teams?|clubs?|brands?|"
    r"apps?|websites?|books?|novels?|movies?|films?|songs?|shows?|series|albums?|games?|"
    r"bands?|artists?|authors?|podcasts?|titles?)"
)
_VERB = r"(?:is|are|was|were|do|does|did|has|have|had|'s|\u2019s)"
_ASKS_FOR_A_KIND = re.compile(
    rf"\b(?:what|which)\s+(?!{_VERB}\b)(?:[\w'\u2019-]+\s+){{0,2}}?{_KINDS}\b", re.IGNORECASE
)
# A question for a name itself: "What is my dog called?", "What's the name of Kenji's band?"
_WHAT = re.compile(r"\b(?:what|which)\b", re.IGNORECASE)
_THE_NAME = re.compile(r"\bnames?\b|\b(?:called|named)\W*$", re.IGNORECASE)
# A question answered otherwise: yes or no ("Would Linh enjoy a ski trip?"), a manner, a reason,
# a time or a person ("How does Linh get around the city?").
_NOT_A_NAME = re.compile(
    r"^\W*(?:is|are|was|were|do|does|did|can|could|should|would|will|has|have|had|may|might|"
    r"shall|how|why|when|who|whom|whose)\b",
    re.IGNORECASE,
)
_WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)
_NOT_NAMES = frozenset((
    "I", "You", "Mom", "Mum", "Mommy", "Mummy", "Dad", "Daddy", "Grandma", "Grandpa", "Granny",
    "Nana", "Papa", "Christmas", "Easter", "Halloween", "Thanksgiving",
    *calendar.month_name[1:], *calendar.month_abbr[1:], "Sept", *calendar.day_name,
    *calendar.day_abbr,
))  # fmt: skip
_I = ("I'", "I\u2019")  # I'm, I've, I'll
_BEFORE_A_NAME = frozenset((  # a place's preposition, visiting, naming
    "in", "to", "from", "at", "near", "around", "across", "through", "toward", "towards", "of",
    "visit", "visits", "visited", "visiting", "called", "named",
))  # fmt: skip
_JOINING = frozenset(("of", "the", "and"))  # inside a name: "Bank of America"
# A title in quotes: the opening one after a space or the start, the closing one before one
# ("I'm reading 'Dune'" is 'Dune', not "m reading ").
_QUOTED_TITLE = re.compile(
    "(?<![\\w'\u2019])[\"\u201c'\u2018]([^\\W\\d_][^\"\u201c\u201d\u2018\u2019\\n]{0,60}?)"
    "[\"\u201d'\u2019](?![\\w'\u2019])"
)
# A capitalised word (Latin, Greek and Cyrillic capitals); what may stand between it and the word
# before it, and how far back that word is looked for.
_CAPITALS = "".join(
    c for r in (range(0x41, 0x5B), range(0xC0, 0x250), range(0x370, 0x530))
    for c in map(chr, r) if c.isupper()
)  # fmt: skip
_CAPITALISED = re.compile(f"(?<![\\w'\u2019-])[{re.escape(_CAPITALS)}][\\w'\u2019-]*")
_OPENING = " \t\"'\u201c\u2018("
_LOOK_BACK = 40  # characters
_BRACKETED = re.compile(r"\[[^\]\[]*\]")  # "[image: a photo of ...]": what the sender attached
_POSSESSIVE = re.compile("['\u2019]s$")


def asks_for_name(query: str) -> bool:
    """Whether the query asks for a place or a named work: a "where" question, a "what" or
    "which" question for a kind of place, work or group ("Which countries has Maria been to?",
    "What books has Tim read?"), or for a name ("What is my dog called?"); not a yes-or-no
    question, nor one that asks how, why, when or who ("Would Linh enjoy a ski trip?")."""
    if _WHERE.search(query):
        return True
    if _NOT_A_NAME.match(query):
        return False
    if _ASKS_FOR_A_KIND.search(query):
        return True
    return _WHAT.search(query) is not None and _THE_NAME.search(query) is not None


def names_something(memory: str, speakers: Collection[str] = ()) -> bool:
    """Whether the memory names a place, a titled work or a group (see the module's docstring).
    Not names: the words that start the text, a sentence, a line or an item of a list, the
    speakers' names ("said to Mel", "Mel's sister", in any case), "I", "Mom", months, weekdays,
    a few holidays, and words in capitals but after a place word ("I LOVE IT", not "to NYC").
    Search asks it of every candidate of a query that asks for a name, so only the capitalised
    words are looked at, and the answers for recent texts are kept."""
    return _names_something(memory, frozenset(s.casefold() for s in speakers))


@functools.lru_cache(maxsize=8192)  # search passes texts of at most CONTENT_CHARS: 20 MB at most
def _names_something(memory: str, speakers: frozenset[str]) -> bool:
    text = _BRACKETED.sub(" ", memory)
    if any(quoted[0].isupper() for quoted in _QUOTED_TITLE.findall(text)):
        return True
    end, run = -1, 0  # where the last name ended, and how many were in a row
    for found in _CAPITALISED.finditer(text):
        token, start = found.group(), found.start()
        if (token in _NOT_NAMES or token.startswith(_I)
                or _POSSESSIVE.sub("", token).casefold() in speakers):  # fmt: skip
            continue
        gap = text[max(0, start - _LOOK_BACK) : start]
        before = gap.rstrip(_OPENING).rsplit(None, 2)
        if not before or "\n" in gap[len(gap.rstrip()) :] or not _ends_a_word(before[-1]):
            end, run = found.end(), 0  # the first word of a text, a line or a sentence
            continue
        word = before[-1].lower()
        if word in _BEFORE_A_NAME or (word == "the" and len(before) > 1
                                    and before[-2].lower() in _BEFORE_A_NAME):  # fmt: skip
            return True
        if token.isupper() and len(token) > 1:  # shouting, or an acronym not after a place word
            end, run = found.end(), 0
            continue
        joined = end >= 0 and all(w in _JOINING for w in text[end:start].split())
        end, run = found.end(), run + 1 if joined else 1
        if run >= 2:
            return True
    return False


def _ends_a_word(word: str) -> bool:
    """Whether the text before a capitalised word ends inside a sentence: with a letter or a
    digit, or a comma or the like (not ". ! ? : ..." nor a bullet, a heading's # or an emoji)."""
    last = word[-1]
    return last.isalnum() or last in ",;)'\u2019\"\u201d"
