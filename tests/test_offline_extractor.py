"""The offline extractor, measured on labelled messages, its reconciliation end to end, and the
warnings of an add that stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engram import AsyncMemory, Memory
from engram.core.dates import resolve_relative_dates
from engram.core.messages import Message
from engram.pipeline.evaluate import Scored, score
from engram.pipeline.offline import offline_extract
from engram.pipeline.offline_rewrite import is_past
from engram.prompts.extract import ExtractInput, ExtractOutput
from engram.providers.embedders.hashing import HashingEmbedder
from engram.providers.llm.openai import OpenAILLM
from engram.store.sqlite.store import SQLiteStore
from tests.fakes.openai_server import FakeOpenAI

DATA = Path(__file__).parent / "data"
TODAY = "2026-03-10"  # a Tuesday


def evaluate(name: str) -> Scored:
    predicted = expected = matched = 0
    for line in (DATA / name).read_text().splitlines():
        case = json.loads(line)
        raw = case.get("messages") or [{"role": "user", "content": case["user"]}]
        messages = [Message(m["role"], m["content"]) for m in raw]
        out = offline_extract(
            ExtractInput(messages=messages, today=TODAY, existing=case.get("existing", []))
        )
        result = score(
            [(f.event, f.text, f.id) for f in out.facts],
            [(e[0], e[1], e[2] if len(e) > 2 else None) for e in case["expect"]],
        )
        predicted, expected, matched = (
            predicted + result.predicted, expected + result.expected, matched + result.matched,
        )  # fmt: skip
    return Scored(predicted, expected, matched)


def test_labelled_set_has_enough_cases() -> None:
    assert len((DATA / "offline_cases.jsonl").read_text().splitlines()) >= 60


@pytest.mark.parametrize(
    ("name", "min_precision", "min_recall"),
    [("offline_cases.jsonl", 0.95, 0.95), ("offline_heldout.jsonl", 0.85, 0.8)],
)
def test_precision_and_recall(name: str, min_precision: float, min_recall: float) -> None:
    result = evaluate(name)
    print(f"offline extractor, {name}: precision {result.precision:.3f} recall {result.recall:.3f}")
    assert result.precision >= min_precision
    assert result.recall >= min_recall


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Visits next month", "Visits in April 2026"),
        ("Flight tomorrow", "Flight on 2026-03-11"),
        ("Started yesterday", "Started on 2026-03-09"),
        ("Watched it last night", "Watched it on the night of 2026-03-09"),
        ("Ran 5k this morning", "Ran 5k on 2026-03-10"),
        ("Conference next week", "Conference in the week of 2026-03-16"),
        ("Wedding next year", "Wedding in 2027"),
        ("Marathon in June", "Marathon in June 2026"),
        ("Skiing in February", "Skiing in February 2027"),
        ("Dinner on Friday", "Dinner on 2026-03-13"),
        ("Dinner next Friday", "Dinner on 2026-03-20"),
        ("Met last Monday", "Met on 2026-03-09"),
        ("Moved last month", "Moved in February 2026"),
        ("No dates here", "No dates here"),
    ],
)
def test_relative_dates(text: str, expected: str) -> None:
    assert resolve_relative_dates(text, TODAY) == expected


@pytest.mark.parametrize(
    ("text", "past", "expected"),
    [
        ("Went to a concert on Saturday", True, "Went to a concert on 2026-03-07"),
        ("Concert on Saturday", False, "Concert on 2026-03-14"),
        ("Quit smoking in January", True, "Quit smoking in January 2026"),
        ("Skiing in January", False, "Skiing in January 2027"),
        ("Hiked this weekend", True, "Hiked on the weekend of 2026-03-07"),
        ("Visits this weekend", False, "Visits on the weekend of 2026-03-14"),
        ("Camping the weekend after next", False, "Camping on the weekend of 2026-03-28"),
        ("Exam in two weeks", False, "Exam around 2026-03-24"),
        ("Met three days ago", True, "Met on 2026-03-07"),
        ("Moves in a few months", False, "Moves in June 2026"),
        ("Plays poker every Friday", False, "Plays poker every Friday"),
        ("In hospital since Sunday", False, "In hospital since 2026-03-08"),  # gone by
        ("Vegan since last month", False, "Vegan since February 2026"),
        ("Plays in a Sunday league", False, "Plays in a Sunday league"),  # not a date
        ("Loves the Friday market", False, "Loves the Friday market"),
        # arranged (`past=None`): the nearest month, before or after; a weekday to come
        ("Booked the gym in February", None, "Booked the gym in February 2026"),
        ("Booked the half marathon in May", None, "Booked the half marathon in May 2026"),
        ("Booked a table for Friday", None, "Booked a table for 2026-03-13"),
    ],
)
def test_relative_dates_follow_the_tense(text: str, past: bool | None, expected: str) -> None:
    assert resolve_relative_dates(text, TODAY, past=past) == expected


@pytest.mark.parametrize(
    ("clause", "past"),
    [
        ("I went to Rome in May", True),
        ("Went to Rome in May", True),  # no subject: its first word
        ("Did my first 14 km on Sunday", True),
        ("Rose loves Rome in May", False),  # a name, not "rose"
        ("I signed up for the Bristol half marathon in May", None),  # arranged: the event's date
        ("Signed up for a charity 10k in June", None),
        ("Priya booked a table for Friday", None),
        ("We bought concert tickets for Saturday", None),
        ("Ahmed from my team is getting married in June", False),  # a name, not "ahmed"
        ("Had dinner with Tom on Friday", True),  # "had" the verb
        ("I had been there on Sunday", True),
        ("Read a great book on Sunday", False),  # "read": present as well
    ],
)
def test_the_tense_that_reads_a_clause_dates(clause: str, past: bool | None) -> None:
    assert is_past(clause) is past


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("I love 5 kinds of tteok", "Loves 5 kinds of tteok"),  # "ok" is the word's, no tag
        ("I bought a new wok", "Bought a new wok"),
        ("I love hiking, lol", "Loves hiking"),
    ],
)
def test_a_trailing_tag_is_a_whole_word(memory: Memory, said: str, stored: str) -> None:
    assert [r["memory"] for r in memory.add(said, user_id="u")["results"]] == [stored]


def test_offline_reconciliation_end_to_end(memory: Memory) -> None:
    first = memory.add("Hi! I'm Alex. I live in Porto and I love chicken dishes.", user_id="alex")
    assert [r["memory"] for r in first["results"]] == [
        "Name is Alex",
        "Lives in Porto",
        "Loves chicken dishes",
    ]
    assert first["usage"]["extractor"] == "offline"
    moved = memory.add("I moved to Lisbon last week!", user_id="alex")
    (update,) = moved["results"]
    assert (update["event"], update["memory"], update["previous_memory"]) == (
        "UPDATE",
        "Lives in Lisbon",
        "Lives in Porto",
    )
    assert [h["event"] for h in memory.history(update["id"])] == ["ADD", "UPDATE"]
    assert memory.add("I live in Lisbon", user_id="alex")["results"] == []
    gone = memory.add("I don't live in Lisbon anymore.", user_id="alex")
    assert [(r["event"], r["memory"]) for r in gone["results"]] == [("DELETE", "Lives in Lisbon")]
    remaining = {r["memory"] for r in memory.get_all(user_id="alex")["results"]}
    assert remaining == {"Name is Alex", "Loves chicken dishes"}


# -- issue 13: nothing dropped silently ---------------------------------------------------------


def test_an_add_that_stores_nothing_says_why(memory: Memory) -> None:
    fragment = memory.add("Loved it!", user_id="alex")
    assert fragment["results"] == []
    (warning,) = fragment["warnings"]
    assert "no statement about the user" in warning and "'Loved it!'" in warning
    assert "configure an LLM" in warning
    memory.add("I live in Oslo.", user_id="alex")
    again = memory.add("Like I said, I live in Oslo.", user_id="alex")
    assert again["results"] == []
    assert any("already stored: 'Lives in Oslo'" in w for w in again["warnings"])
    nothing = memory.add("I don't play tennis anymore.", user_id="alex")
    assert nothing["warnings"] == ["nothing to retract: no stored memory says 'Plays tennis'"]
    question = memory.add("What's a good name for a goldfish?", user_id="alex")
    assert "(a question)" in question["warnings"][0]
    stored = memory.add("I work at Nokia.", user_id="alex")
    assert "warnings" not in stored


def test_the_assistant_needs_an_agent_to_be_remembered(memory: Memory) -> None:
    said = [
        {"role": "user", "content": "What are you up to this spring?"},
        {"role": "assistant", "content": "I'm travelling to Kyoto in April."},
    ]
    alone = memory.add(said, user_id="alex", timestamp="2026-03-10T12:00:00Z")
    assert alone["results"] == []
    assert "remembered only with an agent_id" in alone["warnings"][0]
    both = memory.add(said, user_id="alex", agent_id="ada", timestamp="2026-03-10T12:00:00Z")
    assert [r["memory"] for r in both["results"]] == ["Is travelling to Kyoto in April 2026"]
    assert [r["memory"] for r in memory.get_all(agent_id="ada")["results"]] == [
        "Is travelling to Kyoto in April 2026"
    ]
    agent = memory.add(
        [{"role": "user", "content": "Where are you based?"},
         {"role": "assistant", "content": "I'm based in Toronto. I can suggest some cafes!"}],
        agent_id="bot",
    )  # fmt: skip
    assert [r["memory"] for r in agent["results"]] == ["Lives in Toronto"]


def test_user_and_agent_may_state_the_same_fact(memory: Memory) -> None:
    result = memory.add(
        [{"role": "user", "content": "I'm vegetarian."},
         {"role": "assistant", "content": "Me too! I'm a vegetarian as well."}],
        user_id="alex", agent_id="ada",
    )  # fmt: skip
    assert len(result["results"]) == 2
    assert [r["memory"] for r in memory.get_all(user_id="alex")["results"]] == ["Is vegetarian"]
    assert [r["memory"] for r in memory.get_all(agent_id="ada")["results"]] == ["Is vegetarian"]
    change = memory.add("I'm not vegetarian anymore.", user_id="alex", agent_id="ada")
    assert [(r["event"], r["memory"]) for r in change["results"]] == [("DELETE", "Is vegetarian")]
    assert [r["memory"] for r in memory.get_all(agent_id="ada")["results"]] == ["Is vegetarian"]


@pytest.mark.parametrize(
    ("before", "after", "event", "previous", "now"),
    [
        ("I love steak.", "I went vegan last month.", "UPDATE", "Loves steak", "Is vegan"),
        ("I live in Porto.", "Sorry, I live in Braga, not Porto.", "UPDATE", "Lives in Porto",
         "Lives in Braga"),
        ("My son is called Leo.", "Oops, his name is Luca, not Leo.", "UPDATE",
         "Has a son named Leo", "Has a son named Luca"),
        ("I have a kayak.", "I sold my kayak.", "UPDATE", "Has a kayak", "Sold my kayak"),
        ("I drink a lot of tea.", "I stopped drinking tea.", "DELETE", "Drinks a lot of tea", None),
        ("I eat meat.", "Actually, I don't eat meat.", "UPDATE", "Eats meat", "Does not eat meat"),
    ],
)  # fmt: skip
def test_corrections_changes_and_retractions_keep_history(
    memory: Memory, before: str, after: str, event: str, previous: str, now: str | None
) -> None:
    (first,) = memory.add(before, user_id="sam")["results"]
    (change,) = memory.add(after, user_id="sam")["results"]
    assert change["event"] == event
    assert change.get("previous_memory", change["memory"]) == previous
    remaining = [r["memory"] for r in memory.get_all(user_id="sam")["results"]]
    assert remaining == ([now] if now else [])
    history = [(h["event"], h["old_memory"], h["new_memory"]) for h in memory.history(first["id"])]
    assert history[0] == ("ADD", None, previous)
    assert history[1][0] == event and history[1][1] == previous


def test_notes_are_not_part_of_the_llm_schema() -> None:
    assert "notes" not in json.dumps(ExtractOutput.model_json_schema())
    parsed = ExtractOutput.model_validate({"facts": [], "notes": ["from the model"]})
    assert parsed.notes == []
    out = offline_extract(ExtractInput(messages=[Message("user", "haha yes")], today=TODAY))
    assert out.facts == [] and "'haha yes'" in out.notes[0]


async def test_an_llm_that_finds_nothing_says_so(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    llm = OpenAILLM(model="m", base_url=fake_openai.base_url, api_key="test-key")
    store = SQLiteStore(tmp_path / "llm.db")
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store, llm=llm) as mem:
        fake_openai.reply({"facts": []})
        result = await mem.add("Sounds good!", user_id="alex")
        assert result["warnings"] == ["the LLM found nothing worth remembering"]
        fake_openai.reply({"facts": [{"text": "Lives in Oslo", "event": "ADD"}]})
        await mem.add("I live in Oslo", user_id="alex")
        fake_openai.reply({"facts": [{"text": "Lives in Oslo", "event": "NONE", "id": 0}]})
        again = await mem.add("I live in Oslo", user_id="alex")
        assert again["warnings"] == ["nothing new to remember: already stored: 'Lives in Oslo'"]
