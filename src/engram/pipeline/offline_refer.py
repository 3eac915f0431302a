"""Whom a reply's leading "he" or "she" stands for, read from the two turns before it (issue 18).

A chat goes on about someone over several turns: "How is Nora?" - "She's pregnant, due in June";
"Mum has been in hospital since Tuesday." - "What happened?" - "She fell and broke her hip".
Read alone, the reply says nothing of anyone the memory knows. So the person the turns before
name is what the reply's first "he" or "she" stands for: "Nora is pregnant, due in June", "Grace's
mum fell and broke her hip" (`offline_keep.with_name`), when the reply's first sentences start
with that pronoun and one of them is news of someone (`offline_keep.named_subject`, the pronoun
read as a name: not "She'd love to hear that"). Only one person, or none:
- the nearest of the two turns that names someone, and only when it names one person ("my
  sister and Ben" leaves "she" as it is);
- a relative with "my" is the speaker's of that turn, with "your" the other speaker's, and a
  bare "Mum" or "Dad" the speaker's ("Grace's mum");
- a name is a capitalised word in a person's place ("How is Nora?", "that Eddie", "with Ben",
  "my grandson Eddie"; not "How was Lisbon?"), or one that starts news of someone
  (`offline_keep.named_subject`), that is not a speaker's;
- "she" does not stand for a brother, nor "he" for a sister.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from engram.core.messages import Message
from engram.pipeline.offline_keep import named_subject, not_a_name

_FEMALE = {
    "mum", "mom", "mother", "sister", "wife", "daughter", "grandma", "grandmother", "aunt",
    "niece", "girlfriend", "granddaughter", "stepdaughter", "stepmom", "stepmum",
}  # fmt: skip
_MALE = {
    "dad", "father", "brother", "husband", "son", "grandpa", "grandfather", "uncle", "nephew",
    "boyfriend", "grandson", "stepson", "stepdad",
}  # fmt: skip
_EITHER = {
    "partner", "cousin", "friend", "best friend", "boss", "roommate", "flatmate", "colleague",
    "coworker", "neighbour", "neighbor", "kid", "baby", "fiance", "fiancee",
}  # fmt: skip
_KIN = "|".join(sorted((*_FEMALE, *_MALE, *_EITHER), key=len, reverse=True))
_RELATIVE = re.compile(
    rf"\b(?:(?P<whose>my|your)\s+(?P<kin>{_KIN})|(?P<bare>Mum|Mom|Dad))\b"
    r"(?:\s+(?P<called>(?-i:[A-Z])[a-z]+)\b)?",  # "my grandson Eddie": one person, Eddie
    re.I,
)
# A name in a person's place: after "how is", "that", "with", "and", a verb done to people
# ("How is Nora?", "that Eddie", "Sam and Jo"); not "How was Lisbon?", "Oh my God"
_PERSON_BEFORE = (
    r"(?:how\s+is|how's|how\s+are|that|with|and|or|met|meet|saw|see|told|tell|ask|asked|call|"
    r"called|text|texted|miss|missed|hug|hugged|thank|thanked)"
)
_NAME = re.compile(rf"(?i:\b{_PERSON_BEFORE})\s+(?P<name>(?-i:[A-Z])[a-z]+(?:-[A-Z][a-z]+)?)\b")
_EXCLAIMED = {"god", "jesus", "christ", "lord", "gosh"}
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_LEADING = re.compile(r"^\s*(?P<pronoun>he|she)(?:['\u2019](?P<tail>s|d|ll))?\b(?!-)", re.I)
_TAILS = {"s": " is", "d": " would", "ll": " will", None: ""}
_STAND_IN = "Alex"  # a name for the pronoun, to read the sentence as news of someone named


def referent(before: Sequence[Message], reply: str, speaker: str | None) -> str | None:
    """Whom the reply's leading "he" or "she" stands for, from the turns `before` it (the last
    two are read), or None."""
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
    she = pronoun == "she"
    for message in reversed(before[-2:]):
        people = _people(message, speaker, she)
        if people:
            return people.pop() if len(people) == 1 else None
    return None


def _people(message: Message, speaker: str | None, she: bool) -> set[str]:
    """Whom a turn names that "she" (or "he") may stand for (see the module's docstring)."""
    said_by, text = message.name, message.content
    skip = {n.lower() for n in (said_by, speaker) if n} | _EXCLAIMED
    found: set[str] = set()
    for match in _RELATIVE.finditer(text):
        kin = (match.group("kin") or match.group("bare")).lower()
        called = match.group("called")
        if called and not not_a_name(called):
            skip.add(called.lower())  # "my grandson Eddie" is one person, Eddie, a he
        if kin in (_MALE if she else _FEMALE):
            continue
        whose = (match.group("whose") or "my").lower()
        owner = said_by if whose == "my" else speaker if said_by != speaker else None
        if called and not not_a_name(called):
            found.add(called)
        elif owner:
            found.add(f"{owner}'s {kin}")
    bare = {m.group("bare").lower() for m in _RELATIVE.finditer(text) if m.group("bare")}
    skip |= bare
    for match in _NAME.finditer(text):
        name = match.group("name")
        if name.lower() not in skip and not not_a_name(name):
            found.add(name)
    for sentence in _SENTENCE.split(text):
        subject = named_subject(sentence)
        if subject and subject.lower() not in skip:
            found.add(subject)
    return found
