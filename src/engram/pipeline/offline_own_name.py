"""A user who names themself in their own scope: "Alex prefers dark mode" with `user_id="alex"`.

mem0 users often add facts about the user in the third person, under the user's own id. The
offline rules read statements about the speaker in the first person, so such a sentence is read
as the user saying it ("I prefer dark mode") when it surely is about them. A name is often a word
too ("Bill is due on Friday" in Bill's scope, "May is my favourite month", "Test results came
back" in scope "test"), so the rewrite is narrow:

- the sentence starts with the name, written as a name (capitalised), and the name is not a
  month, weekday or season;
- then comes, after adverbs ("never", "really"), a present-tense verb of what people do, like,
  own and are ("lives", "works", "loves", "prefers", "plays", ...), in lower case; or "is"
  ("was") followed by an attribute the rules know: a diet, a marital status, an allergy, a job,
  an origin, an age ("Alex is vegan", "Alex is a nurse", "Alex is from Porto");
- or the name's possessive names one of the user's people or pets ("Alex's sister lives in
  Rome" -> "My sister lives in Rome").

Anything else is left as written (and, about someone the rules cannot tell, not stored).
"""

from __future__ import annotations

import re

from engram.core.text import fold
from engram.pipeline.offline_keys import DIETS, JOBS, PEOPLE, PETS, STATUSES

_VERBS = {"lives", "works", "loves", "likes", "prefers", "enjoys", "adores", "hates", "dislikes",
          "owns", "studies", "plays", "speaks", "drinks", "eats", "drives", "teaches", "writes",
          "reads", "watches", "cooks", "bakes", "collects", "volunteers", "rides", "swims",
          "travels", "avoids"}  # fmt: skip
_ADVERBS = {"never", "also", "still", "always", "often", "usually", "sometimes", "really",
            "mostly", "rarely", "currently", "now", "only", "absolutely"}  # fmt: skip
_NOT_NAMES = {"january", "february", "march", "april", "may", "june", "july", "august",
              "september", "october", "november", "december", "monday", "tuesday", "wednesday",
              "thursday", "friday", "saturday", "sunday", "spring", "summer", "autumn", "fall",
              "winter"}  # fmt: skip
_ATTRIBUTE = re.compile(
    r"^(?:not\s+|no longer\s+)?(?:"
    rf"(?:{'|'.join(map(re.escape, sorted(DIETS | STATUSES, key=len, reverse=True)))})\b"
    r"|allergic to\b|intolerant to\b|lactose intolerant\b|from\b|originally from\b|based in\b"
    r"|\d{1,3} years old\b"
    rf"|an? (?:{'|'.join(map(re.escape, sorted(JOBS, key=len, reverse=True)))})\b)",
    re.I,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])(\s+)")


def in_first_person(text: str, name: str) -> str:
    """`text` with each sentence about the scope's user `name` in the first person (see the
    module); the text unchanged when none is. `name` is compared as names are: case and accents
    aside, letters and digits only ("ana_maria" for "Ana María")."""
    folded = _alnum(name)
    if folded in _NOT_NAMES or len(folded) < 2:
        return text
    parts = _SENTENCE_END.split(text)  # sentences and the spaces between them, kept
    return "".join(_first_person(part, folded) if i % 2 == 0 else part
                   for i, part in enumerate(parts))  # fmt: skip


def _first_person(sentence: str, folded: str) -> str:
    """The sentence in the first person when it starts with the user's name (`folded` by
    `_alnum`); else as it is."""
    if sentence.rstrip().endswith("?"):  # a question stays one, as the user wrote it
        return sentence
    words = sentence.split(" ")
    for size in (3, 2, 1):  # "Ana María López", "Ana María", "Ana"
        if len(words) <= size:
            continue
        head = " ".join(words[:size])
        possessive = head.endswith(("'s", "\u2019s"))
        said = head[:-2] if possessive else head
        if not said[:1].isupper() or _alnum(said) != folded:
            continue
        rest = words[size:]
        if possessive:
            owned = rest[0].lower().strip(",.!")
            return " ".join(["My", *rest]) if owned in PEOPLE | PETS else sentence
        adverbs = 0  # "Ana never eats meat": the verb after them
        while adverbs < len(rest) - 1 and rest[adverbs] in _ADVERBS:
            adverbs += 1
        verb, before, after = rest[adverbs], rest[:adverbs], rest[adverbs + 1 :]
        if verb in _VERBS:
            return " ".join(["I", *before, _plain(verb), *after])
        if verb in ("is", "was") and _ATTRIBUTE.match(" ".join(after)):
            return " ".join(["I", *before, "am" if verb == "is" else "was", *after])
        return sentence
    return sentence


def _plain(verb: str) -> str:
    """ "loves" -> "love", "studies" -> "study", "watches" -> "watch"."""
    if verb.endswith("ies"):
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return verb[:-2]
    return verb[:-1]


def same_name(name: str, user_id: str | None) -> bool:
    """ "Alice" and "alice", "Ana María" and "ana_maria": letters and digits alike, compared
    as names are (`core.text.fold`)."""
    if not user_id:
        return False
    return bool(_alnum(name)) and _alnum(name) == _alnum(user_id)


def _alnum(text: str) -> str:
    return "".join(ch for ch in fold(text) if ch.isalnum())
