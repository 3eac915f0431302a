"""Rules of the offline extractor: statements in, canonical third-person facts out.

Each speaker whose statements are remembered (the user; with an agent, the assistant too) has its
messages split into clauses (`offline_clauses`). A clause about its speaker (first person) is
matched against recognisers for the common attributes (name, location, origin, age, employer, job,
diet, relationship status, allergies, favourites, likes and dislikes, family, pets) and otherwise
rewritten generically ("I play guitar" -> "Plays guitar"). Relative dates are resolved against the
event date, backwards for the past tense. Two facts joined by "and" are split when each is a
complete attribute ("I'm 29 and originally from Cork").

Besides plain facts a clause may be:
- a retraction ("I don't live in Paris anymore", "I stopped drinking coffee"): `negated`;
- an event that ends a stored fact ("I sold my motorbike", "I was laid off", "Lea and I broke
  up", "Rufus passed away", "I switched to Linux at home"): `replaces` says which one;
- a correction ("I live in Braga, not Porto"; "her name is Emily, not Emma"): `corrects`.
News about someone the stored memories name ("Lily started school", after "Has two daughters,
Ava and Lily") is kept as a fact about them. Everything skipped is reported with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from engram.core.dates import resolve_relative_dates
from engram.core.messages import Message
from engram.pipeline import offline_clauses as clauses
from engram.pipeline.offline_keep import (
    KEEPABLE,
    answer_to,
    informative,
    kept,
    named_subject,
    with_name,
)
from engram.pipeline.offline_keys import Key, fact_key
from engram.pipeline.offline_recognisers import DEATH, KNOWN_REL, recognise
from engram.pipeline.offline_refer import leading_pronoun, referent
from engram.pipeline.offline_rewrite import NAME_WORD, PAST, About, Statement, clean, is_past

__all__ = ["About", "Extraction", "Key", "Skipped", "Statement", "extract_statements", "fact_key"]


@dataclass(frozen=True, slots=True)
class Skipped:
    text: str  # as said
    reason: str
    role: str


@dataclass(slots=True)
class Extraction:
    statements: list[Statement] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    unread: list[Message] = field(default_factory=list)  # messages of speakers not remembered


def extract_statements(
    messages: Sequence[Message],
    today: str,
    *,
    speakers: dict[str, About] | None = None,
    existing: Sequence[str] = (),
    recent: Sequence[Message] = (),
) -> Extraction:
    """Canonical facts from the messages of `speakers` (role -> "user" / "agent"; default: the
    user's, or every other non-assistant speaker's when the user says nothing)."""
    speakers = dict(speakers or {"user": "user"})
    if not any(m.role in speakers for m in messages):
        fallback = next(iter(speakers.values()))
        others = {m.role for m in messages} - {"system", "assistant"}
        speakers.update(dict.fromkeys(others, fallback))
    out = Extraction()
    known = known_names(existing)
    seen: set[tuple[str, About]] = set()
    previous = recent[-1] if recent else None
    before = list(recent[-2:])  # the turns before a message: whom its "she" may stand for
    for message in messages:
        if message.role not in speakers:
            if message.role != "system":
                out.unread.append(message)
        else:
            about = speakers[message.role]
            asked = None  # what the other speaker (another role, or another name) said before
            if previous is not None and (previous.role, previous.name) != (
                message.role,
                message.name,
            ):
                asked = previous.content
            reader = _Reader(today, about, message, known, out)
            who = referent(before, message.content, message.name)
            for statement in reader.read(message.content, asked, previous, who):
                if (statement.text.lower(), about) not in seen or not statement.text:
                    seen.add((statement.text.lower(), about))
                    out.statements.append(statement)
                    known.update(known_names([statement.text]))
        previous = message
        before = [*before[-1:], message]
    return out


_WHOLE_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+")  # not at dashes, colons, semicolons


class _Reader:
    """Reads one message of one speaker."""

    def __init__(
        self, today: str, about: About, message: Message, known: dict[str, str], out: Extraction
    ) -> None:
        self.today, self.about, self.known, self.out = today, about, known, out
        self.role, self.speaker = message.role, message.name
        self.antecedent: str | None = None  # what "it" / "there" stands for in this sentence
        self.corrective = False  # the message corrects something said before
        self.asker: Message | None = None

    def read(
        self, text: str, asked: str | None, asker: Message | None = None,
        referent: str | None = None,
    ) -> list[Statement]:  # fmt: skip
        """The statements of a message; `asked`: what `asker` said before it; `referent`: whom
        its leading "he" or "she" stands for (`offline_refer`), while its sentences start with
        that pronoun."""
        self.asker = asker  # who said `asked`
        text = clauses.spelled_out(text)
        self.corrective = clauses.corrective(text)
        answered, text = clauses.answered(text, asked)
        found = self.clause(answered, answered) if answered else []
        # a reply to a question the other speaker asked about the speaker's life; its sentences
        # answer it until the speaker asks something or turns to the other speaker
        question = clauses.question_about(asked and clauses.spelled_out(asked))
        replying = answering = question is not None
        news_of: str | None = None  # whom the sentence before was news of
        pronoun = leading_pronoun(text)
        for whole in _WHOLE_SENTENCES.split(text):
            skipped, before = len(self.out.skipped), len(found)
            for sentence in clauses.sentences(whole):
                self.antecedent = None
                parts, reason = clauses.split(sentence)
                if reason is not None:
                    self.skip(sentence, reason)
                for part in parts:
                    found += self.clause(part, part if len(parts) > 1 else sentence.strip())
            if not whole.strip():
                continue
            read = len(found) > before
            # "Kofi is sulking. He misses his friends": "he" is Kofi
            if referent is not None and leading_pronoun(whole) != pronoun:
                referent = None  # the reply turned to something else
            who = referent or news_of  # "He only cares about dinosaurs"
            said = with_name(whole, who) if who and not read else whole
            news_of = named_subject(said)
            answer = self.named_answer(question, said, skipped) if answering and not read else []
            if answer:  # one answer a reply: "Which team?" "The Wolves!"
                found += answer
                question = None
            else:
                going_on = bool(found) or replying  # what the message, or the reply, is about
                found += self.keep(
                    said, skipped, read=read, going_on=going_on, answering=answering,
                    named=said != whole,  # "He ..." went on about someone named before
                )  # fmt: skip
            answering = answering and "?" not in whole and not clauses.addressed(whole)
        return found

    def named_answer(self, question: str | None, sentence: str, skipped: int) -> list[Statement]:
        """A reply that only names what the other speaker asked for, kept with the question
        (`offline_keep.answer_to`)."""
        asker = self.asker
        # an assistant's questions are about the task ("Which language do you want it in?")
        if question is None or asker is None or "assistant" in (self.role, asker.role):
            return []
        text = answer_to(question, sentence, self.speaker, asker.name)
        if text is None:
            return []
        del self.out.skipped[skipped:]
        past = re.search(r"\b(?:did|was|were)\b", question, re.I) is not None
        text = resolve_relative_dates(text, self.today, past=past)
        return [Statement(text, about=self.about, speaker=self.speaker, kept=True)]

    def keep(
        self, sentence: str, skipped: int, *, read: bool, going_on: bool, answering: bool = False,
        named: bool = False,
    ) -> list[Statement]:  # fmt: skip
        """A sentence whose clauses became no fact, or whose unread clauses say more than the
        facts `read` from the others ("I'm carving out some me-time each day - running,
        reading, or playing my violin"), kept as said when it is informative (`offline_keep`);
        its clauses are then no longer reported as skipped."""
        unread = [
            s.text for s in self.out.skipped[skipped:]
            if s.reason in KEEPABLE and not s.text.endswith(":")  # not a heading
        ]  # fmt: skip
        addressed = any(s.reason == clauses.ABOUT_OTHER for s in self.out.skipped[skipped:])
        if self.role == "assistant" or not (unread or addressed):
            return []
        if read and not informative(" ".join(unread)):
            return []
        text = kept(
            sentence, self.speaker, self.known, going_on=going_on or read, answering=answering,
            own_part=not unread, named=named,
        )  # fmt: skip
        if text is None:
            return []
        del self.out.skipped[skipped:]
        subject = re.search(r"\b(?:I|we)\b.*", sentence, re.I)  # its tense: the speaker's verb
        past = is_past(subject.group(0) if subject else sentence.strip())
        text = resolve_relative_dates(text, self.today, past=past)
        text = text[:1].upper() + text[1:]  # "Last Friday I went" -> "On 2023-07-07 Mel went"
        return [Statement(text, about=self.about, speaker=self.speaker, kept=True)]

    def skip(self, said: str, reason: str) -> None:
        self.out.skipped.append(Skipped(said.strip(), reason, self.role))

    def clause(self, raw: str, said: str) -> list[Statement]:
        text, corrects = _prepared(raw)
        news = self._news(text)
        if news is not None:
            return [news]
        text, reason = self._judged(text)
        found = [] if reason else recognise(text)
        if found or reason == clauses.REMARK:  # "I've come around on sushi, I like it now"
            self.antecedent = clauses.object_of(text) or self.antecedent
        if corrects is not None and not found:  # "I meant tree nuts, not peanuts"
            return [Statement("", about=self.about, corrects=corrects, speaker=self.speaker)]
        if not found:
            self.skip(said, reason or clauses.UNRECOGNISED)
        elif corrects is not None:
            found[0] = replace(found[0], corrects=corrects)
        past, revises = is_past(text), self.corrective
        owned = re.match(r"^(?:my|our)\b", text, re.I) is not None
        return [
            replace(
                s, text=resolve_relative_dates(s.text, self.today, past=past), about=self.about,
                revises=revises, speaker=self.speaker, owned=owned,
            )
            for s in found
        ]  # fmt: skip

    def _judged(self, text: str) -> tuple[str, str | None]:
        """The clause as a statement of its speaker (its subject put back, a pronoun resolved),
        or why it is none."""
        assistant = self.role == "assistant"
        reason = clauses.skip_reason(text, assistant=assistant)
        if reason is None and not clauses.about_speaker(text):
            restored = clauses.with_subject(text, PAST)
            if restored is None and self.corrective:  # "Sorry, the flight is on Saturday"
                restored = re.sub(r"^the\s+(?=\w)", "my ", text, count=1, flags=re.I)
                restored = restored if restored != text else None
            if restored is None:
                return text, clauses.NOT_ABOUT_SPEAKER
            text, reason = restored, clauses.skip_reason(restored, assistant=assistant)
        if reason == clauses.BACK_REFERENCE and self.antecedent:
            text = clauses.resolved(text, self.antecedent)
            reason = clauses.skip_reason(text, assistant=assistant)
        return text, reason

    def _news(self, text: str) -> Statement | None:
        """A statement about someone the memories name: "Lily started school"."""
        match = re.match(rf"^({NAME_WORD})\b(.*\w.*)$", text)
        if match is None or match.group(1).removesuffix("'s") not in self.known:
            return None
        if clauses.about_speaker(text) or clauses.skip_reason(text, assistant=False):
            return None
        name = match.group(1).removesuffix("'s")
        relation = self.known[name]
        fact = clean(f"{relation} {text}" if relation else text)
        ends = (name,) if DEATH.search(text) else ()
        fact = resolve_relative_dates(fact, self.today, past=is_past(text))
        return Statement(  # about the one named: "Mel's daughter Lily ...", "Lily ..." as said
            fact,
            about=self.about,
            replaces=ends,
            speaker=self.speaker,
            owned=bool(relation),
            kept=not relation,
        )


def _prepared(raw: str) -> tuple[str, tuple[str, str] | None]:
    """A clause without markers and hedges, and the correction it makes, if any."""
    text = clauses.clean(raw)
    corrects = None
    if (fixed := clauses.correction(text)) is not None:
        text, corrects = clauses.clean(fixed[0]), fixed[1]
    return clauses.with_others(clauses.hedged(text)), corrects


_HAS_NAMED = re.compile(
    r"^(?i:has) (?i:an?|one|two|three|four|five|\d+) ([\w-]+(?: [\w-]+)?)(?:,| named| called) "
    rf"({NAME_WORD}(?:(?:,| and|, and) {NAME_WORD})*)"
)
_REL_NAME = re.compile(rf"^((?i:{KNOWN_REL})) ({NAME_WORD})\b")


def known_names(texts: Sequence[str]) -> dict[str, str]:
    """Names the memories give to people and pets, with how they relate ("Lily": "daughter")."""
    known: dict[str, str] = {}
    for text in texts:
        match = _HAS_NAMED.match(text)
        if match:
            relation = match.group(1).split()[-1].lower()
            relation = relation[:-1] if relation.endswith("s") and relation[:-1] else relation
            for name in re.findall(NAME_WORD, match.group(2)):
                known[name] = relation
        match = _REL_NAME.match(text)
        if match:
            known[match.group(2)] = match.group(1).lower()
    return known
