"""What the offline extractor keeps of a sentence its recognisers do not read.

The recognisers know common attributes (`offline_recognisers`); most of what people tell each
other is not one of them: events ("Last Friday I went to a council meeting for adoption"),
plans, opinions, what happened to the people around them. A sentence none of whose clauses
became a fact is still kept, as a self-contained memory, when it is informative:

- it is a statement (a heading that ends with a colon dropped): not a question, request
  ("Tell me a joke about my job", "Let's meet at my place"), thanks, greeting, acknowledgement,
  remark about the conversation or passing state (the reasons `offline_clauses` gives);
- it is anchored in its speaker's life: it says "I", "me", "my", "we" or "our", speaks of the
  people and animals around them ("the kids", "her husband", "the dog", "the coach"), names
  someone the memories know, is news of someone it names ("Marcus sprained his ankle", with a
  sign of a person: not "Apple released a phone"), or starts with a pronoun and goes on about
  what the message spoke of in a sentence kept before it, or about what the other speaker
  asked the speaker ("They were so excited"; "It was a poetry reading" to "What was your
  reading about?", not "It's in Paris" to "Where is the Eiffel Tower?"); a bracketed
  annotation of the message ("[image: a photo of a cup]") is read as its content, and goes on
  about the message too; general knowledge ("The Eiffel Tower is in Paris") is not kept;
- or it answers what the other speaker asked about the speaker's life and says more than a
  reaction (`answering`); a reply that only names what a question asked for is kept with the
  question instead (`answer_to`: "Which team did John sign with? The Minnesota Wolves");
- it is not addressed to the other speaker ("You'd be a great counselor!", "Congrats on your
  new job"): that is conversation, not a fact about anyone's life; a part of it that is ("...,
  maybe you'd like it") is left out and the rest kept (`_own_part`); and the speaker's own past
  doing is kept whole ("I took your advice and watched the trilogy");
- it has at least `MIN_CONTENT` content words besides pronouns, function words, intensifiers
  and laughter ("I loved that one!" has one).

The sentence is rewritten in the third person: "I" becomes the speaker's name (or "the user"
when the message has no name) with the verb agreeing ("I love" -> "Mel loves", "I'm" -> "Mel
is"), "me" the name, "my" and "mine" the name's ("Mel's"); relative dates are resolved by the
caller like every other fact's. A sentence that does not name its speaker then ("We're
thinking about going camping", news of someone they know) starts with the name: "Mel: We're
thinking about going camping".
"""

from __future__ import annotations

import calendar
import re

from engram.core.text import STOPWORDS
from engram.pipeline import offline_clauses as clauses
from engram.pipeline.offline_keys import PEOPLE, PETS
from engram.pipeline.offline_rewrite import NOT_PAST, PAST, is_past, third_person

MIN_CONTENT = 3  # content words a kept sentence must have
KEEPABLE = {clauses.UNRECOGNISED, clauses.NOT_ABOUT_SPEAKER, clauses.BACK_REFERENCE}

_ANCHOR = re.compile(r"\b(?:i|i'm|i've|i'll|i'd|me|my|mine|myself|we|we're|we've|we'll|we'd|"
                     r"us|our|ours|ourselves)\b(?![-'])", re.I)  # fmt: skip
_AROUND_WORDS = sorted({re.escape(w) + "s?" for w in PEOPLE | PETS}, key=len, reverse=True)
_AROUND = re.compile(
    rf"\b(?:{'|'.join(_AROUND_WORDS)}|kids|children|family|parents|siblings|folks|"
    r"(?:the|my|our|his|her)\s+(?:doctor|therapist|coach|teacher|mentor|manager|landlord|vet|"
    r"trainer|team|class|students?|clients?|customers?))\b",
    re.I,
)
_ANNOTATION = re.compile(r"\[(?:[\w ]{1,20}:\s*)?([^\[\]]{0,2000})\]")  # "[image: a photo of ...]"
_NAMED_SUBJECT = re.compile(
    r"^(?P<name>(?-i:[A-Z])[a-z'-]+)(?P<where>\s+(?:from|at|in|on)\s+(?:the\s+|my\s+|our\s+)?[\w-]+)?"
    r"(?:\s+(?:just|finally|also|still|already|even|never|only|always|often|\w+ly))?"
    r"(?:\s+(?:has|had|have))?\s+(?P<verb>(?-i:[a-z])[a-z']+)\b",
    re.I,
)
_BE = {"is", "was", "has", "had", "been", "got", "gets", "will"}
_PERSON = re.compile(r"\b(?:he|she|his|her|hers|him|himself|herself|he's|she's)\b", re.I)
_PERSON_VERBS = {
    "said", "says", "told", "tells", "asked", "asks", "called", "calls", "texted", "texts",
    "visited", "visits", "married", "graduated", "started", "starts", "won", "scored", "loved",
    "loves", "likes", "liked", "hates", "hated", "wants", "wanted", "thinks", "thought", "feels",
    "felt", "misses", "missed", "sprained", "broke", "fell", "died", "passed", "moved", "moves",
    "met", "meets", "cried", "laughed", "helped", "helps", "works", "worked", "lives", "lived",
    "came", "comes", "went", "goes", "got", "gets", "turned", "turns", "joined", "joins", "quit",
    "left", "retired", "proposed", "invited", "invites", "cooked", "cooks", "made", "bought",
}  # fmt: skip
# "Nora is pregnant", "Ben has been training": a person's state, not a place's ("is beautiful")
_PERSON_STATE = re.compile(
    r"^\S+\s+(?:is|was|has been|had been)\s+(?:\w+ly\s+)?(?:still\s+)?"
    r"(?:\w+ing|pregnant|sick|ill|married|engaged|single|divorced|retired|home|back|away|"
    r"in hospital|amazing|great|upset|sad|happy|excited|nervous|fine|okay|ok)\b",
    re.I,
)
_NOT_NAMES = {*STOPWORDS, *(m.lower() for m in calendar.month_name if m),
              *(d.lower() for d in calendar.day_name), "everyone", "everybody", "someone",
              "somebody", "nobody", "nothing", "everything", "something", "anyone", "anything",
              "today", "yesterday", "tonight", "tomorrow", "people", "life", "work", "things",
              "time", "weather", "traffic", "food", "dinner", "lunch", "breakfast", "school",
              "nope", "yeah", "yep", "yes", "wow", "haha", "lol", "omg", "thanks", "ok",
              "okay", "must", "should", "could", "would", "might", "can", "shall", "sounds",
              "looks", "seems", "hope", "glad", "maybe", "guess", "gotta", "just", "still",
              "also", "even", "never", "ever", "always", "sometimes", "everywhere", "nowhere",
              "somewhere", "anyway", "besides", "otherwise"}  # fmt: skip
_REQUEST = re.compile(
    r"^(?:please|pls|let's|let us|thanks|thank you|thx|tell|remind|give|show|help|recommend|"
    r"suggest|find|send|check out|look at|take a look|make sure|don't forget|do not forget|"
    r"can you|could you|would you|will you|feel free|imagine|wish me)\b",
    re.I,
)
_PARTS = re.compile(  # "..., maybe you", "... so if you break something"; not "85,000"
    r"\s*(?:(?<!\d),|,(?!\d)|;|\s[-\u2013\u2014]+|[-\u2013\u2014]+\s)\s*"
    r"|\s+(?=(?:so\s+|and\s+|but\s+)?(?:if|when|whenever|in case)\s+you\b)",
    re.I,
)
_ASKS_FOR = re.compile(
    r"^(?:what|which|who|whom|whose|where|when|how (?:many|much|long|often|old|far|big))\b|"
    r"^(?:what's|where's|who's|when's)\b",
    re.I,
)
_SMALL_TALK = re.compile(
    r"^(?:what's (?:up|new|happening)|what about you|what do you (?:think|mean|say|reckon)|"
    r"what(?: have|'ve) you been up to|what (?:are|were) you up to|what's going on|who knows|"
    r"what else|what (?:a|an)\b|what(?:'s| is) the (?:time|date|day)|what (?:time|day|date) is)",
    re.I,
)
# A question in the asker's own person ("What should I get my mom?") or to several people, or
# with "you" in a form the rewrite does not put in the third person: not the speaker's fact.
_NOT_REWRITTEN = re.compile(
    r"\b(?:i|i'm|i've|i'll|i'd|me|my|mine|we|we're|us|our|ours|you (?:guys|all|two|both)|"
    r"y'all|you're|you've|you'll|you'd)\b",
    re.I,
)
_REACTING = r"sounds|looks|seems|must|maybe|hope|glad|good luck|keep"  # how a reaction starts
# Not an answer naming a thing: a reaction, a photo shown, "to hear that", a yes or no.
_NOT_AN_ANSWER = re.compile(
    rf"^(?:{_REACTING}|to (?:hear|be honest|be fair)|"
    r"here's|here is|here are|this is|these are|that's|look|check|yep|yup|yes|yeah|nope|nah|no|"
    r"sure|ok|okay|ha|totally|exactly|absolutely|definitely|indeed|same|me too|thanks|"
    r"thank you|idk|dunno|i dunno|no idea|not sure|ugh|meh|hmm+|lemme|let me|long time|"
    r"whatever|nothing|nowhere|no one|nobody|none)\b",
    re.I,
)
# A reply with a verb or subject of its own is a sentence, not a fragment naming the answer.
_FINITE = re.compile(
    r"\b(?:i|i'm|i've|i'll|i'd|we|we're|he|she|they|it|it's|that's|there's|is|are|was|were|am|"
    r"have|has|had|do|does|did|will|would|can|could|should|\w+n't|(?-i:[a-z]\w*ed))\b",
    re.I,
)
_YOU = re.compile(
    r"\b(?:(?P<verb>are|were|have|do|did|will|would|can|could|should|had)\s+)?"
    r"(?P<you>you|your|yours|yourself)\b",
    re.I,
)
_ASKED_VERB = {"are": "is", "were": "was", "have": "has", "do": "does"}
_REACTION = re.compile(rf"^(?:{_REACTING})\b", re.I)
_VOCATIVE = re.compile(r"^(?-i:[A-Z])\w+,\s+|,\s+(?-i:[A-Z])\w+\W*$")  # "Jo, ...", "..., Jo!"
_REACTIONS = {"great", "awesome", "amazing", "cool", "nice", "fun", "good", "wonderful",
              "fantastic", "lovely", "sweet", "beautiful", "glad", "sounds", "looks", "seems",
              "totally", "definitely", "sure", "bet", "wow", "haha", "lol", "thanks"}  # fmt: skip
_THANKS = re.compile(r"(?:^|(?<=[,;-]\s))(?:thanks|thank you|thx|cheers) for\b", re.I)
_SPEAKER_FIRST = re.compile(r"^(?:i|i'm|i've|i'll|i'd|we|we're|we've|we'll|we'd)\s", re.I)
_HEADING = re.compile(r"^[^:.!?]*:\s+(?=\S)|^[^:.!?]*:\s*$")  # "Quick update on my life:"
_GOES_ON = re.compile(r"^(?:it|it's|they|they're|they've|he|he's|she|she's|this|that|these|"
                      r"those|there)\b", re.I)  # fmt: skip
_FUNCTION = set(
    """a an the and or but so if then than that this these those there here it its it's they them
    their he him his she her hers we us our you your i me my mine myself is are was were be been
    being am has have had do does did done will would can could should shall may might must to
    of in on at for with from by about as into onto over under up down out off again very so
    really just too also quite pretty super such much many lot lots more most some any all
    what which who whom when where why how not no yes yeah oh wow well gonna wanna gotta 'cause
    cause because like get got thing things stuff one ones way bit kind sort something anything
    everything nothing always never still even ever now today i'm i've i'll i'd we're we've
    it's that's there's""".split()  # noqa: SIM905 - a word list
)
_MODALS = {"can", "could", "should", "would", "will", "shall", "may", "might", "must", "did",
           "didn't", "do", "don't", "can't", "cannot", "couldn't", "wouldn't", "shouldn't",
           "won't", "used", "had", "have", "am", "are", "were", "was", "is", "has", "does",
           "doesn't", "and", "or", "but", "too", "myself", "alone", "both", "all"}  # fmt: skip
_ADVERBS = ("also|still|never|ever|always|often|just|even|only|already|sometimes|kinda|sorta|"
            "really|definitely|probably|totally|truly|actually|finally|usually|recently|mostly|"
            r"rarely|\w+ly")  # fmt: skip
_CONTRACTED = {"'m": "is", "'ve": "has", "'ll": "will", "'d": "would"}
_IRREGULAR = {"am": "is", "have": "has", "do": "does", "don't": "doesn't", "haven't": "hasn't"}
_PRONOUN = re.compile(
    rf"\b(?:(?P<i>[Ii](?!\.\w))(?P<tail>'m|'ve|'ll|'d)?"
    rf"(?:\s+(?P<adverb>(?:(?:{_ADVERBS})\s+){{1,2}})?(?P<verb>[a-z][a-z']*))?"
    r"|(?P<me>(?i:me|myself))|(?P<my>(?i:my|mine)))\b(?![-'])"
)
# Not the pronoun: a Roman numeral ("type I diabetes", "World War I", "Episode I"); but "this
# book I read", "every class I take": a noun after a determiner, then a relative clause.
_NUMBERED = re.compile(
    r"(?<!\bthis )(?<!\bthat )(?<!\bthe )(?<!\ba )(?<!\bevery )(?<!\bwhich )(?<!\bwhat )"
    r"(?<!\bany )(?<!\bmy )(?<!\bour )(?<!\byour )(?<!\bhis )(?<!\bher )(?<!\btheir )"
    r"\b(?:type|part|episode|chapter|phase|act|volume|stage|grade|level|class|season|book|"
    r"henry|louis|george|elizabeth|charles|james|edward|william|richard|(?-i:War))\s$",
    re.I,
)


def kept(
    sentence: str,
    speaker: str | None,
    known: dict[str, str],
    *,
    going_on: bool = False,
    answering: bool = False,
    own_part: bool = False,
    named: bool = False,
) -> str | None:
    """The sentence as a self-contained memory of `speaker` (None: the user), or None when it is
    not worth keeping. `going_on`: a sentence before it in the message was kept or read as a
    fact, so one that starts with a pronoun goes on about what the message is about.
    `answering`: the sentence answers what the other speaker asked about the speaker's life, so
    it needs no anchor of its own ("Fitting in with the new team was the hardest part" to "What
    was hard about your first season?") when it says more than a reaction would. `own_part`:
    every clause of the sentence spoke to the other speaker, so only a part that does not is
    kept ("I made a cake last week, maybe you'd like it"). `named`: its "he" or "she" was
    replaced by whom the sentence before was news of (`with_name`), so it goes on about them."""
    annotation = _ANNOTATION.fullmatch(sentence.strip())
    sentence = annotation.group(1) if annotation else _ANNOTATION.sub(" ", sentence)
    sentence = _HEADING.sub("", sentence)
    if sentence.rstrip().endswith(":"):
        return None
    text = clauses.clean(sentence.strip().strip("\"'").rstrip(".!;: "))
    if not text or text.endswith("?"):
        return None
    if _REQUEST.match(text):  # "Tell me a joke about my job", "Thanks for the advice on my CV"
        return None
    reason = clauses.skip_reason(text, assistant=False)
    thanks = _THANKS.search(text) is not None  # "Amazing party, thanks for having us"
    if (reason == clauses.ABOUT_OTHER or thanks) and (own := _own_part(text)) is not None:
        text, reason = own, clauses.skip_reason(own, assistant=False)
    elif thanks or (own_part and not (_SPEAKER_FIRST.match(text) and is_past(text))):
        return None
    elif reason == clauses.ABOUT_OTHER and _SPEAKER_FIRST.match(text):
        reason = None  # "I took your recommendation and watched ...": the speaker's doing
    if reason not in (None, *KEEPABLE):
        return None
    anchored = named or _anchored(text, known, going_on=going_on, annotation=annotation is not None)
    if not anchored and not (answering and _an_answer(text, known)):
        return None
    if not informative(text):
        return None
    rewritten = third_person_sentence(text, speaker)
    if speaker and not re.search(rf"\b{re.escape(speaker)}\b", rewritten):
        return f"{speaker}: {rewritten[:1].upper()}{rewritten[1:]}"  # "we", or someone they know
    return rewritten[:1].upper() + rewritten[1:]


def answer_to(
    question: str, sentence: str, speaker: str | None, asker: str | None = None
) -> str | None:
    """A reply that only names what a question about the speaker asked for, kept with the
    question it answers: "The Minnesota Wolves!" to "Which team did you sign with?" -> "Which
    team did John sign with? The Minnesota Wolves". None when the question does not ask for a
    thing (yes/no, small talk: "How are you?", "What's up?") or the reply is not such a
    fragment: one with a verb or subject of its own is kept (or not) as a sentence."""
    if not _ASKS_FOR.match(question) or _SMALL_TALK.match(question):
        return None
    if _NOT_REWRITTEN.search(question):
        return None
    annotation = _ANNOTATION.fullmatch(sentence.strip())
    if annotation:
        return None
    text = clauses.clean(_ANNOTATION.sub(" ", sentence).strip().strip("\"'").rstrip(".!;: "))
    if not text or text.endswith("?") or _REQUEST.match(text) or _NOT_AN_ANSWER.match(text):
        return None
    if clauses.skip_reason(text, assistant=False) == clauses.GREETING or _verb_in(text):
        return None
    if clauses.addressed(text):  # "Your support means a lot"
        return None
    names = {n.lower() for n in (speaker, asker) if n}  # "Hey Jo!" names no answer
    if not any(not _LAUGH.fullmatch(w) and _A_WORD.search(w) for w in _said(text, names)):
        return None
    asked = _YOU.sub(lambda m: _as_named(m, speaker or "the user"), question.rstrip(" ?"))
    text = third_person_sentence(text, speaker)
    return f"{asked[:1].upper()}{asked[1:]}? {text[:1].upper()}{text[1:]}"


def _verb_in(text: str) -> bool:
    """Whether a reply has a verb or subject of its own ("I got a strat"), not only names a thing
    ("Manchester United", "The Red Lion in Bath")."""
    return any(
        m.group(0).lower() not in NOT_PAST and m.group(0).lower() not in _NOT_VERBS
        for m in _FINITE.finditer(text)
    )


_NOT_VERBS = {"united", "ted", "fred", "ned"}  # and NOT_PAST's "red", "bed", "shed"
_A_WORD = re.compile(r"^(?=.*[aeiouy0-9])(?!(.)\1+$).{2,}$")  # not "aaaa", "zzz", "-"


def _as_named(match: re.Match[str], name: str) -> str:
    """ "are you" -> "is Mel", "your" -> "Mel's", "you" -> "Mel"."""
    verb, word = (match.group("verb") or "").lower(), match.group("you").lower()
    if word in ("your", "yours"):
        return f"{name}'s"
    if verb:
        return f"{_ASKED_VERB.get(verb, verb)} {name}"
    return name


def _own_part(text: str) -> str | None:
    """What a sentence says of the speaker without its parts addressed to the other speaker:
    "I made a dairy-free cake last week, maybe you'd like it" -> "I made a dairy-free cake last
    week"; None when no part is the speaker's own ("If you visit Lisbon, I can show you around")
    or what is left refers back to a part left out ("You should try yoga, it helped my back")."""
    parts = [p.strip() for p in _PARTS.split(text) if p.strip()]
    own = [p for p in parts if not clauses.addressed(p) and not _THANKS.match(p)]
    if not own or len(own) == len(parts) or (own[0] != parts[0] and _GOES_ON.match(own[0])):
        return None
    rest = ", ".join(own)
    return rest if _ANCHOR.search(rest) else None


def _an_answer(text: str, known: dict[str, str]) -> bool:
    """Whether an unanchored sentence of a reply says more than a reaction ("Sounds great,
    Jo", "Must have been amazing"): it does not start as one, and it has a content word more
    than `informative` asks, reactions and the names the memories know not counted."""
    if _REACTION.match(text):
        return False
    return sum(len(w) > 1 for w in _said(text, {n.lower() for n in known})) > MIN_CONTENT


def _said(text: str, names: set[str]) -> list[str]:
    """The words of a reply that say something: not function words, reactions ("great",
    "wow"), a vocative ("Jo, ...") or the `names` (lower case)."""
    words = re.findall(r"[\w'+-]+", _VOCATIVE.sub("", text).lower())
    return [w for w in words if w not in _FUNCTION and w not in _REACTIONS and w not in names]


def informative(text: str) -> bool:
    """Whether the text has at least `MIN_CONTENT` content words (laughter is none)."""
    words = re.findall(r"[\w'+-]+", text.lower())
    return sum(w not in _FUNCTION and len(w) > 1 and not _LAUGH.fullmatch(w) for w in words) >= (
        MIN_CONTENT
    )


_LAUGH = re.compile(r"(?:ha){2,}h*|(?:he){2,}|(?:hi){2,}|a?ha+h+|lo+l(?:ol)*|lmf?ao+|rofl|xd+|omg+")


def _anchored(text: str, known: dict[str, str], *, going_on: bool, annotation: bool) -> bool:
    return bool(
        _ANCHOR.search(text) or _AROUND.search(text) or named_subject(text)
        or (going_on and (annotation or _GOES_ON.match(text)))
        or any(re.search(rf"\b{re.escape(n)}\b", text) for n in known)
    )  # fmt: skip


def named_subject(text: str) -> str | None:
    """The name a sentence starts with when it is news of someone the speaker names: a name,
    then what they did or are ("Marcus sprained his ankle", "Nora has been amazing", "Doreen
    from the choir moved")."""
    cleaned = clauses.clean(text.strip())
    match = _NAMED_SUBJECT.match(cleaned)
    if match is None:
        return None
    name = match.group("name")
    word = re.split("['\u2019]", name.lower())[0]  # "She's engaged": a pronoun, not a name
    if word in _NOT_NAMES or name.lower().endswith(("ly", "ing")):  # "Running is fun"
        return None
    verb = match.group("verb")
    third = len(verb) > 3 and verb.endswith("s") and not verb.endswith(("ss", "us", "is"))
    news = verb in PAST or verb in _BE or third or (verb.endswith("ed") and verb not in NOT_PAST)
    # a person's: "he", "her", where they are from, or what people do ("Apple released a
    # phone", "Paris is beautiful" are not news of someone the speaker knows)
    person = (
        _PERSON.search(text) or match.group("where") or verb.lower() in _PERSON_VERBS
        or _PERSON_STATE.match(cleaned)
    )  # fmt: skip
    return name if news and person else None


def not_a_name(word: str) -> bool:
    """Whether a capitalised word is a word of the language, a month or a day, not a name."""
    return word.lower() in _NOT_NAMES


def with_name(sentence: str, name: str) -> str:
    """A sentence that goes on about someone named just before, with the name for its leading
    "he" or "she": "He only cares about dinosaurs" after "Kofi is sulking" -> "Kofi only cares
    about dinosaurs"."""
    return _HE_OR_SHE.sub(name, sentence, count=1)


_HE_OR_SHE = re.compile(r"^\s*(?:he|she)\b(?!-)", re.I)


def third_person_sentence(text: str, speaker: str | None) -> str:
    """ "I love my garden and it loves me" -> "Mel loves Mel's garden and it loves Mel"."""
    name = speaker or "the user"

    def swap(match: re.Match[str]) -> str:
        if match.group("i") and _numbered(text, match.start()):
            return match.group(0)
        who = name[:1].upper() + name[1:] if match.start() == 0 else name
        if match.group("me"):
            return who
        if match.group("my"):
            return f"{who}'s"
        tail, adverb, verb = match.group("tail"), match.group("adverb") or "", match.group("verb")
        head = f"{who} {_CONTRACTED[tail]}" if tail else who
        if verb is None:
            return head
        return f"{head} {adverb}{verb if tail else _agreeing(verb)}"

    return _PRONOUN.sub(swap, text)


def _numbered(text: str, at: int) -> bool:
    """Whether the "I" at `at` is a Roman numeral: after "type", "World War", "Episode"."""
    before = text[:at]
    return bool(before) and _NUMBERED.search(before[-40:]) is not None


def _agreeing(verb: str) -> str:
    """A verb after "I" as after a name: "love" -> "loves", "miss" -> "misses", "am" -> "is";
    past forms, modals and other words left as they are."""
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    past = verb in PAST or (verb.endswith("ed") and verb not in NOT_PAST)
    if verb in _MODALS or past or verb.endswith("n't") or "'" in verb:
        return verb
    return third_person(verb)
