"""Whom a reply's leading "he" or "she" stands for, read from the two turns before it (issue 18).

A chat goes on about someone over several turns: "How is Nora?" - "She's pregnant, due in June";
"My mum has been in hospital since Tuesday." - "What happened?" - "She fell and broke her hip".
Read alone, the reply says nothing of anyone the memory knows. So the person the turns before
name is what the reply's leading "he" or "she" stands for: "Nora is pregnant, due in June",
"Grace's mum fell and broke her hip" (`offline_keep.with_name`), when the reply's sentences that
start with that pronoun are news of someone (`offline_keep.named_subject`, the pronoun read as a
name: not "She'd love to hear that"). Only one person, or none:
- the replier must have a name, and the nearest of the two turns that names someone must name
  one person ("my sister and Ben", "Sam and Jo" leave "she" as it is);
- a relative with "my" is the speaker's of that turn, with "your" the replier's (not when the
  turn calls someone else by name: "Rose, how's your mum?"), "my grandson Eddie" is Eddie;
- a name is a capitalised word in a person's place ("How is Nora?", "I saw Ben", "Aunt Sue"),
  or one that starts news of someone; not a speaker's, not someone's possessor ("Tom's wife");
- "she" does not stand for a brother, an uncle, a "Mr", nor for a name the same turn calls "he"
  ("I saw Tom and he didn't say"), nor in a reply that also says "him" or "his".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from engram.core.messages import Message
from engram.pipeline.offline_keep import named_subject, not_a_name

_FEMALE = {
    "mum", "mom", "mother", "sister", "wife", "daughter", "grandma", "grandmother", "aunt",
    "auntie", "niece", "girlfriend", "granddaughter", "stepdaughter", "stepmom", "stepmum",
    "mrs", "ms", "miss", "nana",
}  # fmt: skip
_MALE = {
    "dad", "father", "brother", "husband", "son", "grandpa", "grandfather", "uncle", "nephew",
    "boyfriend", "grandson", "stepson", "stepdad", "mr",
}  # fmt: skip
_EITHER = {
    "partner", "cousin", "friend", "best friend", "boss", "roommate", "flatmate", "colleague",
    "coworker", "neighbour", "neighbor", "kid", "baby", "fiance", "fiancee", "dr", "doctor",
}  # fmt: skip
_KIN = "|".join(sorted((*_FEMALE, *_MALE, *_EITHER), key=len, reverse=True))
_CAPITALISED = r"(?-i:[A-Z])(?-i:[^\W\dA-Z_])+(?:-(?-i:[A-Z])(?-i:[^\W\dA-Z_])+)?"  # Ana-María
# "my mum", "your brother Ben": a relative of someone in the chat; "Mum" written as a name
_RELATIVE = re.compile(
    rf"\b(?:(?P<whose>my|your)\s+(?P<kin>{_KIN})|(?P<bare>(?-i:Mum|Mom|Dad)))\b"
    rf"(?:\s+(?P<called>{_CAPITALISED})\b)?",
    re.I,
)
_TITLES = r"(?-i:Aunt|Auntie|Uncle|Dr|Mr|Mrs|Ms|Miss|Nana|Grandma|Grandpa)"
# A name in a person's place: after "how is", a verb done to people, or a title ("How is Nora?",
# "I saw Ben", "Aunt Sue", "Dr Patel"); not someone's possessor ("How's Tom's wife?")
_NAME = re.compile(
    r"(?:\b(?i:how\s+is|how's|how\s+are|met|saw|told|tell|ask|asked|texted|hugged)\s+)"
    rf"(?:(?P<title>{_TITLES})\.?\s+)?(?P<name>{_CAPITALISED})\b(?!['\u2019]s\b)"
)
_TITLED = re.compile(rf"\b(?P<title>{_TITLES})\.?\s+(?P<name>{_CAPITALISED})\b")
_PAIR = re.compile(rf"\b({_CAPITALISED})\s+(?:and|or|&)\s+({_CAPITALISED})\b")  # "Sam and Jo"
_VOCATIVE = re.compile(  # "Rose, how's your mum?", "How's your mum, Rose?"
    rf"^\W*(?:(?i:hey|hi|oh|and)\s+)*({_CAPITALISED})\s*,|,\s*({_CAPITALISED})\W*$"
)
_EXCLAIMED = {"god", "jesus", "christ", "lord", "gosh"}
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_LEADING = re.compile(
    r"^\s*(?P<pronoun>he|she)(?:['\u2019](?P<tail>s|d|ll))?\b(?!-)(?!,?\s*he\b)", re.I
)  # not laughter: "He he, he's fine"
_TAILS = {"s": " is", "d": " would", "ll": " will", None: ""}
_STAND_IN = "Alex"  # a name for the pronoun, to read the sentence as news of someone named
_HE = re.compile(r"\b(?:he|him|his|himself)\b", re.I)
_SHE = re.compile(r"\b(?:she|her|hers|herself)\b", re.I)
_SAME, _OTHER = {"he": _HE, "she": _SHE}, {"he": _SHE, "she": _HE}
_READ = 2000  # characters of an earlier turn read, its last


def leading_pronoun(sentence: str) -> str | None:
    """ "he" or "she" when the sentence starts with it (not "He he, ..."), else None."""
    match = _LEADING.match(sentence)
    return match.group("pronoun").lower() if match else None


def referent(before: Sequence[Message], reply: str, speaker: str | None) -> str | None:
    """Whom the reply's leading "he" or "she" stands for, from the turns `before` it (the last
    two are read), or None."""
    if not speaker:
        return None
    pronoun = None
    for sentence in _SENTENCE.split(reply.strip()):  # the sentences that start with he or she
        leading = _LEADING.match(sentence)
        if leading is None or pronoun not in (None, leading.group("pronoun").lower()):
            return None
        pronoun = leading.group("pronoun").lower()
        tail = _TAILS[leading.group("tail") and leading.group("tail").lower()]
        if named_subject(f"{_STAND_IN}{tail}{sentence[leading.end() :]}"):
            break  # news of someone: "She fell and broke her hip", "He's training to ..."
    else:
        return None  # no news ("She'd love to hear that")
    assert pronoun is not None
    for message in reversed(before[-2:]):
        people = _people(message, speaker, pronoun)
        if people is None:
            return None  # someone named, but not one person "she" can be
        if people:
            if len(people) > 1:
                return None
            who, named = people.popitem()
            return None if named and _OTHER[pronoun].search(reply) else who  # "She left him"
    return None


def _people(message: Message, speaker: str, pronoun: str) -> dict[str, bool] | None:
    """Whom a turn names that the pronoun may stand for, each with whether it is a bare name
    (its sex unknown); None when it names someone the pronoun cannot be."""
    said_by, text = message.name, message.content[-_READ:]
    skip = {n.lower() for n in (said_by, speaker) if n} | _EXCLAIMED
    found: dict[str, bool] = {}
    other = _FEMALE if pronoun == "he" else _MALE
    called_by = _VOCATIVE.search(text)
    vocative = (called_by.group(1) or called_by.group(2)) if called_by else None
    for match in _RELATIVE.finditer(text):
        kin = (match.group("kin") or match.group("bare")).lower()
        called = match.group("called")
        if called and not_a_name(called):
            called = None
        if match.group("bare"):
            skip.add(kin)  # "Mum has been in hospital": not a name
        if called:
            skip.add(called.lower())  # "my grandson Eddie" is one person, Eddie
        if kin in other:
            if called:
                return None
            continue
        whose = (match.group("whose") or "my").lower()
        if whose == "my":
            owner = said_by
        else:  # "your": the replier's, unless the turn calls someone else by name
            addressed = vocative is None or vocative.lower() == speaker.lower()
            owner = speaker if said_by != speaker and addressed else None
        if called:
            found[called] = False
        elif owner:
            found[f"{owner}'s {kin}"] = False
    for match in _TITLED.finditer(text):  # "Aunt Sue": the title tells the sex
        if match.group("title").lower() in other:
            return None
        skip.add(match.group("name").lower())
        found[f"{match.group('title')} {match.group('name')}"] = False
    for match in _NAME.finditer(text):
        name = match.group("name")
        if match.group("title") or name.lower() in skip or not_a_name(name):
            continue
        found[name] = True
    for sentence in _SENTENCE.split(text):
        subject = named_subject(sentence)
        if subject and subject.lower() not in skip and not re.search("['\u2019]", subject):
            found.setdefault(subject, True)  # not someone's possessor ("Nora's baby is ...")
    for a, b in _PAIR.findall(text):  # "Sam and Jo": two people, whichever was found
        if a in found or b in found:
            found.setdefault(b if a in found else a, True)
    if any(found.values()) and _OTHER[pronoun].search(text) and not _SAME[pronoun].search(text):
        return None  # "I saw Tom and he didn't say": not a "she"
    return found
