"""The offline extractor keeps what was said (issue 18): every informative statement of a
conversation, by any speaker, as a self-contained third-person memory said by its speaker
(`actor_id`), with relative dates resolved; greetings, questions, compliments to the other
speaker and general knowledge are still skipped, and attributes still reconcile, each speaker's
apart."""

from __future__ import annotations

import pytest

from engram import Memory
from engram.core.messages import Message
from engram.pipeline.offline import offline_extract
from engram.pipeline.offline_clauses import spelled_out
from engram.pipeline.offline_keep import kept, third_person_sentence
from engram.pipeline.offline_own_name import in_first_person
from engram.prompts.extract import ExtractInput
from engram.types import AddResult

MONDAY = "2023-07-10T10:00:00+00:00"


def said(memory: Memory, name: str | None, text: str, when: str = MONDAY) -> AddResult:
    message: dict[str, str] = {"role": "user", "content": text}
    if name:
        message["name"] = name
    return memory.add(message, user_id="chat", timestamp=when)


def texts(result: AddResult) -> list[str]:
    return [r["memory"] for r in result["results"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I love my garden and it loves me", "Mel loves Mel's garden and it loves Mel"),
        ("I'm moving and I've sold my car", "Mel is moving and Mel has sold Mel's car"),
        ("I really want to go and I do pottery", "Mel really wants to go and Mel does pottery"),
        ("I went there and I was moved", "Mel went there and Mel was moved"),
        ("I'll call and I'd like tea", "Mel will call and Mel would like tea"),
        ("I have two kids", "Mel has two kids"),
        (
            "I wanna start a studio and I gotta save",
            "Mel wants to start a studio and Mel has to save",
        ),
        ("I'm carving out some me-time", "Mel is carving out some me-time"),  # not "Mel-time"
    ],
)
def test_first_person_becomes_the_speaker(text: str, expected: str) -> None:
    assert third_person_sentence(text, "Mel") == expected


def test_without_a_name_the_speaker_is_the_user() -> None:
    assert (
        third_person_sentence("My sister visited me", None) == "The user's sister visited the user"
    )


@pytest.mark.parametrize(
    "sentence",
    [
        "Wow, that's so cool!",  # an acknowledgement
        "What did they talk about?",  # a question
        "You'd be a great counselor!",  # a compliment to the other speaker
        "The Eiffel Tower is in Paris.",  # general knowledge: nobody's life
        "I loved that one!",  # says nothing on its own
        "I'm so tired today.",  # a passing state
        "Tell me a joke about my job.",  # a request
        "Let's meet at my place on Friday evening.",
        "Thanks for the great advice about my resume!",
    ],
)
def test_what_is_not_kept(sentence: str) -> None:
    assert kept(sentence, "Mel", {}) is None


def test_a_pronoun_goes_on_about_what_the_message_kept() -> None:
    assert kept("They were so excited about the dinosaur bones.", "Mel", {}) is None
    assert (
        kept("They were so excited about the dinosaur bones.", "Mel", {}, going_on=True)
        == "Mel: They were so excited about the dinosaur bones"
    )


def test_a_named_conversation_is_kept_by_speaker(memory: Memory) -> None:
    first = said(
        memory, "Caroline", "Hey Mel! Last Friday I went to a council meeting for adoption."
    )
    assert texts(first) == ["On 2023-07-07 Caroline went to a council meeting for adoption"]
    chat = said(memory, "Melanie", "Wow, that's awesome! You'd be a great mom! What did they say?")
    assert chat["results"] == []
    assert "no statement about Melanie" in chat["warnings"][0]
    reply = said(memory, "Caroline", "They talked about waiting lists and what agencies ask for.")
    assert texts(reply) == ["Caroline: They talked about waiting lists and what agencies ask for"]
    kids = said(memory, "Melanie", "My kids loved the museum yesterday. They were so excited!")
    assert texts(kids) == ["Melanie's kids loved the museum on 2023-07-09"]
    bones = said(memory, "Melanie", "We saw the bones. They were older than the Egyptian pyramids!")
    assert texts(bones) == [
        "Melanie saw the bones",
        "Melanie: They were older than the Egyptian pyramids",
    ]
    stored = memory.get_all(user_id="chat")["results"]
    assert {m["memory"]: m["actor_id"] for m in stored} == {
        "On 2023-07-07 Caroline went to a council meeting for adoption": "Caroline",
        "Caroline: They talked about waiting lists and what agencies ask for": "Caroline",
        "Melanie's kids loved the museum on 2023-07-09": "Melanie",
        "Melanie saw the bones": "Melanie",
        "Melanie: They were older than the Egyptian pyramids": "Melanie",
    }
    assert memory.get_all(user_id="chat", filters={"actor_id": "Melanie"})["results"]


def test_each_speaker_reconciles_apart(memory: Memory) -> None:
    boston = said(memory, "Caroline", "I live in Boston.")
    denver = said(memory, "Melanie", "I live in Denver.")
    assert texts(boston) == ["Caroline lives in Boston"] and texts(denver) == [
        "Melanie lives in Denver"
    ]
    moved = said(memory, "Caroline", "I moved to Seattle last month.")
    assert [(r["event"], r["memory"], r.get("previous_memory")) for r in moved["results"]] == [
        ("UPDATE", "Caroline lives in Seattle", "Caroline lives in Boston")
    ]
    assert said(memory, "Melanie", "I live in Denver.")["results"] == []  # known already
    stored = {m["memory"] for m in memory.get_all(user_id="chat")["results"]}
    assert stored == {"Caroline lives in Seattle", "Melanie lives in Denver"}
    best = memory.search("Where does Melanie live?", user_id="chat", top_k=1)["results"][0]
    assert best["memory"] == "Melanie lives in Denver"


def test_a_statement_that_says_more_than_its_facts_is_kept_whole() -> None:
    out = offline_extract(
        ExtractInput(
            messages=[
                Message(
                    "user",
                    "So I'm carving out some me-time each day - running, "
                    "reading, or playing my violin.",
                    "Mel",
                )
            ],
            today="2023-05-25",
        )
    )
    assert [f.text for f in out.facts] == [
        "Mel is carving out some me-time each day",
        "Mel is carving out some me-time each day - running, reading, or playing Mel's violin",
    ]
    assert {f.speaker for f in out.facts} == {"Mel"}


def test_an_unnamed_user_keeps_the_precise_style(memory: Memory) -> None:
    """Without names, facts keep mem0's subject-less style; a statement no rule reads is kept in
    the third person."""
    assert texts(said(memory, None, "I live in Porto.")) == ["Lives in Porto"]
    assert texts(said(memory, None, "The support group made me feel accepted.")) == [
        "The support group made the user feel accepted"
    ]
    assert said(memory, None, "The Eiffel Tower is in Paris.")["results"] == []


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (None, "Working on a novel about time travel these days.",
         "Is working on a novel about time travel"),  # not "Is Working"
        (None, "Still working on a thesis about coral reefs.",
         "Is still working on a thesis about coral reefs"),
        (None, "Worried about the exam results for biology.",
         "Is worried about the exam results for biology"),  # not "Is Worried"
        (None, "Just got back from Lisbon.", "Got back from Lisbon"),
        (None, "Only been to Japan once.", "Has only been to Japan once"),
        ("Jon", "Still working on opening a dance studio.",
         "Jon is still working on opening a dance studio"),
        ("Jon", "Been only to Rome once.", "Jon has been only to Rome once"),
    ],
)  # fmt: skip
def test_a_statement_without_its_subject_is_the_speakers(
    memory: Memory, name: str | None, text: str, expected: str
) -> None:
    """Chat drops the subject, after an adverb too; the speaker is put back."""
    assert texts(said(memory, name, text)) == [expected]


@pytest.mark.parametrize("text", ["Still the best.", "Just wondering.", "Also great news!"])
def test_an_adverb_alone_does_not_make_a_statement(memory: Memory, text: str) -> None:
    assert said(memory, None, text)["results"] == []


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("ana", "Ana is vegan", "I am vegan"),
        ("ana", "Ana is a nurse. Ana is from Porto.", "I am a nurse. I am from Porto."),
        ("ana", "Ana loves hiking and jazz.", "I love hiking and jazz."),
        ("ana", "Ana never eats meat.\nAna studies law.", "I never eat meat.\nI study law."),
        ("ana", "Ana's sister lives in Rome.", "My sister lives in Rome."),
        ("ana_maria_lopez", "Ana María López works at Acme", "I work at Acme"),
        # left as written: not surely about the user
        ("ana", "Ana and Tom are married.", "Ana and Tom are married."),
        ("ana", "Anabel is vegan", "Anabel is vegan"),
        ("ana", "ana is vegan", "ana is vegan"),  # a name is written as one
        ("ana", "Ana Jones lives in Oslo.", "Ana Jones lives in Oslo."),
        ("ana", "Ana is vegan?", "Ana is vegan?"),
        ("ana", "Ana's been to Rome twice.", "Ana's been to Rome twice."),
        ("bill", "Bill is due on Friday.", "Bill is due on Friday."),
        ("art", "Art is my passion.", "Art is my passion."),
        ("may", "May is my favourite month.", "May is my favourite month."),
        ("test", "Test results came back negative.", "Test results came back negative."),
        ("a", "A series of bad days ruined my week.", "A series of bad days ruined my week."),
    ],
)
def test_the_users_own_name_reads_as_i(name: str, text: str, expected: str) -> None:
    assert in_first_person(text, name) == expected


def test_a_user_named_in_their_own_scope_is_remembered(memory: Memory) -> None:
    """mem0 users write "Alex prefers dark mode" with user_id="alex": a fact about the user,
    stored and reconciled as "I prefer dark mode" is; someone else named is not the user."""
    assert texts(memory.add("Alex prefers dark mode.", user_id="alex")) == ["Prefers dark mode"]
    assert texts(memory.add("Alex is vegan", user_id="alex")) == ["Is vegan"]
    gone = memory.add("Alex is not vegan anymore.", user_id="alex")["results"]
    assert [(r["memory"], r["event"]) for r in gone] == [("Is vegan", "DELETE")]
    assert memory.add("Alex is vegan", user_id="sam")["results"] == []
    assert memory.add("Sam is vegan", user_id="alex")["results"] == []


def reply(question: str, answer: str) -> list[str]:
    """The facts of Ana's `answer` to Bob's `question`."""
    out = offline_extract(
        ExtractInput(
            messages=[Message("user", answer, "Ana")], today="2024-01-15",
            recent=[Message("user", question, "Bob")],
        )
    )  # fmt: skip
    return [f.text for f in out.facts]


def test_a_reply_is_about_the_speaker_only_when_asked_about_them() -> None:
    assert reply("Where is the Eiffel Tower?", "It's in Paris, the capital of France.") == []
    assert reply("What was your reading about?", "It was a reading of trans poets' stories.") == [
        "Ana: It was a reading of trans poets' stories"
    ]
    # a question about what they were talking of ("it") asks about the speaker's life too
    assert reply("Never been to one. What was it about?", "It was a reading of trans poetry.") == [
        "Ana: It was a reading of trans poetry"
    ]


def test_an_answer_needs_no_anchor_of_its_own() -> None:
    asked = "What was the hardest part of your first season?"
    assert reply(asked, "Fitting into the new team's style of play was hard for me.") == [
        "Fitting into the new team's style of play was hard for Ana"
    ]
    # a reply that only names what was asked keeps the question it answers
    assert reply(asked, "Fitting into the new team's style of play during pre-season.") == [
        "What was the hardest part of Ana's first season? Fitting into the new team's style of"
        " play during pre-season"
    ]
    assert reply("Which team did you sign with?", "The Minnesota Wolves! Can't wait!") == [
        "Which team did Ana sign with? The Minnesota Wolves"
    ]
    assert reply("What did you do last weekend?", "Hiking in the Peaks with my brother.") == [
        "What did Ana do on the weekend of 2024-01-13? Hiking in the Peaks with Ana's brother"
    ]
    assert reply("How are you?", "Good, thanks!") == []  # small talk
    assert reply("What's up?", "Not much, just the usual.") == []
    assert reply("What've you been up to?", "Bob! Loads of gardening.") == []
    # no answer: the asker's name, a yes, a photo shown, words to the other speaker
    team = "Which team did you sign with?"
    assert reply(team, "Bob!") == [] and reply(team, "Yep!") == []
    assert reply(team, "Here's a pic of the stadium.") == []
    assert reply(team, "Your support, Bob, means a lot.") == []
    # a reaction says nothing, whoever it names
    assert reply(asked, "Sounds great, Bob!") == []
    assert reply(asked, "Must have been an amazing season for everyone!") == []
    # once the speaker asks back or turns to the other speaker, the answer is over
    assert reply(asked, "How about yours? The weather was awful all winter long.") == []
    # not an answer: the question is general knowledge
    assert (
        reply("Where is the Eiffel Tower?", "The tower stands in central Paris by the Seine.") == []
    )


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        (
            "I made a dairy-free chocolate cake last weekend, maybe you would like that!",
            "Mel made a dairy-free chocolate cake last weekend",
        ),
        (
            "This book I read last year reminds me to pursue my dreams, just like you are doing!",
            "This book Mel read last year reminds Mel to pursue Mel's dreams",
        ),
        (
            "I hope you feel better soon, my sister had the flu last week too.",
            "Mel's sister had the flu last week",
        ),
        ("You should try yoga, it helped my back a lot.", None),  # "it" is the part left out
        ("If you ever visit Lisbon, I can show you around.", None),
        ("Congrats on the new job, I know you worked hard for it.", None),
        ("I'm so happy they gave you a warm welcome back.", None),
        (  # the speaker's own doing, though it names the other speaker's advice
            "I took your recommendation and watched the whole trilogy.",
            "Mel took your recommendation and watched the whole trilogy",
        ),
    ],
)
def test_what_a_sentence_says_to_the_other_speaker_is_left_out(
    sentence: str, expected: str | None
) -> None:
    assert kept(sentence, "Mel", {}, own_part=True) == expected


def test_a_named_speakers_restriction_keeps_its_stance(memory: Memory) -> None:
    said(memory, "Ana", "I'm allergic to peanuts.")
    said(memory, "Ana", "I love grilled sardines.")
    found = memory.search("What should I avoid cooking for Ana?", user_id="chat", explain=True)
    best = found["results"][0]
    assert best["memory"] == "Ana is allergic to peanuts" and best["explain"]["stance"] == 1.0


def test_a_speaker_named_as_the_user_is_the_user(memory: Memory) -> None:
    """An application that starts naming the user's messages ("Ana" in `user_id="ana"`) goes on
    updating the facts stored without a name; another speaker's never do."""
    memory.add("I live in Oslo. I'm allergic to peanuts.", user_id="ana")
    named = {"role": "user", "content": "I live in Berlin now. I'm not allergic to peanuts "
             "anymore.", "name": "Ana"}  # fmt: skip
    changes = memory.add(named, user_id="ana")["results"]
    assert [(r["event"], r["memory"]) for r in changes] == [
        ("UPDATE", "Ana lives in Berlin"),
        ("DELETE", "Is allergic to peanuts"),
    ]
    memory.add({"role": "user", "content": "I live in Rome.", "name": "Bob"}, user_id="ana")
    stored = {m["memory"] for m in memory.get_all(user_id="ana")["results"]}
    assert stored == {"Ana lives in Berlin", "Bob lives in Rome"}


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Marcus sprained his ankle, so he's out for three weeks.",
         "Ali: Marcus sprained his ankle, so he's out for three weeks"),
        ("Nora has been amazing, she does all the books and the website.",
         "Ali: Nora has been amazing, she does all the books and the website"),
        ("Doreen from the choir moved into the care home on Elm Road.",
         "Ali: Doreen from the choir moved into the care home on Elm Road"),
        ("Everyone loved the new playground downtown.", None),  # nobody named
        ("Yesterday was long and exhausting at the office.", None),
        ("Pizza dough needs about two days to rise properly.", None),  # no verb of news after it
    ],
)  # fmt: skip
def test_news_of_someone_the_speaker_names_is_kept(sentence: str, expected: str | None) -> None:
    assert kept(sentence, "Ali", {}) == expected


@pytest.mark.parametrize(
    "sentence",
    [
        "Oh Jack, I'm sorry to hear that.",  # sympathy, to a named speaker
        "I'm so sorry about that, really.",
        "Amazing party, thanks for having us.",  # thanks, whatever comes before it
        "Hahaha poor baby lol.",  # laughter says nothing
    ],
)
def test_sympathy_thanks_and_laughter_are_not_kept(sentence: str) -> None:
    assert kept(sentence, "Pearl", {}, answering=True) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("im off to yoga", ["Ana is off to yoga"]),  # chat spelling, without apostrophes
        ("got promoted btw", ["Ana got promoted btw"]),  # "got" + participle: not a name
        ("i play in a Sunday league if u ever want to come watch",
         ["Ana plays in a Sunday league"]),  # the part for the other speaker left out
    ],
)  # fmt: skip
def test_chat_as_typed(text: str, expected: list[str]) -> None:
    out = offline_extract(ExtractInput(messages=[Message("user", text, "Ana")], today="2026-02-03"))
    assert [f.text for f in out.facts] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("im off, i dont drive", "I'm off, I don't drive"),
        ("Dont worry", "Don't worry"),
        ("see u tmrw", "see you tmrw"),
        ("I visited the U.S. and IM SO DONE", "I visited the U.S. and IM SO DONE"),
        ("i.e. the usual", "i.e. the usual"),
    ],
)
def test_chat_spelling_is_spelled_out(text: str, expected: str) -> None:
    assert spelled_out(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Kofi is still sulking, he misses his old friends. He only cares about dinosaurs.",
            ["Ana: Kofi is still sulking, he misses his old friends",
             "Ana: Kofi only cares about dinosaurs"],
        ),
        (  # the sentence naming her is not kept (it speaks to the other speaker); she is named
            "Doreen from the choir asked after you. She's moved into the care home on Elm Road.",
            ["Ana: Doreen's moved into the care home on Elm Road"],
        ),
    ],
)  # fmt: skip
def test_he_or_she_after_a_name_is_that_person(text: str, expected: list[str]) -> None:
    out = offline_extract(ExtractInput(messages=[Message("user", text, "Ana")], today="2026-02-03"))
    assert [f.text for f in out.facts] == expected
