"""The offline extractor on chat as people type it (issue 18, session 17's review): names that
are also verbs, the asker's own "I" in a question, chat spelling next to other languages,
numbers with commas, task questions of an assistant, general news, and the tense that reads a
message's dates. Each case was a defect found by a review of the session's change."""

from __future__ import annotations

import re

import pytest

from engram.core.messages import Message
from engram.pipeline.offline import offline_extract
from engram.pipeline.offline_clauses import spelled_out
from engram.prompts.extract import ExtractInput

TODAY = "2026-02-03"  # a Tuesday


def facts(
    text: str, asked: str | None = None, *, name: str | None = "Ana", asker: str | None = "Bob"
) -> list[str]:
    """One message's facts, `asked` said just before it by `asker` (None: the assistant)."""
    recent = [Message("user" if asker else "assistant", asked, asker)] if asked else []
    message = Message("user", text, name)
    out = offline_extract(ExtractInput(messages=[message], today=TODAY, recent=recent))
    return [f.text for f in out.facts]


@pytest.mark.parametrize(
    "said", ["Drew moved to Chicago last month.", "Rose got married!", "Sang won the talent show."]
)
def test_a_name_that_is_also_a_past_verb_is_not_the_speaker(said: str) -> None:
    assert not any(re.search(r"\bAna (?:drew|rose|sang)\b", t) for t in facts(said))


@pytest.mark.parametrize(
    ("reply", "question", "asker"),
    [
        ("A nice scarf", "What should I get my mom for her birthday?", "Bob"),
        ("Delicious", "What did you think of my lasagna?", "Bob"),
        ("My taxes", "What can I help you with today?", None),
        ("The one about climate change", "Which article would you like me to summarize?", None),
        ("Something catchy", "What would you like for the title?", None),
    ],
)
def test_an_answer_to_the_askers_own_or_an_assistants_question_is_not_a_fact(
    reply: str, question: str, asker: str | None
) -> None:
    got = facts(reply, question, name=None if asker is None else "Ana", asker=asker)
    assert not any(re.search(r"\b(?:I|my|me)\b|\?", t) for t in got), got


@pytest.mark.parametrize(
    "text",
    [
        "Jony Ive designed it",  # a name
        "I made a u-turn on the highway",
        "I posted it on reddit.com/u/anaplays",
        "Ich war im Urlaub in Spanien",  # German "im"
        "C'est le livre dont je parle",  # French "dont"
    ],
)
def test_chat_spelling_leaves_names_links_and_other_languages_alone(text: str) -> None:
    assert spelled_out(text) == text


def test_a_number_keeps_its_comma_when_a_part_for_the_other_speaker_is_left_out() -> None:
    got = facts("I make 85,000 a year, can you believe it")
    assert got and all("85,000" in t for t in got)


@pytest.mark.parametrize(
    ("reply", "question"),
    [
        ("Max", "omg so cute!! what did u name him?"),
        ("Cancun!", "Where are you guys headed for spring break?"),
        ("Paris", "Where you're going for your honeymoon?"),
    ],
)
def test_a_question_kept_with_its_answer_has_no_you_left(reply: str, question: str) -> None:
    assert not any(re.search(r"\b(?:u|you|Ana guys|Ana're)\b", t) for t in facts(reply, question))


@pytest.mark.parametrize(
    ("reply", "question"),
    [
        ("Almost 5", "What time is it?"),
        ("Tuesday", "What day is it today?"),
        ("idk lol", "What did you do this weekend?"),
        ("ugh", "What did you do this weekend?"),
        ("Bob! Long time no see", "Hey Ana! What are you up to?"),
        ("aaaaaaaaaaaaaaaaaaaa", "What did you do?"),
    ],
)
def test_filler_is_no_answer(reply: str, question: str) -> None:
    assert facts(reply, question) == []


@pytest.mark.parametrize(
    ("reply", "question", "word"),
    [
        ("Manchester United", "Which team did you sign with?", "Manchester United"),
        ("Red", "What color did you paint your kitchen?", "Red"),
        ("To Denver", "Where are you moving?", "Denver"),
    ],
)
def test_an_answer_may_end_in_ed_or_start_with_to(reply: str, question: str, word: str) -> None:
    assert any(word in t for t in facts(reply, question))


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Apple released a new iPhone today", None),
        ("Paris is beautiful in the spring.", "Ana"),
        ("Netflix raised its prices again.", "Ana"),
    ],
)
def test_general_news_is_not_kept(text: str, name: str | None) -> None:
    assert facts(text, name=name) == []


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("Ahmed from my team is getting married in June.", "June 2026"),  # a name, no past verb
        ("Jared from work invited me to his party on Saturday.", "2026-02-07"),
        ("I signed up for the gym in January.", "January 2026"),  # arranged: the nearest
        ("Had dinner with Tom on Friday", "2026-01-30"),  # "had" the verb
        ("I had a great time at the lake with the kids on Sunday", "2026-02-01"),
    ],
)
def test_the_tense_reads_the_dates(text: str, date: str) -> None:
    assert any(date in t for t in facts(text)), facts(text)
