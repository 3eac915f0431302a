"""Reading a search query: its full-text terms, the scope's subject in it, and whether it asks
what to avoid.

A scope's subject (the user or agent whose memories they are) is named by its scope ids and by
the name its memories state ("Name is Alex Moreno", "Hi, my name is Rosa"). `subject_spans` finds
those names in a query: a name is a sequence of words, compared case-folded and without accents
(so "maria.lopez" names "María López"), with the first name of a full name standing alone too.
A name counts where the query writes it as a name, not in lower case ("When is my test?" in scope
"test" names nobody; scripts without case, such as Chinese, always count); in a query with no
capital letter at all, a name the memories state counts in any case. Names are matched as words,
never as patterns: no character of a name is syntax. Text without spaces between words (Chinese,
Japanese) is not split into words, so a name inside it is not found.

An embedding model and full-text matching do not see negation: "what should I not cook for
Alex?" lies next to "Loves grilled sardines". `asks_to_avoid` tells a query that asks what to
avoid (a negation or an avoidance word: not, never, cannot, -n't, avoid, skip, unsafe, risky,
dangerous, leave out, keep off); `stance` tells a memory that states a restriction (allergic,
intolerant, dislikes, hates, avoids, afraid, a negation: +1) from one that states a liking
(loves, likes, enjoys, favourite, fan of: -1). English word lists, as the stopwords are.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    {
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "done",
        "get",
        "got",
        "tell",
        "know",
        "anything",
        "something",
        "ever",
        "also",
        "much",
        "many",
    }
)


def query_terms(query: str, limit: int = 32) -> list[str]:
    """Distinct, lowercased, non-stopword words of the query (at most `limit`)."""
    seen: list[str] = []
    for word in _WORD.findall(query.lower()):
        if len(word) > 1 and word not in STOPWORDS and word not in seen:
            seen.append(word)
    return seen[:limit]


CONTENT_CHARS = 600  # a memory's content words are counted in this many first characters
_LONG_WORD = re.compile(r"\w\w+", re.UNICODE)
# Scripts written without spaces between words, and about how many characters a word of each
# takes: Han and kana (Chinese, Japanese) 2; Thai, Lao, Myanmar and Khmer (with their vowel and
# tone marks) 4.
_UNSPACED = (
    (re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"), 2),
    (re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]+"), 4),
)


@functools.lru_cache(maxsize=8192)  # texts of at most CONTENT_CHARS: 20 MB at most
def content_words(text: str) -> int:
    """How many distinct words of the text are not stopwords (single letters left out): how much
    a memory states ("Thanks, see you!" 2, a line that tells of a trip 10 or more). Search counts
    them for every candidate, so stores pass a memory's first CONTENT_CHARS characters (a count
    past scoring's DETAIL_WORDS changes nothing) and the counts of recent texts are kept. Text
    in a script without spaces between words (Chinese, Japanese, Thai) counts a word per few
    characters (`_UNSPACED`)."""
    unspaced = 0
    for script, per_word in _UNSPACED:
        runs = set(script.findall(text))
        if runs:
            unspaced += sum(len(run) // per_word for run in runs)
            text = script.sub(" ", text)
    return unspaced + len(set(_LONG_WORD.findall(text.lower())).difference(STOPWORDS))


def fts_match(terms: list[str]) -> str:
    """An FTS5 MATCH expression: any of the terms, each quoted (no query syntax gets through)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


@dataclass(frozen=True, slots=True)
class Name:
    """A name of a scope's subject (`of`: "user_id" or "agent_id"): its folded words and what
    joins them; `stated` when a memory states it (else a scope id gives it)."""

    words: tuple[str, ...]
    stated: bool
    of: str = "user_id"
    gaps: tuple[str, ...] = ()


_NAME_IS = re.compile(
    r"(?:^|[.!?,;:]\s+)(?:(?:the\s+)?user(?:'s|\u2019s)\s+|my\s+)?(?:full\s+|first\s+|nick)?"
    r"name\s+is\s+(?P<rest>.+)",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[,.;:!?()\[\]\"]|\s(?:and|but|or)\s")
_NAME_WORD = re.compile(r"[^\W_]+")
_JOINER = re.compile(r"[\s._\-'\u2019]+")  # what may join the words of a name
MAX_NAME_WORDS = 4


def fold(text: str) -> str:
    """Lowercased, without accents: how names are compared."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def stated_name(text: str) -> str | None:
    """The name a memory states its subject has: "Name is Alex Moreno", "Hi, my name is Rosa",
    "User's name is Sam" (its leading words not in lower case); None for anything else, such as
    "Her name is Maria" or "Has a dog whose name is Rex" (someone else's name)."""
    found = _NAME_IS.search(text)
    if found is None:
        return None
    words = []
    for word in _CLAUSE_END.split(found["rest"], maxsplit=1)[0].split()[:MAX_NAME_WORDS]:
        if word[:1].islower():
            break
        words.append(word)
    return " ".join(words) or None


@functools.lru_cache(maxsize=4096)
def names_of(text: str, *, stated: bool, of: str = "user_id") -> tuple[Name, ...]:
    """The `Name`s a full name (or a scope id) gives: all its words, and, for a stated name of
    several words, its first one alone. A name needs a word of two characters or more."""
    names = [_name(text, stated, of)]
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    if stated and first != text.strip():
        names.append(_name(first, stated, of))
    return tuple(n for n in names if any(len(w) > 1 for w in n.words))


def _name(text: str, stated: bool, of: str) -> Name:
    folded = fold(text)
    found = list(_NAME_WORD.finditer(folded))
    gaps = tuple(folded[a.end() : b.start()] for a, b in itertools.pairwise(found))
    return Name(tuple(m.group() for m in found), stated, of, gaps)


Span = tuple[int, int, Name]


def subject_spans(query: str, names: Iterable[Name]) -> list[Span]:
    """(start, end, name) of every place the query names the subject, the longest name first
    where several fit. The words of a name are joined as in the name, or by any of spaces, dots,
    hyphens, underscores and apostrophes where the name has one of those ("maria.lopez" is in
    "María López")."""
    folded_query = fold(query)
    present = {n for n in names if n.words and n.words[0] in folded_query}
    if not present:  # the usual case, cheaply
        return []
    by_length = sorted(present, key=lambda n: -len(n.words))
    found = list(_NAME_WORD.finditer(query))
    folded = [fold(m.group()) for m in found]
    any_case = not any(c.isupper() for c in query)  # no capital to tell a name by
    spans: list[Span] = []
    i = 0
    while i < len(found):
        name = next((n for n in by_length if _names_at(query, found, folded, i, n, any_case)), None)
        if name is None:
            i += 1
            continue
        spans.append((found[i].start(), found[i + len(name.words) - 1].end(), name))
        i += len(name.words)
    return spans


def _names_at(
    query: str,
    found: list[re.Match[str]],
    folded: list[str],
    i: int,
    name: Name,
    any_case: bool,
) -> bool:
    end = i + len(name.words)
    if end > len(found) or tuple(folded[i:end]) != name.words:
        return False
    if found[i].group()[:1].islower() and not (any_case and name.stated):
        return False
    gaps = (query[found[j].end() : found[j + 1].start()] for j in range(i, end - 1))
    return all(_joins(gap, own) for gap, own in zip(gaps, name.gaps, strict=True))


def _joins(gap: str, own: str) -> bool:
    """Whether `gap` in the query joins two words of a name the way `own` does in the name:
    the same characters, or both spaces, dots, hyphens, underscores or apostrophes."""
    return fold(gap) == own or bool(_JOINER.fullmatch(gap) and _JOINER.fullmatch(own))


def replace_spans(query: str, spans: list[Span], stand_in: Mapping[str, str]) -> str:
    """The query with each span replaced by the stand-in for whose name it is (`Name.of`)."""
    out, at = [], 0
    for start, end, name in spans:
        out += [query[at:start], stand_in[name.of]]
        at = end
    out.append(query[at:])
    return "".join(out)


_AVOIDING = re.compile(
    r"\b(?:not|never|cannot|\w+n['\u2019]t|avoid\w*|skip\w*|unsafe|risky|dangerous|harmful|"
    r"(?:leave|left|keep|kept) (?:out|off|away))\b",
    re.IGNORECASE,
)
_RESTRICTION = re.compile(
    r"\b(?:allerg\w*|intoleran\w*|dislikes?|hates?|avoids?|afraid|scared|fears?|phobi\w*|"
    r"not|no|never|cannot|\w+n['\u2019]t)\b",
    re.IGNORECASE,
)
_LIKING = re.compile(r"\b(?:loves?|likes?|enjoys?|adores?|favou?rites?|fan of|fond of)\b", re.I)


_ASKS_FOR_THINGS = re.compile(r"\b(?:what|which|anything|any|things?|list|name)\b", re.I)
_ASKS_WHY = re.compile(r"^\W*(?:why|how|when|where|who|whose|whom)\b", re.I)


def asks_to_avoid(query: str) -> bool:
    """Whether the query asks for the things to avoid ("What should I not cook for Alex?",
    "Which painkillers are risky?", "Is there anything Sam can't eat?"): an avoidance word in a
    question that asks for things, not for a reason, a time, a place or a person ("Why doesn't
    Alex skip football?" asks why)."""
    return (
        _AVOIDING.search(query) is not None
        and _ASKS_FOR_THINGS.search(query) is not None
        and _ASKS_WHY.match(query) is None
    )


def stance(memory: str) -> float:
    """+1 for a memory that states a restriction or a negation, -1 for one that states a liking
    (and none), else 0."""
    if _RESTRICTION.search(memory):
        return 1.0
    return -1.0 if _LIKING.search(memory) else 0.0
