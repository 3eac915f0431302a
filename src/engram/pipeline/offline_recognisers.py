"""Recognisers of the offline rules: a clause about its speaker in, statements out.

Each recogniser knows one kind of attribute (retractions, events that end a stored fact, name,
place, work, diet and health, tastes, family and pets) and returns statements or None; a clause
none of them knows is rewritten generically (`offline_rewrite.generic`).
"""

from __future__ import annotations

import itertools
import re

from engram.pipeline import offline_clauses as clauses
from engram.pipeline.offline_keys import (
    DIETS,
    JOBS,
    PEOPLE,
    PETS,
    RELATIVES,
    STATUSES,
    alternation,
    fact_key,
)
from engram.pipeline.offline_rewrite import (
    CALENDAR,
    NAME_WORD,
    TIME,
    TRAILING,
    Statement,
    clean,
    generic,
    ing_base,
    lower_first,
    m,
    tail,
    third_person,
    untimed,
)

MAX_SPLITS = 4  # places "and" or a comma may split a clause into two attributes, tried in order


def recognise(clause: str) -> list[Statement]:
    split = _coordinated(clause)
    if split is not None:
        return split
    found = _specific(clause)
    if found is not None:
        return found
    rewritten = generic(clause)
    return [Statement(rewritten)] if rewritten and " " in rewritten else []


def _specific(clause: str) -> list[Statement] | None:
    for recogniser in _RECOGNISERS:
        found = recogniser(clause)
        if found is not None:
            return found
    return None


def _coordinated(clause: str) -> list[Statement] | None:
    """Two complete attributes joined by "and" or a comma, the second without its subject:
    "I'm 29 and originally from Cork", "I'm 45, divorced", "I have a cat called Mochi and a
    hamster called Bean" (not "Kraków, Poland": a name after a comma goes with the one before)."""
    subject = re.match(r"^(i'm|i am|we're|we are|i|we)\s+(\w+)", clause, re.I)
    if subject is None:
        return None
    splits = re.finditer(r",?\s+and\s+|,\s+(?=[a-z])", clause)
    for match in itertools.islice(splits, MAX_SPLITS):  # a long list is read whole, not split
        left, right = clause[: match.start()], clause[match.end() :]
        first = _specific(left)
        if not first:
            continue
        for prefix in (subject.group(1), f"{subject.group(1)} {subject.group(2)}"):
            if clauses.skip_reason(f"{prefix} {right}", assistant=False) is not None:
                return first  # "I live in Paris and love it": the rest says nothing
            second = _specific(f"{prefix} {right}")
            if second and _complements(first[-1], second[0]):
                return first + second
    return None


def _complements(a: Statement, b: Statement) -> bool:
    ka, kb = fact_key(a.text), fact_key(b.text)
    if ka is None or kb is None or a.negated or b.negated:
        return False
    kind_a, kind_b = ka.name.split(":")[0], kb.name.split(":")[0]
    return kind_a != kind_b or kind_a == "named"


_NEGATION = m(
    r"^i (?:do not|don't|no longer|don't really|never) (\w+)\s+(.+?)(?:\s+(?:anymore|any more))?$"
)
_NEG_STOPPED = m(r"^i(?:'ve| have)? (?:stopped|quit|gave up|given up|quitted) (\w+ing)\b\s*(.*)$")
_NEG_JOB = m(r"^i (?:quit|left) my job (?:at|with) (.+)$")
_NEG_STATE = m(r"^i(?:'m| am) (?:no longer|not) (.+?)(?:\s+(?:anymore|any more))?$")
_EXPLICIT = m(r"\b(?:anymore|any more|no longer)\b")


def _negation(clause: str) -> list[Statement] | None:
    explicit = _EXPLICIT.search(clause)
    match = _NEGATION.match(clause)
    if match and explicit:
        text = clean(f"{third_person(match.group(1).lower())} {untimed(match.group(2))}")
        return [Statement(re.sub(r"^Works for ", "Works at ", text), True)]
    match = _NEG_STOPPED.match(clause)
    if match:
        verb = third_person(ing_base(match.group(1).lower()))
        return [Statement(clean(f"{verb} {untimed(match.group(2))}"), True)]
    match = _NEG_JOB.match(clause)
    if match:
        return [Statement(f"Works at {tail(match.group(1))}", True)]
    match = _NEG_STATE.match(clause)
    if match and explicit:
        state = tail(match.group(1))
        job = re.match(r"^(?:a|an) (.+)$", state)
        if job and job.group(1).lower() in JOBS:
            return [Statement(_works_as(job.group(1)), True)]
        return [Statement(f"Is {state}", True)]
    return None


_JOB_END = m(
    r"^i (?:was |got |have been |'ve been )?(?:laid off|fired|let go|made redundant|sacked)\b"
    r"|^i (?:lost|quit|left) my job\b(?! (?:at|with))|^i (?:retired|resigned)\b"
)
_OWN_END = m(
    r"^(?:i|we)(?:'ve| have)? (?:sold|lost|gave away|given away|got rid of|crashed|totaled|"
    r"totalled|wrecked|returned|cancell?ed|ended|terminated|closed|gave up) (?:my|our|the) (.+)$"
)
_LOVE_END = m(r"^(?:i|we) (?:broke up|split up|separated|got divorced|divorced)\b(.*)$")
DEATH = m(r"\b(?:passed away|died|was put down|was put to sleep)\b")
_ROMANTIC = ("girlfriend", "boyfriend", "partner", "wife", "husband", "fiance", "fiancee")
_SWITCH = m(r"^i (?:switched|changed|moved over|converted) (?:from (.+?) )?to (.+)$")


KNOWN_REL = alternation(PEOPLE | PETS)


def _ending(clause: str) -> list[Statement] | None:
    """Events that end a stored fact: the event replaces it."""
    event = generic(clause)
    if event is None:
        return None
    if _JOB_END.match(clause):
        return [Statement(event, replaces=("key:employer",))]
    match = _OWN_END.match(clause)
    if match:
        return [Statement(event, replaces=tuple(untimed(match.group(1)).lower().split()))]
    match = _LOVE_END.match(clause)
    if match:
        names = tuple(n for n in re.findall(NAME_WORD, match.group(1)) if not CALENDAR.match(n))
        said = tuple(w for w in _ROMANTIC if re.search(rf"\b{w}\b", clause, re.I))
        return [Statement(event, replaces=names or said or ("key:status",))]
    match = re.match(rf"^my ((?i:{KNOWN_REL}))\b", clause, re.I)
    if match and DEATH.search(clause):
        return [Statement(event, replaces=(match.group(1).lower(),))]
    match = _SWITCH.match(clause)
    if match:
        return [Statement(event, replaces=_switched_from(match.group(1), match.group(2)))]
    return None


def _switched_from(old: str | None, new: str) -> tuple[str, ...]:
    """What a switch replaces: the old thing if said, else the context ("to Linux at home" ->
    the stored fact about "home")."""
    if old:
        return tuple(old.lower().split())
    context = re.match(r"^\S+(?: \S+)?? (?:at|for|on|in) (.+)$", untimed(new))
    return tuple(w for w in context.group(1).lower().split() if len(w) > 2) if context else ()


_NAME = m(
    r"^(?:(?:my )?name is|(?:my )?name's|i'm|i am|(?:please |you can )?call me) "
    rf"({NAME_WORD}(?: {NAME_WORD})?)$"
)
_APPOSITION = re.compile(rf"^(?i:i'm|i am) ({NAME_WORD}), (?:(?:a|an|the|your) .+)$")


def _name(clause: str) -> list[Statement] | None:
    clause = TRAILING.sub("", clause)
    match = _NAME.match(clause) or _APPOSITION.match(clause)
    if match and match.group(1)[0].isupper() and match.group(1).lower() not in JOBS | DIETS:
        found = [Statement(f"Name is {match.group(1)}")]
        role = re.match(r"^[^,]+, ((?:a|an|the) .+)$", clause)
        if role is not None:
            found.append(Statement(clean(f"Is {role.group(1)}")))
        return found
    return None


_MOVED = m(
    r"^(?:i|we) (?:recently |finally )?(?:moved|relocated) to (.+?)"
    r"(?:\s+(?:last|this|in) \w+|\s+recently|\s+yesterday|\s+today)?$"
)
_LIVE = m(r"^(?:i|we) (?:still |currently )?live in (.+)$")
_BASED = m(r"^(?:i|we)(?:'m| am|'re| are) (?:currently )?based in (.+)$")
_ORIGIN = m(r"^i(?:'m| am) (?:originally )?from (.+)$")
_AGE = m(r"^i(?:'m| am) (\d{1,3})(?: years old| years of age| yo)?$")
_ALONG = m(
    r"^(.+?)\s+(?:with (?P<with>.+)|for (?:a |my )?(?:new )?job (?:at|with) (?P<job>.+)"
    r"|for work|because .+|to be (?:closer|near) .+)$"
)


def _place(clause: str) -> list[Statement] | None:
    clause = TRAILING.sub("", clause)
    for pattern in (_MOVED, _LIVE, _BASED):
        match = pattern.match(clause)
        if match:
            return _located(match.group(1))
    match = _ORIGIN.match(clause)
    if match:
        return [Statement(f"Is from {tail(match.group(1))}")]
    match = _AGE.match(clause)
    if match:
        return [Statement(f"Is {match.group(1)} years old")]
    return None


def _located(place: str) -> list[Statement]:
    """ "Cape Town with my wife Thandi and our two dogs": the place, then who comes along and
    the job the move is for."""
    along = _ALONG.match(place)
    if along is None:
        return [Statement(f"Lives in {tail(place)}")]
    found = [Statement(f"Lives in {tail(along.group(1))}")]
    if along.group("job"):
        found.append(Statement(f"Works at {tail(along.group('job'))}"))
    for part in re.split(r",\s*|\s+and\s+", along.group("with") or ""):
        named = re.match(rf"^(?:my|our) ([a-z ]+?) ({NAME_WORD})$", part.strip())
        counted = re.match(r"^(?:my|our) ((?:two|three|four|five|six|\d+) [a-z ]+)$", part.strip())
        if named:
            found.append(Statement(f"Has a {named.group(1)} named {named.group(2)}"))
        elif counted:
            found.append(Statement(f"Has {counted.group(1)}"))
    return found


_WORK_AS_AT = m(r"^i work (?:at|for) (.+?) as (?:a |an )?(.+)$")
_WORK_AT = m(
    r"^i(?: work|'m working| am working|'m employed| am employed|'ve been working| have been "
    r"working) (?:at|for|by) (.+)$"
)
_NEW_JOB = m(
    r"^i(?:'ve| have)? (?:started|got|took|landed|accepted|begun|began) (?:a |my )?(?:new )?"
    r"(?:job|position|role) (?:at|with) (.+)$"
)
_EMPLOYER = m(r"^my (?:new )?(?:employer|company) is (.+)$")
_WORK_AS = m(r"^i(?: work|'m working| am working) as (?:a |an )?(.+)$")
_BECAME = m(
    r"^i(?:'ve| have)? (?:became|become|retrained as|qualified as|trained as|'m now|am now) "
    r"(?:a |an )?(.+)$"
)
_I_AM_A = m(r"^i(?:'m| am) (?:a|an) (.+)$")


def _work(clause: str) -> list[Statement] | None:
    clause = TRAILING.sub("", clause)
    match = _WORK_AS_AT.match(clause)
    if match:
        return [
            Statement(f"Works at {tail(match.group(1))}"),
            Statement(_works_as(match.group(2))),
        ]
    for pattern in (_WORK_AT, _NEW_JOB, _EMPLOYER):
        match = pattern.match(clause)
        if match:
            return [Statement(f"Works at {tail(match.group(1))}")]
    match = _WORK_AS.match(clause)
    if match:
        return [Statement(_works_as(match.group(1)))]
    match = _BECAME.match(clause)
    if match and match.group(1).lower() not in PEOPLE | DIETS | STATUSES:
        job = re.sub(TIME, "", f" {match.group(1)}").strip()
        if any(job.lower().startswith(j) for j in JOBS) or clause.lower().split()[1] != "became":
            return [Statement(_works_as(job))]
    match = _I_AM_A.match(clause)
    if match and any(match.group(1).lower().startswith(job) for job in JOBS):
        return [Statement(_works_as(match.group(1)))]
    return None


def _works_as(job: str) -> str:
    job = tail(job)
    article = "an" if job[:1].lower() in "aeiou" else "a"
    return f"Works as {article} {job}"


_WHEN = r"(?:\s+(?:this|last|next|since|in|for|from|again|now|these|nowadays|recently)\b.*)?$"
_DIET = m(
    r"^i(?:'m| am|'ve| have)? ?(?:turned |become |became |gone |went |now |fully |strictly )?"
    r"(?:a |an )?(" + alternation(DIETS) + ")" + _WHEN
)
_STATUS = m(
    r"^(?:i|we)(?:'m| am|'re| are| got| have got|'ve got| recently got)? ?("
    + alternation(STATUSES)
    + ")"
    + _WHEN
)
_ALLERGIC = m(r"^i(?:'m| am) (?:also |very |severely )?allergic to (.+)$")
_ALLERGY = m(r"^i have (?:a|an) (.+?) allergy$")


def _health(clause: str) -> list[Statement] | None:
    match = _DIET.match(clause)
    if match:
        return [Statement(f"Is {match.group(1).lower()}")]
    match = _STATUS.match(clause)
    if match:
        return [Statement(f"Is {match.group(1).lower()}")]
    match = _ALLERGIC.match(clause) or _ALLERGY.match(clause)
    if match:
        return [Statement(f"Is allergic to {tail(match.group(1))}")]
    return None


_FAVORITE = m(r"^my (?:all[- ]time )?favou?rite (\w+(?: \w+)?) is (.+)$")
_FAVORITE_REV = m(r"^(.+?) (?:is|are) my (?:all[- ]time )?favou?rite (\w+(?: \w+)?)$")
_PREFERENCE = m(
    r"^i (?:(?:also|still) )*(love|like|enjoy|adore|hate|dislike|prefer|detest)s? (.+)$"
)
_NOT_FAN = m(r"^i(?:'m| am) not (?:a |really a )?(?:big |huge |great )?fan of (.+)$")
_CANT_STAND = m(r"^i (?:can't|cannot|can not) stand (.+)$")
_DONT_LIKE = m(r"^i (?:don't|do not) (?:like|enjoy) (.+)$")
_PREFERENCE_VERB = {"love": "Loves", "like": "Likes", "enjoy": "Enjoys", "adore": "Adores",
                    "hate": "Hates", "dislike": "Dislikes", "prefer": "Prefers",
                    "detest": "Hates"}  # fmt: skip


def _taste(clause: str) -> list[Statement] | None:
    clause = TRAILING.sub("", clause)
    match = _FAVORITE.match(clause)
    if match:
        return [Statement(f"Favorite {match.group(1).lower()} is {tail(match.group(2))}")]
    match = _FAVORITE_REV.match(clause)
    if match and not clauses.about_speaker(match.group(1)):
        return [Statement(f"Favorite {match.group(2).lower()} is {lower_first(match.group(1))}")]
    for pattern in (_NOT_FAN, _CANT_STAND, _DONT_LIKE):
        match = pattern.match(clause)
        if match:
            return [Statement(f"Dislikes {tail(match.group(1))}")]
    match = _PREFERENCE.match(clause)
    if match:
        return [Statement(f"{_PREFERENCE_VERB[match.group(1).lower()]} {tail(match.group(2))}")]
    return None


_REL = alternation(RELATIVES)
_PET = alternation(PETS)
_RELATIVE_NAMED = m(rf"^my ({_REL})(?:'s name is| is called| is named) ({NAME_WORD})$")
_RELATIVE_DOES = m(rf"^my ({_REL}),? ({NAME_WORD}),? (.+)$")
_PET_HAVE = re.compile(
    r"^(?i:i|we)(?i:'ve| have)? (?i:have|adopted|got|own|rescued|bought|took in) (?i:a|an) "
    rf"(?i:new )?([a-z][a-z -]{{1,30}}?) (?i:named|called) ({NAME_WORD})$"
)
_WHO = re.compile(
    rf"^(?i:i|we) (?i:have|'ve got|have got) (?i:a|an) ([a-z][a-z -]{{1,30}}?),? ({NAME_WORD}),? "
    r"(?i:who|which|that) (.+)$"
)
_PET_NAMED = m(rf"^my ({_PET})(?:'s name is| is called| is named) ({NAME_WORD})$")
_PET_DOES = m(rf"^my ({_PET}),? ({NAME_WORD}),? (.+)$")


def _people(clause: str) -> list[Statement] | None:
    match = _WHO.match(clause)
    if match:
        who, name, rest = match.group(1).lower(), match.group(2), match.group(3)
        return [
            Statement(f"Has a {who} named {name}"),
            Statement(f"{who.capitalize()} {name} {rest}"),
        ]
    for pattern in (_RELATIVE_NAMED, _PET_HAVE, _PET_NAMED):
        match = pattern.match(clause)
        if match and match.group(2)[0].isupper():
            return [Statement(f"Has a {match.group(1).lower()} named {match.group(2)}")]
    for pattern in (_RELATIVE_DOES, _PET_DOES):
        match = pattern.match(clause)
        if match and match.group(2)[0].isupper():
            who, name, rest = match.group(1).lower(), match.group(2), match.group(3)
            return [
                Statement(f"Has a {who} named {name}"),
                Statement(f"{who.capitalize()} {name} {rest}"),
            ]
    return None


_RECOGNISERS = (_negation, _ending, _name, _place, _work, _health, _taste, _people)
