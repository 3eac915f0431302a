"""From a message to clauses the offline rules can read, and the reasons others are skipped.

A message is split into sentences and clauses (at conjunctions and commas that start a new
subject); each clause loses its discourse markers ("Actually,", "Sorry, wait,", "Big news:"),
filler adverbs and tags. A clause is skipped, with a reason a user understands, when it is a
question, a greeting or acknowledgement, a remark about the conversation ("I see what you mean",
"I think so"), a passing state ("I'm so tired today"), or refers back to something said before
("Loved it", "I play it most evenings"). An assistant's clause that speaks about the user ("I'll
remember that you're allergic") or offers help ("I can suggest some songs") is not a fact about
the assistant.

A correction ("I live in Braga, not Porto"; "I meant tree nuts, not peanuts") is read as the new
value and the old one. A bare yes or no answers the other speaker's yes/no question ("Do you eat
meat?" "No, never." reads "I don't eat meat").
"""

from __future__ import annotations

import re

QUESTION = "a question"
GREETING = "a greeting or acknowledgement"
REMARK = "a remark about the conversation"
PASSING = "a passing state, not a lasting fact"
BACK_REFERENCE = "it refers to something said before"
ABOUT_OTHER = "about the other speaker, or an offer of help"
NOT_ABOUT_SPEAKER = "no statement about the speaker"
UNRECOGNISED = "no fact recognised"


def _m(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


_SENTENCES = re.compile(
    r"""(?<=[.!?;:])\s+|(?<=[.!?]["'\u201d\u2019)])\s+|\n+|\s+[-\u2013\u2014]+\s+"""
)
_SUBJECT = (
    r"(?:(?:i|i'm|i've|i'll|i'd|we|we're|we've)\b"
    r"|(?:my|our)\s+(?:[\w'-]+\s+){0,3}?(?:is|are|was|were|has|have|had|will|\w+s\s+\w|\w+ed)\b)"
)
_OTHER_SUBJECT = (
    r"(?:(?:it|they|he|she|that|this|there)(?:'s|'re| is| are| was| were)"
    r"|the\s+(?:[\w'-]+\s+){1,2}?(?:is|are|was|were))\b"
)
_CLAUSES = re.compile(
    rf",?\s+(?:but|and|so)\s+(?:(?:now|then|also|still)\s+)?(?={_SUBJECT}|{_OTHER_SUBJECT})"
    rf"|,\s+(?={_SUBJECT}|{_OTHER_SUBJECT})"
    r"|,\s+(?=(?-i:[A-Z])[\w'-]*(?: (?-i:[A-Z])[\w'-]*)* (?:is|are|was|were)\b)",
    re.I,
)
_TAG = _m(r",?\s*(?:\b(?:remember|right|you know|ok|okay|lol|haha)|:\)|:D)\?*$")
_LEAD = _m(
    r"^(?:(?:hi|hello|hey|well|so|honestly|also|oh|oh no|oh well|ah|btw|by the way|anyway|ok|"
    r"okay|yeah|yes|yep|yup|no|nope|nah|and|but|plus|guess what|fun fact|funny thing|these days|"
    r"nowadays|currently|right now|actually|in fact|wait|sorry|oops|correction|update|"
    r"(?:big |good |bad |some )?news|um+|uh+|hmm+|like i said|as i said|as i mentioned|"
    r"to be honest|tbh|i mean|now|then|of course|sure|true|lol|haha|(?:it )?turns out|"
    r"as it turns out|apparently|some background|for context|about me)\b[,!:.]?\s+)+"
)
_FILLERS = _m(
    r"\s*\b(?:actually|really|just|totally|absolutely|definitely|honestly|literally|basically|"
    r"finally|kind of|sort of|pretty much|even)\b"
)
_TRAILING = _m(
    r"(?:(?<! of)(?<! to)(?<! for)(?<! with)(?<! about)\s+myself|"
    r",?\s+(?:though|too|as well|actually|anyway|lol|haha|now|right now|at the moment|after all|"
    r"these days|nowadays|for now))+$"
)
_GREETING = _m(
    r"^(?:hi|hello|hey|thanks|thank you|ok|okay|sure|bye|goodbye|good (?:morning|night|evening)"
    r"|great|cool|nice|awesome|wow|me too|same|same here|haha|lol|sounds good|no problem|"
    r"you're welcome|welcome|yes|no|yeah|nope|of course|totally|exactly|indeed|sorry|oops)\b"
)
_FIRST_PERSON = _m(r"\b(?:i|i'm|i've|i'll|i'd|me|my|mine|we|we're|we've|our)\b")
_SECOND_PERSON = _m(r"\b(?:you|your|yours|yourself|you're|you've|you'll|you'd)\b")

# "I see what you mean", "I know, right", "I hope so", "I changed my mind": about the talk itself.
_REMARK = _m(
    r"^i(?:'m|'ve| am| was| have)? ?(?:see(?:$| what| why| how| your| that| it)|"
    r"know(?:$| what| that| this| it| right| exactly| the feeling| the struggle| how you)|"
    r"mean\b|meant\b|agree|disagree|understand|hope (?:so|not|you|it|that)|wonder|bet\b|"
    r"promise|apologi[sz]e|(?:think|guess|suppose|believe|reckon) (?:so|not)$|said\b|told you|"
    r"misspoke|misspoken|confused|mixed (?:it|them|that) up|got (?:it|that|this) wrong|"
    r"was wrong|stand corrected|changed my mind|(?:have |'ve )?come around|appreciate|understood|"
    r"get it|got it|noted|was thinking (?:of|about)|thought you meant|"
    r"can (?:see|imagine|tell)|can't wait|cannot wait|would say|must say|have to say|gotta say|"
    r"admit|forgot|(?:so |really |very |truly )?sorry (?:to hear|about that|for your|for the)|"
    r"(?:so |really |very )?sorry$)"
)
# An assistant offering help, recording what it heard, or saying what it is not.
_SERVICE = _m(
    r"^(?:as an ai\b|i(?:'m| am) (?:just |only )?(?:an ai|a (?:large )?language model)\b|"
    r"i (?:don't|do not) have (?:personal|feelings|preferences|opinions|a body|experiences)|"
    r"let me|i (?:suggest|recommend)|i(?:'ve| have) noted|"
    r"i(?:'d| would| can| could| will|'ll| shall|'m happy to| am happy to|'m glad to|'m here to) "
    r"(?:suggest|recommend|help|assist|look into|check|note|remember|keep (?:that|it|this) in mind|"
    r"be happy|be glad|love to help|try to|find|show|tell|explain|walk|put together|create|"
    r"make sure)\b)"
)
_INTENSIFIER = (
    r"(?:so|very|really|pretty|a bit|a little|quite|super|too|always|just|not|more|even) "
)
_STATE = (
    r"(?:fine|good|great|ok|okay|alright|all right|well|tired|exhausted|sleepy|sure|certain|glad|"
    r"happy|sad|sorry|excited|nervous|anxious|stressed|worried|bored|busy|back|here|ready|done|"
    r"in|heartbroken|thrilled|stoked|curious|confused|lost|hungry|thirsty|late|on my way|home|"
    r"doing (?:well|good|great|fine|ok|okay)|kidding|joking|serious|afraid|free|available)"
)
_PASSING = _m(
    rf"^(?:i(?:'m| am)|we(?:'re| are)) (?:{_INTENSIFIER})*{_STATE}(?:,? (?:about (?:that|it|this)|"
    r"for you|to hear (?:that|it|this)|to help|with (?:that|it)|today|tonight|right now|now|"
    r"at the moment|this morning|this evening|these days|than ever|thanks(?: for asking)?|"
    r"thank you(?: for asking)?))*$"
)
_BACK = _m(
    r"^(?:i|we)(?:'ve|'d|'ll|'m| have| had| will| would| could| can| should| might| am| was)?"
    r"(?: been)?(?: \w+ly)?(?: \w+)?(?: about| with| of| on| for| in| at| to)? "
    r"(?:(?:it|them|there)\b|(?:that|this|those|these)(?: one)?(?=$|\s+(?:with|for|to|in|on|at|"
    r"from|about|most|every|so|very|a lot|too|again|all|when|because|but|and|last|this|"
    r"yesterday|today|\d)))"
)
_ENDS_BACK = _m(r"\b(?:it|that|this|them|those|these|there)$")
_HEDGE = _m(r"^i (?:think|guess|suppose|believe|reckon|feel like)(?: that)? (.+)$")
_HEDGE_BACK = _m(r"^i (?:think|guess|suppose|believe|reckon|feel like) (?:that|it|this|so|not)\b")
_CORRECTION = _m(
    r"^(?P<pre>.+?)(?:,\s*(?:and\s+)?not|\s+(?:instead of|rather than))\s+"
    r"(?:the\s+|a\s+|an\s+|my\s+)?(?P<old>[^,]{1,40}?)$"
)
_VALUE_START = _m(
    r".*\b(?:is|are|am|'m|was|meant|mean|in|at|to|for|with|named|called|from|of|a|an|the|my|"
    r"as|like|love|prefer|eat|drink|play|use)\s+"
)


_NAME_WORD = r"[A-Z][\w'-]+"
_OTHERS_AND_I = re.compile(rf"^((?:{_NAME_WORD})(?:(?:, | and ){_NAME_WORD})*) and (?:I|me) (.+)$")


_CORRECTIVE = _m(
    r"\b(?:sorry|actually|correction|i meant|wrong|mistake|misspoke|oops|typo|rescheduled|"
    r"postponed|moved to|changed to|instead)\b"
)


def corrective(text: str) -> bool:
    """Whether a message says it corrects something said before."""
    return _CORRECTIVE.search(text) is not None


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCES.split(text) if s.strip()]


def split(sentence: str) -> tuple[list[str], str | None]:
    """The clauses of a sentence, or none and why (a question)."""
    text = _TAG.sub("", sentence.strip()).strip()
    if not text:
        return [], None
    if text.endswith("?"):
        return [], QUESTION
    text = with_others(text.strip(" \t\"'").rstrip(".!;:"))
    return [c.strip(" ,") for c in _CLAUSES.split(text) if c.strip(" ,")], None


_PRONOUN = _m(r"\b(?:it|them|that|this|those|these|there)\b(?: one)?")
_LEADING = _m(r"^(?:(?:around|on|in|at|to|up|about|of|with|for|the|a|an|my|our|some)\s+)+")


def object_of(clause: str) -> str | None:
    """What a first-person clause is about, for a pronoun in the next clause to stand for:
    "I enjoy chess" -> "chess", "I've come around on sushi" -> "sushi"."""
    match = re.match(
        r"^(?:i|we)(?:'ve|'m|'d| have| am| had)?\s+(?:\w+ly\s+)?\w+\s+(.+)$", clause, re.I
    )
    if match is None:
        return None
    said = _LEADING.sub("", match.group(1)).strip()
    if not 0 < len(said.split()) <= 4 or _PRONOUN.search(said) or _SECOND_PERSON.search(said):
        return None
    return None if re.match(r"^(?:what|why|how|who|where|when)\b", said, re.I) else said


def resolved(clause: str, antecedent: str) -> str:
    """`clause` with its first back-reference replaced by `antecedent`."""
    return _PRONOUN.sub(
        lambda m: f"in {antecedent}" if m.group(0).lower() == "there" else antecedent,
        clause,
        count=1,
    )


def with_others(clause: str) -> str:
    """ "Lea and I broke up in February" -> "I broke up in February with Lea"."""
    match = _OTHERS_AND_I.match(clause)
    return f"I {match.group(2)} with {match.group(1)}" if match else clause


_VOCATIVE = re.compile(r"^(?:[A-Z][\w'-]+),\s+(?=(?:I|I'm|I've|I'll|I'd|we|we're|my|our)\b)")


def clean(clause: str) -> str:
    """Without discourse markers, filler adverbs and trailing filler."""
    previous = None
    while previous != clause:
        previous = clause
        clause = _LEAD.sub("", clause).strip(" ,")
        clause = _VOCATIVE.sub("", clause)  # "Jack, I'm sorry to hear that"
        clause = _TRAILING.sub("", clause).strip(" ,")
    return re.sub(r"\s+", " ", _FILLERS.sub("", clause)).strip(" ,")


def correction(clause: str) -> tuple[str, tuple[str, str]] | None:
    """("I live in Braga", ("Braga", "Porto")) for "I live in Braga, not Porto"."""
    match = _CORRECTION.match(clause)
    if match is None:
        return None
    pre, old = match.group("pre").strip(), match.group("old").strip()
    start = _VALUE_START.match(pre)
    new = pre[start.end() :] if start else pre
    names = re.findall(r"(?<!^)\b[A-Z][\w'-]+(?: [A-Z][\w'-]+)*", pre)
    if old[:1].isupper() and names:  # a name corrects a name: "it's Sarah with an h, not Sara"
        new = names[-1]
    if not new or len(new.split()) > 4 or new.lower() == old.lower():
        return None
    return pre, (new, old)


def hedged(clause: str) -> str:
    """ "I think I'll learn the guitar" -> "I'll learn the guitar"."""
    match = _HEDGE.match(clause)
    if match and re.match(rf"{_SUBJECT}", match.group(1), re.I):
        return match.group(1)
    return clause


def skip_reason(clause: str, *, assistant: bool) -> str | None:
    """Why a cleaned clause is not a fact about its speaker, or None if it may be one."""
    if not clause or (_GREETING.match(clause) and len(clause.split()) <= 4):
        return GREETING
    if _SECOND_PERSON.search(clause) or (assistant and _SERVICE.match(clause)):
        return ABOUT_OTHER
    if _REMARK.match(clause) or _HEDGE_BACK.match(clause):
        return REMARK
    if _PASSING.match(clause):
        return PASSING
    if _BACK.match(clause) or (about_speaker(clause) and _ENDS_BACK.search(clause)):
        return BACK_REFERENCE
    return None


def addressed(text: str) -> bool:
    """Whether the text speaks to the other speaker ("you", "your")."""
    return _SECOND_PERSON.search(text) is not None


_REFERS_BACK = _m(r"\b(?:it|its|they|them|their|he|him|his|she|her|that|this|those|these|there)\b")


def asks_about(text: str | None) -> bool:
    """Whether the text asks the other speaker a question about their life ("How was your
    trip?") or about what they were talking of ("What was it about?"), not a question of
    general knowledge ("Where is the Eiffel Tower?")."""
    return question_about(text) is not None


def question_about(text: str | None) -> str | None:
    """The last question of the text that `asks_about` the other speaker's life, cleaned."""
    if not text or "?" not in text:
        return None
    asked = [
        q for q in sentences(text)
        if q.rstrip(" \"')").endswith("?") and (addressed(q) or _REFERS_BACK.search(q))
    ]  # fmt: skip
    return clean(asked[-1].strip(" \"')")) if asked else None


def about_speaker(clause: str) -> bool:
    return _FIRST_PERSON.search(clause) is not None


_STATE_ADJECTIVES = {"tired", "bored", "excited", "interested", "worried", "scared", "married",
                     "engaged", "divorced", "retired", "employed", "unemployed", "based",
                     "allergic", "obsessed", "addicted", "vegetarian", "vegan", "single",
                     "pescatarian", "originally", "from", "big", "huge"}  # fmt: skip
_NOT_GERUNDS = {"nothing", "something", "anything", "everything", "morning", "evening",
                "wedding", "building", "ceiling", "feeling", "ending", "clothing", "sibling",
                "darling", "pudding", "during"}  # fmt: skip


_DROPPED_AFTER_GERUND = _m(r"^(?:at|on|in|to|for|with|from|as|a|an|the|my|our|some|out|home|hard)$")
_FINITE = _m(
    r"\b(?:is|are|was|were|'s|must|can|could|will|would|might|should|makes|made|helps|keeps|"
    r"means|gives)\b"
)


_PASSIVE = {"got", "was", "were", "became", "been", "had"}  # before a participle
_LEAD_ADVERBS = {"still", "just", "finally", "recently", "also", "already", "currently",
                 "actually", "only"}  # fmt: skip


# Chat spelling without apostrophes ("im off to yoga", "i dont eat meat"), spelled out so the
# rules read it; only forms that are not words of their own ("cant", "wont", "ill" are left).
_TEXTING = {"im": "I'm", "ive": "I've", "dont": "don't", "didnt": "didn't", "doesnt": "doesn't",
            "isnt": "isn't", "wasnt": "wasn't", "havent": "haven't", "hasnt": "hasn't",
            "wouldnt": "wouldn't", "couldnt": "couldn't", "shouldnt": "shouldn't",
            "arent": "aren't", "werent": "weren't", "youre": "you're", "theyre": "they're",
            "thats": "that's", "whats": "what's", "u": "you", "ur": "your", "i": "I"}  # fmt: skip
_TEXTED = re.compile(rf"(?<![\w'./-])(?:{'|'.join(_TEXTING)})(?![\w'/-]|\.\w)", re.I)
# Spelled out only in English text: another language's "im", "dont" or "u" ("Ich war im
# Urlaub", "le livre dont je parle", "u Praze") is left as it is.
_ENGLISH = re.compile(
    r"\b(?:the|and|to|is|my|it|you|your|was|for|that|so|just|but|with|of|me|this|have|not|"
    r"what|at|on|be|are|we|can|get|got|like|lol|i|a|about|do|if|up|out|all|too|now|see|go|"
    r"yeah|ok|okay|will|would|know|think|want|really|time|today|tomorrow|tonight|worry|love)\b"
)
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)$")


def spelled_out(text: str) -> str:
    """ "im off to yoga, i dont drive" -> "I'm off to yoga, I don't drive"; other text as is:
    names ("Jony Ive"), other languages, "IM", "U.S.", "u-turn", "reddit.com/u/ana"."""
    found = {m.group(0).lower() for m in _TEXTED.finditer(text)}
    if not found:
        return text
    return _TEXTED.sub(lambda m: _respelled(m, text, chat=len(found) > 1), text)


def _respelled(match: re.Match[str], text: str, *, chat: bool) -> str:
    """The word spelled out: in lower case, or capitalised at a sentence's start ("Im off",
    "Dont worry"; not "Ive", "U" or "Ur": names and letters), in English text (or `chat`: two
    kinds of chat spelling in it); "im" only before a lower-case word (German capitalises its
    nouns: "im Urlaub")."""
    word, lowered = match.group(0), match.group(0).lower()
    rest = text[: match.start()] + " " + text[match.end() :]
    if not chat and not _ENGLISH.search(rest):  # two chat spellings make it English chat
        return word
    after = text[match.end() :].lstrip()
    if lowered == "im" and not after[:1].islower():
        return word
    if word.islower():
        return _TEXTING[word]
    at_start = _SENTENCE_START.search(text[: match.start()]) is not None
    if at_start and word[0].isupper() and word[1:].islower() and lowered not in ("ive", "u", "ur"):
        spelled = _TEXTING[lowered]
        return spelled[:1].upper() + spelled[1:]
    return word


def with_subject(clause: str, past: set[str]) -> str | None:
    """A clause that drops its subject, as chat does, with it put back: "Moved to Berlin last
    year" -> "I moved to Berlin last year"; "Big fan of jazz here" -> "I'm a big fan of jazz";
    "Working at Google" -> "I'm working at Google"; after an adverb too ("Still working on a
    thesis", "Just got back from Rome"); "Been to Rome twice" -> "I've been to Rome twice". None
    when it does not read as one ("Alfred called yesterday": a name, then its verb)."""
    words = clause.split()
    if len(words) < 2 or not words[0][:1].isalpha():
        return None
    first = words[0].lower()
    if first in ("name", "name's"):
        return f"My {clause}"
    clause = clause[:1].lower() + clause[1:]  # the subject goes first: "I'm working", not "Working"
    if first in _STATE_ADJECTIVES:
        text = re.sub(r"\s+here$", "", clause)
        if first in ("big", "huge"):
            return f"I'm a {text}" if words[1].lower() == "fan" else None
        return f"I'm {text}"
    lead = 0  # "Still working on ...": the adverbs before the verb stay where they are
    while lead < len(words) - 2 and words[lead].lower() in _LEAD_ADVERBS:
        lead += 1
    verb = words[lead].lower()
    if verb == "been" and lead + 1 < len(words):
        return f"I've {clause}"
    stem = verb.removesuffix("ing")
    gerund = stem != verb and len(stem) >= 3 and re.search("[aeiouy]", stem)
    if gerund and verb not in _NOT_GERUNDS and _DROPPED_AFTER_GERUND.match(words[lead + 1]):
        return None if _FINITE.search(clause) else f"I'm {clause}"
    after = words[lead + 1].lower()
    if verb not in _PASSIVE and (after in past or (after.endswith("ed") and len(after) > 4)):
        return None  # "Alfred called yesterday", "Drew moved": a name, then its verb
    # ("Got promoted", "Was invited": a verb, then its participle)
    if verb in past or (verb.endswith("ed") and len(verb) > 4):
        return f"I {clause}"
    return None


# -- answers to yes/no questions ----------------------------------------------------------------

_YES = _m(
    r"^(?:yes|yeah|yep|yup|sure|of course|definitely|absolutely|indeed|correct|right|certainly|"
    r"totally|i am|i do|i have|i did|always|every day|very much)"
    r"(?:[\s,.!]+(?:yes|yeah|definitely|absolutely|of course|i am|i do|i have|always|"
    r"every day|very much|please|thanks|haha|indeed|sure))*[\s,.!]*$"
)
_NO = _m(
    r"^(?:no|nope|nah|not really|never|not at all|not anymore|no longer|i'm not|i am not|"
    r"i don't|i do not|i haven't|i have not)"
    r"(?:[\s,.!]+(?:no|never|not really|not at all|not anymore|no longer|i'm not|i don't|"
    r"i haven't|sadly|thanks|haha))*[\s,.!]*$"
)
_ASKED = [
    (_m(r"^(?:are|were) you (still )?(.+)$"), "i'm", "i'm not"),
    (_m(r"^do you (still )?(.+)$"), "i", "i don't"),
    (_m(r"^have you (still )?got (.+)$"), "i have", "i don't have"),
    (_m(r"^have you (still )?(?:ever )?(.+)$"), "i have", "i have not"),
]
_YOURS = {"your": "my", "yours": "mine", "yourself": "myself"}
# Not facts when answered: offers and requests ("Do you want me to book it?"), vague questions.
_VAGUE = _m(
    r"\b(?:you|me|i|anything|something|else|help|more)\b|^(?:want|need|mind|fancy|wish|feel like)\b"
)
_ANY = _m(r"\b(?:anything|something|any \w+)\b")
_WHAT = _m(
    r"^(?:what|which) ((?:\w+ ){0,2}?)do you (?!think|mean|want|need|say|suggest|recommend)(\w+)"
    r"([^,]*)"
)
_WHERE = _m(r"^where do you (live|work|study|stay|teach|train)(.*)$")
# Questions whose short answer is one attribute: "Where are you from?" "Kraków."
_INTAKE = [
    (_m(r"^where are you (?:originally )?from(?: originally)?$"), "i'm from {}"),
    (_m(r"^where do you work$"), "i work at {}"),
    (_m(r"^where are you based$"), "i'm based in {}"),
    (_m(r"^(?:what's|what is) your name$"), "my name is {}"),
    (_m(r"^how old are you$"), "i'm {}"),
    (_m(r"^what do you do(?: for (?:a living|work))?$"), "i work as {}"),
]


def answered(reply: str, question: str | None) -> tuple[str | None, str]:
    """The statement a reply's first sentence makes as an answer to the question, and the
    rest of the reply: "I do! I support Liverpool." to "Do you like football?" is "I like
    football" and "I support Liverpool"."""
    whole = answer(reply, question)
    if whole is not None:
        return whole, ""
    first, *rest = sentences(reply) or [""]
    head = answer(first, question) if rest and (_YES.match(first) or _NO.match(first)) else None
    return (head, " ".join(rest)) if head else (None, reply)


def answer(reply: str, question: str | None) -> str | None:
    """The statement a short answer makes of the other speaker's question: a bare yes or no to
    "Do you eat meat?", "Yes, penicillin." to "Are you allergic to anything?", "English and
    Greek." to "What languages do you speak?"."""
    if not question or not question.rstrip().endswith("?"):
        return None
    asked = sentences(question)[-1].strip().rstrip("?").strip()
    reply = reply.strip()
    yes, no = _YES.match(reply), _NO.match(reply)
    if not (yes or no):
        return _filled(asked, reply)
    for pattern, affirm, deny in _ASKED:
        match = pattern.match(asked)
        if match and not _VAGUE.search(match.group(2)):
            rest = " ".join(_YOURS.get(w.lower(), w) for w in match.group(2).split())
            if yes:
                return f"{affirm} {rest}"
            return f"{deny} {rest}" + (" anymore" if match.group(1) else "")
    return None


def _filled(asked: str, reply: str) -> str | None:
    """A short answer that fills the question's gap ("anything", "what", "where")."""
    said = _LEAD.sub("", reply).strip().rstrip(".!")
    if not said or len(said.split()) > 8 or about_speaker(said) or said.endswith("?"):
        return None
    if re.search(r"\b(?:is|are|was|were|do|does|did)\b", said, re.I) or _GREETING.match(said):
        return None  # a sentence of its own, or an acknowledgement, not a filled gap
    for pattern, affirm, _ in _ASKED:
        match = pattern.match(asked)
        if match and _ANY.search(match.group(2)) and re.match(r"^(?:yes|yeah|yep)\b", reply, re.I):
            return f"{affirm} {_ANY.sub(lambda _: said, match.group(2), count=1)}"
    for pattern, statement in _INTAKE:
        if pattern.match(asked):
            return statement.format(said)
    match = _WHAT.match(asked)
    if match:
        return f"i {match.group(2)} {said}{match.group(3)}"
    match = _WHERE.match(asked)
    if match:
        return f"i {match.group(1)}{match.group(2)} in {said}"
    return None
