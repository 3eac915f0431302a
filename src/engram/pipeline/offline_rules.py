"""Rules of the offline extractor: user statements in, canonical third-person facts out.

A user message is split into sentences and clauses; each clause that speaks about the user (first
person) is matched against recognisers for the common attributes (name, location, origin, age,
employer, job, diet, allergies, favourites, likes and dislikes, family, pets) and otherwise
rewritten generically ("I play guitar" -> "Plays guitar"). Relative dates are resolved against the
event date. Retractions ("I don't live in Paris anymore", "I quit my job at X") are marked negated.
Questions, greetings, filler and statements that are not about the user are skipped.

Canonical facts parse back into attribute keys (`fact_key`), which is how reconciliation compares a
new fact with stored ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engram.core.dates import resolve_relative_dates
from engram.core.messages import Message

_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+")
_CLAUSES = re.compile(r",?\s+(?:but|and|so)\s+(?=(?:i|i'm|i've|i'll|my|we|we're)\b)", re.I)
_TAG = re.compile(r",?\s*(?:remember|right|you know|ok|okay)\?$", re.I)
_LEAD = re.compile(
    r"^(?:(?:hi|hello|hey|well|so|honestly|also|oh|btw|by the way|anyway|ok|okay|yeah|yes|and|but"
    r"|guess what|fun fact|these days|nowadays|currently|right now)\b[,!]?\s*)+",
    re.I,
)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|thanks|thank you|ok|okay|sure|bye|goodbye|good (?:morning|night|evening)"
    r"|great|cool|nice|awesome|wow)\b",
    re.I,
)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'll|i'd|me|my|mine|we|we're|we've|our)\b", re.I)
_NAME_WORD = r"[A-Z][\w'-]+"

JOBS = {
    "nurse", "teacher", "doctor", "engineer", "developer", "designer", "lawyer", "student",
    "accountant", "architect", "chef", "cook", "barista", "pilot", "scientist", "researcher",
    "writer", "journalist", "photographer", "artist", "musician", "manager", "consultant",
    "analyst", "programmer", "firefighter", "police officer", "pharmacist", "dentist",
    "therapist", "electrician", "plumber", "mechanic", "farmer", "librarian", "professor",
    "software engineer", "data scientist", "data analyst", "product manager", "web developer",
    "graphic designer", "social worker", "veterinarian", "vet", "paramedic", "surgeon",
}  # fmt: skip
DIETS = {"vegetarian", "vegan", "pescatarian", "keto", "gluten-free", "lactose-free", "halal",
         "kosher", "paleo"}  # fmt: skip
RELATIVES = {"sister", "brother", "wife", "husband", "partner", "son", "daughter", "mom",
             "mother", "dad", "father", "girlfriend", "boyfriend", "fiance", "fiancee", "grandma",
             "grandmother", "grandpa", "grandfather", "aunt", "uncle", "cousin", "niece",
             "nephew", "friend", "best friend", "roommate", "boss"}  # fmt: skip
PETS = {"dog", "cat", "puppy", "kitten", "parrot", "rabbit", "bunny", "hamster", "fish", "horse",
        "turtle", "snake", "bird", "guinea pig"}  # fmt: skip
_PAST = {"went", "got", "made", "took", "saw", "met", "bought", "had", "did", "ran", "came",
         "began", "left", "found", "gave", "knew", "thought", "told", "became", "sold", "wrote",
         "ate", "drank", "lost", "won", "paid", "spent", "built", "taught", "caught", "brought",
         "quit", "read", "felt", "kept", "heard", "flew", "drove", "swam", "sang", "broke"}  # fmt: skip
_KEEP_ADVERBS = {"usually", "often", "always", "never", "sometimes", "still", "recently",
                 "finally", "rarely", "mostly"}  # fmt: skip
_DROP_ADVERBS = {"just", "also", "really", "actually", "totally", "absolutely", "definitely",
                 "honestly", "literally", "kind of", "sort of"}  # fmt: skip
_TRAILING = re.compile(
    r"\s+(?:now|these days|nowadays|anymore|any more|from now on|a lot|so much|very much)$", re.I
)


@dataclass(frozen=True, slots=True)
class Statement:
    text: str  # canonical fact
    negated: bool = False  # a retraction: remove the stored fact with the same key


def extract_statements(messages: list[Message], today: str) -> list[Statement]:
    """Canonical facts from the user's messages (every non-system one if none is the user's)."""
    sources = [m for m in messages if m.role == "user"] or [
        m for m in messages if m.role not in ("system", "assistant")
    ]
    out: list[Statement] = []
    seen: set[str] = set()
    for message in sources:
        for sentence in _SENTENCES.split(message.content):
            for clause in _clauses(sentence):
                for statement in _recognise(clause, today):
                    if statement.text.lower() not in seen:
                        seen.add(statement.text.lower())
                        out.append(statement)
    return out


def _clauses(sentence: str) -> list[str]:
    text = _TAG.sub("", sentence.strip()).strip()
    if not text or text.endswith("?"):
        return []
    text = text.strip(" \t\"'").rstrip(".!;")
    return [c.strip(" ,") for c in _CLAUSES.split(text) if c.strip(" ,")]


def _recognise(clause: str, today: str) -> list[Statement]:
    clause = _LEAD.sub("", clause).strip(" ,")
    if not clause or (_GREETING.match(clause) and len(clause.split()) <= 4):
        return []
    if not _FIRST_PERSON.search(clause):
        return []  # not about the user: general knowledge or chatter about others
    for recogniser in _RECOGNISERS:
        found = recogniser(clause)
        if found is not None:
            return [Statement(resolve_relative_dates(s.text, today), s.negated) for s in found]
    generic = _generic(clause)
    return [Statement(resolve_relative_dates(generic, today))] if generic else []


# -- recognisers: each returns statements or None ----------------------------------------------


def _m(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


_NEGATION = _m(
    r"^i (?:do not|don't|no longer|don't really) (live in|work at|work for|have|own|play|like|love|"
    r"eat|drink|do)\s+(.+?)(?:\s+(?:anymore|any more))?$"
)
_NEG_STOPPED = _m(r"^i (?:stopped|quit|gave up) (playing|eating|drinking|doing|learning) (.+)$")
_NEG_JOB = _m(r"^i (?:quit|left) my job (?:at|with) (.+)$")
_NEG_STATE = _m(
    r"^i(?:'m| am) (?:no longer|not) (allergic to .+|"
    + "|".join(DIETS)
    + r")(?:\s+(?:anymore|any more))?$"
)
_NEG_VERB = {"live in": "Lives in", "work at": "Works at", "work for": "Works at", "have": "Has",
             "own": "Owns", "play": "Plays", "like": "Likes", "love": "Likes", "eat": "Eats",
             "drink": "Drinks", "do": "Does", "playing": "Plays", "eating": "Eats",
             "drinking": "Drinks", "doing": "Does", "learning": "Is learning"}  # fmt: skip


def _negation(clause: str) -> list[Statement] | None:
    explicit = re.search(r"\b(?:anymore|any more|no longer)\b", clause, re.I) or _NEG_STOPPED.match(
        clause
    )
    match = _NEGATION.match(clause)
    if match and explicit:
        return [Statement(f"{_NEG_VERB[match.group(1).lower()]} {_tail(match.group(2))}", True)]
    match = _NEG_STOPPED.match(clause)
    if match:
        return [Statement(f"{_NEG_VERB[match.group(1).lower()]} {_tail(match.group(2))}", True)]
    match = _NEG_JOB.match(clause)
    if match:
        return [Statement(f"Works at {_tail(match.group(1))}", True)]
    match = _NEG_STATE.match(clause)
    if match and (explicit or "no longer" in clause.lower()):
        return [Statement(f"Is {match.group(1)}", True)]
    return None


_NAME = _m(
    rf"^(?:my name is|my name's|i'm|i am|(?:please |you can )?call me) ({_NAME_WORD}(?: {_NAME_WORD})?)$"
)


def _name(clause: str) -> list[Statement] | None:
    match = _NAME.match(_TRAILING.sub("", clause))
    if match and match.group(1)[0].isupper() and match.group(1).lower() not in JOBS | DIETS:
        return [Statement(f"Name is {match.group(1)}")]
    return None


_MOVED = _m(
    r"^(?:i|we) (?:just |recently |finally )?(?:moved|relocated) to (.+?)(?:\s+(?:last|this|in) \w+|\s+recently|\s+yesterday|\s+today)?$"
)
_LIVE = _m(r"^(?:i|we) (?:still |currently )?live in (.+)$")
_BASED = _m(r"^i(?:'m| am) (?:currently )?based in (.+)$")
_ORIGIN = _m(r"^i(?:'m| am) (?:originally )?from (.+)$")
_AGE = _m(r"^i(?:'m| am) (\d{1,3})(?: years old| years of age| yo)?$")


def _place(clause: str) -> list[Statement] | None:
    clause = _TRAILING.sub("", clause)
    for pattern in (_MOVED, _LIVE, _BASED):
        match = pattern.match(clause)
        if match:
            return [Statement(f"Lives in {_tail(match.group(1))}")]
    match = _ORIGIN.match(clause)
    if match:
        return [Statement(f"Is from {_tail(match.group(1))}")]
    match = _AGE.match(clause)
    if match:
        return [Statement(f"Is {match.group(1)} years old")]
    return None


_WORK_AS_AT = _m(r"^i work (?:at|for) (.+?) as (?:a |an )?(.+)$")
_WORK_AT = _m(r"^i (?:work|am working|'m working) (?:at|for) (.+)$")
_NEW_JOB = _m(r"^i (?:started|got|took) (?:a )?(?:new )?job (?:at|with) (.+)$")
_EMPLOYER = _m(r"^my (?:new )?(?:employer|company) is (.+)$")
_WORK_AS = _m(r"^i (?:work|am working|'m working) as (?:a |an )?(.+)$")
_I_AM_A = _m(r"^i(?:'m| am) (?:a|an) (.+)$")


def _work(clause: str) -> list[Statement] | None:
    clause = _TRAILING.sub("", clause)
    match = _WORK_AS_AT.match(clause)
    if match:
        return [
            Statement(f"Works at {_tail(match.group(1))}"),
            Statement(_works_as(match.group(2))),
        ]
    for pattern in (_WORK_AT, _NEW_JOB, _EMPLOYER):
        match = pattern.match(clause)
        if match:
            return [Statement(f"Works at {_tail(match.group(1))}")]
    match = _WORK_AS.match(clause)
    if match:
        return [Statement(_works_as(match.group(1)))]
    match = _I_AM_A.match(clause)
    if match and any(match.group(1).lower().startswith(job) for job in JOBS):
        return [Statement(_works_as(match.group(1)))]
    return None


def _works_as(job: str) -> str:
    job = _tail(job)
    article = "an" if job[:1].lower() in "aeiou" else "a"
    return f"Works as {article} {job}"


_DIET = _m(
    r"^i(?:'m| am|'ve| have)? ?(?:turned |become |gone |now |fully |strictly )?("
    + "|".join(DIETS)
    + r")(?:\s+(?:this year|now|since .+))?$"
)
_ALLERGIC = _m(r"^i(?:'m| am) (?:also |very |severely )?allergic to (.+)$")
_ALLERGY = _m(r"^i have (?:a|an) (.+?) allergy$")


def _health(clause: str) -> list[Statement] | None:
    match = _DIET.match(clause)
    if match:
        return [Statement(f"Is {match.group(1).lower()}")]
    match = _ALLERGIC.match(clause) or _ALLERGY.match(clause)
    if match:
        return [Statement(f"Is allergic to {_tail(match.group(1))}")]
    return None


_FAVORITE = _m(r"^my (?:all[- ]time )?favou?rite (\w+(?: \w+)?) is (.+)$")
_FAVORITE_REV = _m(r"^(.+?) is my (?:all[- ]time )?favou?rite (\w+(?: \w+)?)$")
_PREFERENCE = _m(
    r"^i (?:(?:really|absolutely|actually|also|totally|just|kind of|sort of|still) )*"
    r"(love|like|enjoy|adore|hate|dislike|prefer|detest)s? (.+)$"
)
_NOT_FAN = _m(r"^i(?:'m| am) not (?:a |really a )?(?:big |huge |great )?fan of (.+)$")
_CANT_STAND = _m(r"^i (?:can't|cannot|can not) stand (.+)$")
_DONT_LIKE = _m(r"^i (?:don't|do not) (?:really )?(?:like|enjoy) (.+)$")
_PREFERENCE_VERB = {"love": "Loves", "like": "Likes", "enjoy": "Enjoys", "adore": "Adores",
                    "hate": "Hates", "dislike": "Dislikes", "prefer": "Prefers",
                    "detest": "Hates"}  # fmt: skip


def _taste(clause: str) -> list[Statement] | None:
    clause = _TRAILING.sub("", clause)
    match = _FAVORITE.match(clause)
    if match:
        return [Statement(f"Favorite {match.group(1).lower()} is {_tail(match.group(2))}")]
    match = _FAVORITE_REV.match(clause)
    if match and _FIRST_PERSON.search(match.group(2)) is None:
        return [Statement(f"Favorite {match.group(2).lower()} is {_lower_first(match.group(1))}")]
    for pattern in (_NOT_FAN, _CANT_STAND, _DONT_LIKE):
        match = pattern.match(clause)
        if match:
            return [Statement(f"Dislikes {_tail(match.group(1))}")]
    match = _PREFERENCE.match(clause)
    if match:
        return [Statement(f"{_PREFERENCE_VERB[match.group(1).lower()]} {_tail(match.group(2))}")]
    return None


_REL = "|".join(sorted(RELATIVES, key=len, reverse=True))
_PET = "|".join(sorted(PETS, key=len, reverse=True))
_RELATIVE_NAMED = _m(rf"^my ({_REL})(?:'s name is| is called| is named) ({_NAME_WORD})$")
_RELATIVE_DOES = _m(rf"^my ({_REL}),? ({_NAME_WORD}),? (.+)$")
_PET_HAVE = _m(
    rf"^(?:i|we) (?:have|adopted|got|own) (?:a|an) (?:new )?({_PET}) (?:named|called) ({_NAME_WORD})$"
)
_PET_NAMED = _m(rf"^my ({_PET})(?:'s name is| is called| is named) ({_NAME_WORD})$")
_PET_DOES = _m(rf"^my ({_PET}),? ({_NAME_WORD}),? (.+)$")


def _people(clause: str) -> list[Statement] | None:
    for pattern, kind in ((_RELATIVE_NAMED, ""), (_PET_HAVE, ""), (_PET_NAMED, "")):
        match = pattern.match(clause)
        if match and match.group(2)[0].isupper():
            del kind
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


_RECOGNISERS = (_negation, _name, _place, _work, _health, _taste, _people)


# -- the generic first-person rewrite ----------------------------------------------------------

_OPENINGS: list[tuple[re.Pattern[str], str]] = [
    (_m(r"^(?:i'm|i am|we're|we are)\s+"), "Is "),
    (_m(r"^(?:i've|i have|we've|we have)\s+been\s+"), "Has been "),
    (_m(r"^(?:i've|we've)\s+"), "Has "),
    (_m(r"^(?:i|we) have\s+"), "Has "),
    (_m(r"^(?:i'll|i will|we'll|we will)\s+"), "Will "),
    (_m(r"^(?:i'd|we'd) like\s+"), "Would like "),
    (_m(r"^(?:i|we) (?:don't|do not)\s+"), "Does not "),
    (_m(r"^(?:i|we) (?:didn't|did not)\s+"), "Did not "),
    (_m(r"^(?:i|we) (?:can't|cannot)\s+"), "Cannot "),
    (_m(r"^(?:i|we) can\s+"), "Can "),
    (_m(r"^(?:i|we) (?:was|were)\s+"), "Was "),
]
_SUBJECT = _m(r"^(?:i|we)\s+(.+)$")


def _generic(clause: str) -> str | None:
    if len(clause.split()) < 2:
        return None
    for pattern, replacement in _OPENINGS:
        if pattern.match(clause):
            rest = pattern.sub(replacement, clause, count=1)
            return _clean(rest)
    if re.match(r"^(?:my|our)\s+", clause, re.I):
        return _clean(re.sub(r"^(?:my|our)\s+", "", clause, flags=re.I))
    match = _SUBJECT.match(clause)
    if match is None:
        return None
    words = match.group(1).split()
    adverbs = []
    while words and words[0].lower() in _KEEP_ADVERBS | _DROP_ADVERBS:
        word = words.pop(0)
        if word.lower() in _KEEP_ADVERBS:
            adverbs.append(word)
    if not words or not words[0].isalpha():
        return None
    return _clean(" ".join([*adverbs, _third_person(words[0].lower()), *words[1:]]))


def _third_person(verb: str) -> str:
    if verb.endswith("ed") or verb in _PAST:
        return verb
    if verb in ("have", "be"):
        return {"have": "has", "be": "is"}[verb]
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if len(verb) > 2 and verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(" ,")
    return text[:1].upper() + text[1:]


def _tail(text: str) -> str:
    """A captured value without trailing filler or punctuation."""
    return _TRAILING.sub("", text.strip()).strip(" ,.!")


def _lower_first(text: str) -> str:
    word = text.split(" ", 1)[0]
    if word.isupper() or word.lower() in ("i",):
        return text
    return text[:1].lower() + text[1:]


# -- canonical facts back to attribute keys ---------------------------------------------------

_KEYED: list[tuple[re.Pattern[str], str]] = [
    (_m(r"^name is (.+)$"), "name"),
    (_m(r"^lives in (.+)$"), "location"),
    (_m(r"^is from (.+)$"), "origin"),
    (_m(r"^is (\d+) years old$"), "age"),
    (_m(r"^works at (.+)$"), "employer"),
    (_m(r"^works as (?:a |an )?(.+)$"), "job"),
    (_m(r"^is (" + "|".join(DIETS) + r")$"), "diet"),
]
_MULTI: list[tuple[re.Pattern[str], str]] = [
    (_m(r"^is allergic to (.+)$"), "allergy"),
    (_m(rf"^has an? ({_REL}|{_PET}) named (.+)$"), "named"),
    (_m(r"^plays (?:the )?(\w+)"), "plays"),
    (_m(r"^has (?:a |an |the )?(.+)$"), "has"),
    (_m(r"^(?:eats|drinks|owns|does) (.+)$"), "does"),
]
_FAV = _m(r"^favou?rite (.+?) is (.+)$")
_PREF = _m(r"^(loves|likes|enjoys|adores|prefers|hates|dislikes) (.+)$")


@dataclass(frozen=True, slots=True)
class Key:
    name: str  # attribute, with the object for per-object attributes ("pref:jazz")
    value: str  # the attribute's value, normalised; single-valued keys compare it
    single: bool
    display: str = ""  # the value as written (for entity names)


def fact_key(text: str) -> Key | None:
    """The attribute a canonical fact sets, if it is one of the recognised kinds."""
    text = text.strip().rstrip(".")
    for pattern, name in _KEYED:
        match = pattern.match(text)
        if match:
            return Key(name, _norm(match.group(1)), True, match.group(1).strip())
    match = _FAV.match(text)
    if match:
        value = match.group(2).strip()
        return Key(f"favorite:{_norm(match.group(1))}", _norm(value), True, value)
    match = _PREF.match(text)
    if match:
        polarity = "-" if match.group(1).lower() in ("hates", "dislikes") else "+"
        return Key(f"pref:{_norm(match.group(2))}", polarity, True, match.group(2).strip())
    for pattern, name in _MULTI:
        match = pattern.match(text)
        if match:
            raw = " ".join(g for g in match.groups() if g)
            return Key(f"{name}:{_norm(raw)}", _norm(raw), False, raw.strip())
    return None


def _norm(text: str) -> str:
    text = re.sub(r"^(?:the|a|an)\s+", "", text.strip().lower())
    return re.sub(r"[^\w\s-]", "", text).strip()
