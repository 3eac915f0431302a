"""What the offline rules know about canonical facts: the words they recognise, the attribute a fact
sets (`fact_key`), and when two facts cannot both be true (`conflicts`).

A fact's key is how reconciliation finds the stored fact a new one is about: the same single-valued
attribute (location, employer, diet, a like or dislike of one thing) with another value replaces
it. Beyond keys, a new fact conflicts with a stored one when one states the opposite of the other
("Does not eat meat" / "Eats meat"), when a diet excludes a food the other says the person eats or
likes ("Is vegetarian" / "Loves steak"), or when both are preferences between alternatives of the
same kind ("Prefers tea in the morning" / "Prefers coffee in the morning").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engram.core.text import STOPWORDS

JOBS = {
    "nurse", "teacher", "doctor", "engineer", "developer", "designer", "lawyer", "student",
    "accountant", "architect", "chef", "cook", "barista", "pilot", "scientist", "researcher",
    "writer", "journalist", "photographer", "artist", "musician", "manager", "consultant",
    "analyst", "programmer", "firefighter", "police officer", "pharmacist", "dentist",
    "therapist", "electrician", "plumber", "mechanic", "farmer", "librarian", "professor",
    "software engineer", "data scientist", "data analyst", "product manager", "web developer",
    "graphic designer", "social worker", "veterinarian", "vet", "paramedic", "surgeon",
    "midwife", "carpenter", "translator", "interpreter", "tutor", "cashier", "waiter", "waitress",
    "receptionist", "secretary", "soldier", "driver", "courier", "baker", "butcher",
    "hairdresser", "barber", "cleaner", "caregiver", "carer", "nanny", "editor", "producer",
    "actor", "actress", "dancer", "singer", "coach", "personal trainer", "banker", "economist",
    "entrepreneur", "founder", "intern", "optometrist", "psychologist", "psychiatrist",
    "physiotherapist", "physical therapist", "radiologist", "biologist", "chemist",
    "physicist", "mathematician", "statistician", "auditor", "realtor", "recruiter",
    "copywriter", "ux designer", "ui designer", "illustrator", "animator", "game developer",
    "sysadmin", "devops engineer", "lecturer", "postdoc", "phd student", "teaching assistant",
    "principal", "judge", "paralegal", "attorney", "solicitor", "welder", "tailor",
    "software developer", "civil engineer", "project manager", "sales manager", "salesperson",
    "marketing manager", "flight attendant", "security guard", "gardener",
}  # fmt: skip
DIETS = {"vegetarian", "vegan", "pescatarian", "keto", "gluten-free", "lactose-free", "halal",
         "kosher", "paleo", "dairy-free"}  # fmt: skip
STATUSES = {"single", "married", "engaged", "divorced", "widowed", "separated",
            "in a relationship"}  # fmt: skip
RELATIVES = {"sister", "brother", "wife", "husband", "partner", "son", "daughter", "mom",
             "mother", "dad", "father", "girlfriend", "boyfriend", "fiance", "fiancee", "grandma",
             "grandmother", "grandpa", "grandfather", "aunt", "uncle", "cousin", "niece",
             "nephew", "friend", "best friend", "roommate", "boss"}  # fmt: skip
PETS = {"dog", "cat", "puppy", "kitten", "parrot", "rabbit", "bunny", "hamster", "fish", "horse",
        "turtle", "snake", "bird", "guinea pig"}  # fmt: skip
PEOPLE = RELATIVES | {"colleague", "coworker", "co-worker", "neighbour", "neighbor", "classmate",
                      "teammate", "flatmate", "housemate", "kid", "child", "baby", "stepson",
                      "stepdaughter", "grandson", "granddaughter", "ex"}  # fmt: skip

# Foods by kind, and the kinds each diet excludes.
_FOODS = {
    "meat": {"meat", "steak", "beef", "pork", "chicken", "bacon", "ham", "lamb", "burger",
             "hamburger", "sausage", "turkey", "veal", "salami", "rib", "ribeye", "brisket",
             "meatball", "hot dog", "pepperoni", "duck", "venison", "chorizo", "prosciutto",
             "kebab", "mutton", "barbecue", "bbq", "wing", "nugget", "jerky"},
    "fish": {"fish", "salmon", "tuna", "cod", "sushi", "sashimi", "shrimp", "prawn", "seafood",
             "shellfish", "lobster", "crab", "oyster", "mussel", "anchovy", "anchovies",
             "sardine", "calamari", "squid", "trout", "mackerel"},
    "dairy": {"cheese", "milk", "butter", "yogurt", "yoghurt", "cream", "ice cream", "dairy",
              "brie", "cheddar", "mozzarella", "parmesan", "feta", "latte", "cappuccino"},
    "eggs": {"egg", "omelette", "omelet"},
    "honey": {"honey"},
}  # fmt: skip
_EXCLUDES = {
    "vegetarian": {"meat", "fish"},
    "vegan": {"meat", "fish", "dairy", "eggs", "honey"},
    "pescatarian": {"meat"},
    "lactose-free": {"dairy"},
    "dairy-free": {"dairy"},
}


def _m(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


def alternation(words: set[str]) -> str:
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


_REL = alternation(RELATIVES)
_PET = alternation(PETS)

# -- canonical facts back to attribute keys ---------------------------------------------------

_KEYED: list[tuple[re.Pattern[str], str]] = [
    (_m(r"^name is (.+)$"), "name"),
    (_m(r"^lives in (.+)$"), "location"),
    (_m(r"^is from (.+)$"), "origin"),
    (_m(r"^is (\d+) years old$"), "age"),
    (_m(r"^works at (.+)$"), "employer"),
    (_m(r"^works as (?:a |an )?(.+)$"), "job"),
    (_m(r"^is (?:a |an )?(" + alternation(DIETS) + r")$"), "diet"),
    (_m(r"^is (" + alternation(STATUSES) + r")$"), "status"),
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


# -- content words ------------------------------------------------------------------------------

_WORD = re.compile(r"[\w'-]+")
_NEGATIONS = {"not", "no", "never", "cannot", "nor"}
_AUXILIARIES = {"is", "are", "am", "was", "were", "does", "do", "did", "has", "have", "had",
                "can", "will", "would", "currently", "still", "usually", "really"}  # fmt: skip


def stem(word: str) -> str:
    """A light stem, enough to see "plays" / "playing" / "played" as one word."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: -len(suffix)] + keep
            if suffix in ("ing", "ed") and len(word) > 3 and word[-1] == word[-2]:
                word = word[:-1]  # stopped -> stop
            return word
    return word


def words(text: str) -> list[str]:
    return [w.strip("'-").removesuffix("'s") for w in _WORD.findall(text.lower())]


def content(text: str) -> frozenset[str]:
    """The stems of a fact's content words: no function words, auxiliaries or negations."""
    return frozenset(
        stem(w)
        for w in words(text)
        if w and w not in STOPWORDS and w not in _AUXILIARIES and not w.endswith("n't")
    )


_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december"}  # fmt: skip


def anchors(text: str) -> frozenset[str]:
    """A fact's numbers, dates and month names."""
    return frozenset(w for w in words(text) if any(c.isdigit() for c in w) or w in _MONTHS)


def negative(text: str) -> bool:
    return any(w in _NEGATIONS or w.endswith("n't") for w in words(text))


# -- conflicts ---------------------------------------------------------------------------------

_CONSUMES = _m(
    r"^(?:(?:usually|often|always|still|mostly|now|also) )*(?:eats|loves|likes|enjoys|adores|"
    r"prefers|drinks|cooks|has started eating|started eating|is eating|is back to eating|"
    r"favou?rite (?:food|dish|meal|snack|drink) is)\s+(.+)$"
)


def foods(text: str) -> set[str]:
    """The kinds of food a fact says the person eats or likes ("Loves steak" -> {"meat"})."""
    match = _CONSUMES.match(text.strip())
    if match is None or negative(text):
        return set()
    said = " ".join(words(match.group(1)))
    found = set()
    for kind, names in _FOODS.items():
        for name in names:
            if re.search(rf"\b{re.escape(name)}(?:e?s)?\b", said):
                found.add(kind)
    return found


def _diet(key: Key | None) -> str | None:
    return key.value if key is not None and key.name == "diet" else None


def conflicts(new: str, stored: str) -> bool:
    """Whether `new` contradicts `stored` other than by setting the same key."""
    new_key, stored_key = fact_key(new), fact_key(stored)
    diet = _diet(new_key)
    if diet is not None and foods(stored) & _EXCLUDES.get(diet, set()):
        return True
    diet = _diet(stored_key)
    if diet is not None and foods(new) & _EXCLUDES.get(diet, set()):
        return True
    if negative(new) != negative(stored) and content(new) and content(new) == content(stored):
        return True
    return _same_choice(new, stored)


def _same_choice(new: str, stored: str) -> bool:
    """Two preferences between alternatives of one kind: "Prefers window seats" / "Prefers
    aisle seats" share the kind ("seat") and differ in the choice."""
    if not (new.lower().startswith("prefers ") and stored.lower().startswith("prefers ")):
        return False
    a, b = content(new[8:]), content(stored[8:])
    return a != b and bool(a & b) and len(a ^ b) <= 2
