"""The generic first-person rewrite of the offline rules, and what the recognisers share.

"I play guitar" -> "Plays guitar", "I'm flying to Lima" -> "Is flying to Lima", "My flight is on
Friday" -> "Flight is on Friday": a clause about its speaker becomes a third-person fact without
the subject. `Statement` is what a recognised clause becomes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

About = Literal["user", "agent"]

NAME_WORD = r"[A-Z][\w'-]+"
PAST = {"went", "got", "made", "took", "saw", "met", "bought", "had", "did", "ran", "came",
         "began", "left", "found", "gave", "knew", "thought", "told", "became", "sold", "wrote",
         "ate", "drank", "lost", "won", "paid", "spent", "built", "taught", "caught", "brought",
         "quit", "read", "felt", "kept", "heard", "flew", "drove", "swam", "sang", "broke",
         "was", "were", "grew", "fell", "held", "led", "rode", "shot", "stood", "threw", "woke",
         "wore", "hid", "split", "put", "let", "set", "hit", "cut", "hurt", "sent",
         "slept", "sat", "spoke", "chose", "drew", "fed", "fought", "forgot", "forgave", "froze",
         "hung", "lay", "laid", "lit", "meant", "rang", "rose", "said", "sought", "shook",
         "shone", "sank", "slid", "spun", "stole", "stuck", "struck", "swore", "swept", "tore",
         "understood", "wept", "dug", "bent", "bled", "dealt", "fled", "leant", "learnt", "lent",
         "overcame", "shut", "sprang", "upset", "burnt", "dreamt", "withdrew", "undertook",
         "rebuilt", "oversaw"}  # fmt: skip
NOT_PAST = {"need", "feed", "seed", "bleed", "speed", "breed", "proceed", "exceed", "succeed",
             "red", "bed", "shed", "wed"}  # fmt: skip
_KEEP_ADVERBS = {"usually", "often", "always", "never", "sometimes", "still", "recently",
                 "rarely", "mostly"}  # fmt: skip
TRAILING = re.compile(
    r"\s+(?:now|these days|nowadays|anymore|any more|from now on|a lot|so much|very much)$", re.I
)
_MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
)
_DAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
TIME = re.compile(
    rf"\s+(?:(?:last|this|next) (?:week|month|year|weekend|{_DAY})|yesterday|today|tonight|"
    rf"tomorrow|(?:\w+ )?(?:days|weeks|months|years) ago|in {_MONTH}|in \d{{4}}|on {_DAY}|"
    r"since .+$|recently|anymore|any more)\b",
    re.I,
)
CALENDAR = re.compile(rf"^(?:{_MONTH}|{_DAY})$", re.I)


@dataclass(frozen=True, slots=True)
class Statement:
    text: str  # canonical fact; "" for a bare correction
    negated: bool = False  # a retraction: remove the stored fact it states
    about: About = "user"
    replaces: tuple[str, ...] = ()  # the stored fact it ends: words it holds, or "key:<name>"
    corrects: tuple[str, str] | None = None  # (new, old) of "X, not Y"
    revises: bool = False  # said as a correction: may restate a stored fact with a new date
    speaker: str | None = None  # the name of who said it (a message's `name`)
    owned: bool = False  # about something of the speaker's ("my flight"): "Mel's flight ..."
    kept: bool = False  # a sentence kept as said (`offline_keep`), in the third person already


def is_past(clause: str) -> bool | None:
    """Whether a clause speaks of the past (its first verb after the subject, or its first word
    when it has no subject: "Did my first 10k on Sunday"), so that its dates are read as ones
    gone by. None when it arranges something ("Signed up for the half marathon in May", "I
    booked a table for Friday"): its dates are the event's, which may come or be gone by (the
    nearest month; a weekday to come)."""
    if _ARRANGED.search(clause):
        return None
    bare = _BARE_PAST.match(clause)
    if bare and bare.group(1).lower() not in _PRESENT_TOO and not _NAME_FROM.match(clause):
        return True
    had = re.match(r"^had\s+(\w+)", clause, re.I)  # "Had dinner with Tom on Friday"
    if had and had.group(1).lower() not in PAST_PARTICIPLES:
        return True
    match = re.match(
        r"^(?:i|we|it|[A-Z][\w'-]+)(?P<aux>'ve| have| had)?\s+(?:\w+ly\s+)?([\w']+)",
        clause, re.I,
    )  # fmt: skip
    if match is None:
        return False
    verb = match.group(2).lower()
    if (match.group("aux") or "").strip().lower() == "had":
        return True  # "I had a great time on Sunday", "I had been there on Sunday"
    return verb in PAST or (verb.endswith("ed") and verb not in NOT_PAST)


PAST_PARTICIPLES = {"been", "gone", "done", "seen", "taken", "given", "eaten", "written",
                    "known", "grown", "flown", "driven", "ridden", "spoken", "broken", "chosen",
                    "forgotten", "gotten", "begun", "run", "come", "become", "swum",
                    "sung"}  # fmt: skip
# A name that ends as a past verb does, then where they are from and their verb: "Ahmed from my
# team is getting married", "Jared from work invited me".
_NAME_FROM = re.compile(
    r"^(?-i:[A-Z])[a-z]+ed\s+(?:from|at)\s+(?:\S+\s+){1,3}?"
    r"(?:is|are|was|were|has|had|will|'s|\w+ed|\w+s)\b",
    re.I,
)


_ARRANGED = re.compile(
    r"^(?:(?:i|we|[A-Z][\w'-]+)\s+)?(?:\w+ly\s+)?(?:signed up|booked|registered|enrolled|"
    r"scheduled|reserved|arranged|planned|(?:bought|got) (?:\w+ )?tickets)\b",
    re.I,
)
# A subject-less clause that starts with a past verb, then what a verb takes ("Went to Rome",
# "Got a new job"), not a name with its own verb ("Rose loves Rome").
_BARE_PAST = re.compile(
    rf"^(?:\w+ly\s+)?({'|'.join(sorted(PAST))}|[a-z]{{3,}}ed)\s+"
    r"(?:my|our|the|a|an|to|it|them|him|her|his|their|some|this|that|these|those|up|out|back|"
    r"home|in|on|at|with|for|into|over|off|by|from)\b",
    re.I,
)
_PRESENT_TOO = {"read", "set", "put", "let", "cut", "hit", "hurt", "quit", "split",
                *NOT_PAST}  # fmt: skip


def m(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


_OPENINGS: list[tuple[re.Pattern[str], str]] = [
    (m(r"^(?:i|we) (could|should|might|must|may)\s+"), "\\1 "),
    (m(r"^(?:i'm|i am|we're|we are)\s+"), "Is "),
    (m(r"^(?:i've|i have|we've|we have)\s+been\s+"), "Has been "),
    (m(r"^(?:i've|we've)\s+"), "Has "),
    (m(r"^(?:i|we) have\s+"), "Has "),
    (m(r"^(?:i'll|i will|we'll|we will)\s+"), "Will "),
    (m(r"^(?:i'd|we'd) like\s+"), "Would like "),
    (m(r"^(?:i'd|we'd|i would|we would)\s+"), "Would "),
    (m(r"^(?:i|we) (?:don't|do not)\s+"), "Does not "),
    (m(r"^(?:i|we) (?:didn't|did not)\s+"), "Did not "),
    (m(r"^(?:i|we) (?:can't|cannot)\s+"), "Cannot "),
    (m(r"^(?:i|we) can\s+"), "Can "),
    (m(r"^(?:i|we) (?:was|were)\s+"), "Was "),
]
_SUBJECT = m(r"^(?:i|we)\s+(.+)$")
# A finite verb after "my ...": "My flight is on Friday", "My cat died" (not "my favourite city").
_VERB = m(r"(?:\b(?:is|are|was|were|has|have|had|will|can|does|did|'s)\b|\w(?:s|ed)\s+\w|\wed$)")


def generic(clause: str) -> str | None:
    if len(clause.split()) < 2:
        return None
    for pattern, replacement in _OPENINGS:
        if pattern.match(clause):
            return clean(pattern.sub(replacement, clause, count=1))
    if re.match(r"^(?:my|our)\s+", clause, re.I):
        rest = re.sub(r"^(?:my|our)\s+", "", clause, flags=re.I)
        return clean(rest) if _VERB.search(rest) else None
    match = _SUBJECT.match(clause)
    if match is None:
        return None
    words = match.group(1).split()
    adverbs = []
    while len(words) > 1 and _adverb(words[0].lower()):
        adverbs.append(words.pop(0))
    if not words or not words[0].isalpha():
        return None
    return clean(" ".join([*adverbs, third_person(words[0].lower()), *words[1:]]))


_LY_VERBS = {"apply", "reply", "supply", "rely", "comply", "multiply", "fly", "ally", "bully"}


def _adverb(word: str) -> bool:
    """ "usually", "typically": kept before the verb, which is the one put in the third person."""
    return word in _KEEP_ADVERBS or (
        len(word) > 4 and word.endswith("ly") and word not in _LY_VERBS
    )


_SPOKEN = {"wanna": "wants to", "gonna": "is going to", "gotta": "has to"}


def third_person(verb: str) -> str:
    if verb in _SPOKEN:  # "I wanna start" -> "Wants to start"
        return _SPOKEN[verb]
    if (verb.endswith("ed") and verb not in NOT_PAST) or verb in PAST:
        return verb
    if verb in ("have", "be"):
        return {"have": "has", "be": "is"}[verb]
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if len(verb) > 2 and verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def ing_base(verb: str) -> str:
    """ "smoking" -> "smoke", "running" -> "run", "playing" -> "play" (a guess; matching is by
    stems anyway)."""
    base = verb.removesuffix("ing")
    if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz":
        return base[:-1]
    if re.search(r"[^aeiou][aeiou][kvcz]$", base) or base.endswith(("dg", "rg")):
        return base + "e"
    return base


def clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(" ,")
    text = re.sub(r"\bfavourite\b", "favorite", text, flags=re.I)
    return text[:1].upper() + text[1:]


def tail(text: str) -> str:
    """A captured value without trailing filler or punctuation."""
    return TRAILING.sub("", text.strip()).strip(" ,.!")


def untimed(text: str) -> str:
    """A retracted or ended object without the time said with it ("motorbike last month")."""
    return TIME.sub("", f" {text.strip()}").strip(" ,.!")


def lower_first(text: str) -> str:
    word = text.split(" ", 1)[0]
    if word.isupper() or word.lower() in ("i",):
        return text
    return text[:1].lower() + text[1:]


def with_speaker(fact: str, speaker: str, *, owned: bool) -> str:
    """A fact of a named speaker with the name as its subject: "Lives in Oslo" -> "Mel lives in
    Oslo"; an owned one with the name's: "Flight is on Friday" -> "Mel's flight is on Friday"."""
    subject = f"{speaker}'s" if owned else speaker
    return f"{subject} {lower_first(fact)}"


def without_speaker(text: str, speaker: str | None) -> str:
    """A stored fact of a named speaker as the rules state it: "Mel lives in Oslo" -> "Lives in
    Oslo"; unchanged when it does not start with the name."""
    if not speaker:
        return text
    for prefix in (f"{speaker}'s ", f"{speaker} "):
        if text.startswith(prefix) and len(text) > len(prefix):
            return clean(text[len(prefix) :])
    return text
