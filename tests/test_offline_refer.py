"""The offline extractor reads a reply's leading "he" or "she" as the one person the two turns
before it name (`engram.pipeline.offline_refer`, issue 18), and leaves it alone otherwise."""

from __future__ import annotations

import pytest

from engram import Memory
from engram.core.messages import Message
from engram.pipeline.offline import offline_extract
from engram.pipeline.offline_refer import referent
from engram.prompts.extract import ExtractInput
from engram.providers.embedders.hashing import HashingEmbedder
from engram.store.sqlite.store import SQLiteStore

TODAY = "2026-02-03"


def turns(*lines: tuple[str, str]) -> list[Message]:
    return [Message("user", text, name) for name, text in lines]


def facts(before: list[Message], reply: Message) -> list[str]:
    out = offline_extract(ExtractInput(messages=[reply], today=TODAY, recent=before))
    return [f.text for f in out.facts]


@pytest.mark.parametrize(
    ("before", "reply", "who"),
    [
        ([("Rose", "How is Nora?")], "She's pregnant actually, due in June.", "Nora"),
        ([("Grace", "Mum has been in hospital since Tuesday."), ("Dmitri", "What happened?")],
         "She fell in the kitchen and broke her hip.", "Grace's mum"),
        ([("Dmitri", "How's your mum doing?")], "She fell and broke her hip.", "Grace's mum"),
        ([("Grace", "My brother got a new job."), ("Dmitri", "Oh nice!")],
         "He starts at the bank on Monday.", "Grace's brother"),
        ([("Pearl", "My grandson Eddie built me a greenhouse."),
          ("Jack", "He's a good lad, that Eddie.")],
         "He is. He's training to be a plumber now.", "Eddie"),
        ([("Pearl", "My grandson Eddie built me a greenhouse.")], "He's training to be a plumber.",
         "Eddie"),  # the relative and the name: one person
        ([("Pearl", "My granddaughter Mia built me a greenhouse.")], "She's training to be a plumber.",
         "Mia"),
        ([("Rose", "Oh my God, how is Nora?")], "She's pregnant, due in June.", "Nora"),
        ([("Rose", "How's Aunt Sue?")], "She fell and broke her hip.", "Aunt Sue"),
        ([("Rose", "I saw Dr Patel today.")], "He retired last year.", "Dr Patel"),
        ([("Rose", "How is Ana-Mar\u00eda?")], "She started a new job.", "Ana-Mar\u00eda"),
        ([("Grace", "Mum and Dad went to Spain.")], "She broke her wrist.", "Grace's mum"),
    ],
)  # fmt: skip
def test_the_person_the_turns_before_name(
    before: list[tuple[str, str]], reply: str, who: str
) -> None:
    assert referent(turns(*before), reply, "Grace") == who


@pytest.mark.parametrize(
    ("before", "reply"),
    [
        ([("Rose", "How are Nora and Ben?")], "She's pregnant, due in June."),  # two people
        ([("Dmitri", "How's your brother doing?")], "She started a new job."),  # not a she
        ([("Rose", "How is Nora?")], "She'd love to hear that."),  # not news of her
        ([("Rose", "How is Nora?")], "We're all fine, she is pregnant."),  # no leading pronoun
        ([("Rose", "We loved our trip to Porto.")], "She fell and broke her hip."),  # a place
        ([("Rose", "Tell Grace I said hi!")], "She started a new job."),  # the speaker
        ([], "She started a new job."),  # nothing before
        ([("Pearl", "My grandson Eddie built me a greenhouse.")], "She started a new job."),
        ([("Rose", "Hey Grace! How was Lisbon?")], "She started a new job."),  # a place
        ([("Rose", "I met Sam and Jo at the park")], "She started a new job."),
        ([("Rose", "Wow, Congrats to you both!")], "She started a new job."),
        # the review's: someone else's mum, someone's wife, a woman's husband, a man, a title
        # of the other sex, things, another person addressed, laughter
        ([("Rose", "Sarah can't come, her mum is in hospital."), ("Grace", "What happened?")],
         "She fell and broke her hip."),
        ([("Rose", "How's Tom's wife doing?")], "She's pregnant, due in June."),
        ([("Rose", "How is Nora's new baby?")], "She's sleeping through the night now."),
        ([("Rose", "How's Tom doing?")], "She left him last month."),
        ([("Grace", "My mum is in hospital."), ("Dmitri", "I saw Tom and he didn't say.")],
         "She fell and broke her hip."),
        ([("Rose", "I saw Mr Smith at the shop.")], "She retired last year."),
        ([("Rose", "I had my interview with Google today.")], "He asked about my salary."),
        ([("Rose", "We tried that new cafe called Luna.")], "She said it was overpriced."),
        ([("Rose", "Remember that Easter at the farm?")], "She cooked for twenty people."),
        ([("Rose", "I miss Christmas with Gran.")], "She made the best pudding."),
        ([("Dmitri", "Rose, how's your mum?")], "She got out of hospital yesterday."),
        ([("Rose", "How is Ben?")], "He he, he's fine. He got promoted."),
        ([("Rose", "How is Nora?"), ("Rose", "Any news?"), ("Rose", "Hello?")],
         "She started a new job."),  # the turn that named her is three back
    ],
)  # fmt: skip
def test_no_one_when_the_turns_before_do_not_name_one_person(
    before: list[tuple[str, str]], reply: str
) -> None:
    assert referent(turns(*before), reply, "Grace") is None


def test_an_unnamed_replier_is_left_alone() -> None:
    before = [Message("assistant", "Oh and Grace, how is your mum?")]
    assert referent(before, "She fell and broke her hip.", None) is None


def test_a_reply_that_turns_to_someone_else_keeps_its_own_he() -> None:
    got = facts(turns(("Rose", "How is Nora?")),
                Message("user", "She got married last month. He works at the bank.", "Grace"))  # fmt: skip
    assert not any("Nora works" in t for t in got), got


def test_a_pronoun_with_its_verb_is_not_a_name() -> None:
    """ "She's engaged! He proposed in Paris": "He" is not "She's" (the review's)."""
    for said in ("She's engaged! He proposed in Paris.", "It's done. He signed it today."):
        got = facts([], Message("user", said, "Grace"))
        assert not any(t.split(": ")[-1].startswith(("She's", "It's")) for t in got), got


def test_the_reply_is_kept_as_news_of_that_person() -> None:
    before = turns(
        ("Grace", "Mum has been in hospital since Tuesday."), ("Dmitri", "What happened?")
    )
    got = facts(before, Message("user", "She fell in the kitchen and broke her hip.", "Grace"))
    assert got == ["Grace's mum fell in the kitchen and broke her hip"]
    got = facts(turns(("Rose", "How is Nora?")),
                Message("user", "She's great! She's pregnant actually, due in June.", "Will"))  # fmt: skip
    assert got == ["Will: Nora's pregnant, due in June 2026"]  # Will told it
    got = facts(turns(("Rose", "How is Nora?")), Message("user", "She'd love to hear that", "Will"))
    assert got == []


def test_through_memory_add_turn_by_turn(tmp_path: object) -> None:
    """As an application adds a chat: one turn a call; the turns before come from the store."""
    store = SQLiteStore(tmp_path / "r.db")  # type: ignore[operator]
    with Memory(embedder=HashingEmbedder(64), store=store) as memory:
        for name, text in (("Rose", "How is Nora?"),
                           ("Will", "She's pregnant actually, due in June.")):  # fmt: skip
            memory.add({"role": "user", "name": name, "content": text}, user_id="chat",
                       run_id="s1")  # fmt: skip
        texts = [m["memory"] for m in memory.get_all(user_id="chat")["results"]]
    assert [t[:37] for t in texts if "Nora" in t] == ["Will: Nora's pregnant, due in June 20"], (
        texts
    )
