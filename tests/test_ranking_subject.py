"""Ranking when the query names the scope's subject, or asks what to avoid (issue 13, item 5).

End to end on the real MiniLM model and the offline extractor, through `Memory` on a temporary
SQLite store; then the rules on their own (`core.text`, `pipeline.search`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engram import AsyncMemory, Memory
from engram.cli import main as cli_main
from engram.core.filters import Node
from engram.core.scope import resolve_filters
from engram.core.scoring import RECIPES
from engram.core.text import asks_to_avoid, names_of, stance, stated_name, subject_spans
from engram.pipeline.queries import ScopeNames
from engram.pipeline.subject import phrase, subject_names
from engram.providers.embedders.hashing import HashingEmbedder
from engram.providers.embedders.minilm import MiniLMEmbedder
from engram.store.base import Candidate
from engram.store.sqlite.store import SQLiteStore


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> MiniLMEmbedder:
    return MiniLMEmbedder(cache_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture
def memory(tmp_path: Path, minilm: MiniLMEmbedder) -> Iterator[Memory]:
    with Memory(embedder=minilm, store=SQLiteStore(tmp_path / "e.db")) as mem:
        yield mem


def texts(memory: Memory, query: str, **scope: Any) -> list[str]:
    return [str(h["memory"]) for h in memory.search(query, **scope)["results"]]


def first(found: list[str], *words: str) -> int:
    """The rank of the first result that holds one of the words."""
    return next(i for i, t in enumerate(found) if any(w in t.lower() for w in words))


# -- the examples ------------------------------------------------------------------------


def test_readme_quickstart(memory: Memory) -> None:
    memory.add("I just moved to Lisbon and I love grilled sardines", user_id="alex")
    memory.add([{"role": "user", "content": "I'm allergic to peanuts"}], user_id="alex")
    found = texts(memory, "what should I not cook for Alex?", user_id="alex")
    assert "allergic" in found[0].lower()


def test_the_name_does_not_dominate_a_query_about_the_user(memory: Memory) -> None:
    memory.add("Hi, my name is Alex.", user_id="alex")
    memory.add("I am allergic to nuts.", user_id="alex")
    memory.add("I just moved to Lisbon and I love grilled sardines", user_id="alex")
    memory.add([{"role": "user", "content": "I'm allergic to peanuts"}], user_id="alex")
    name, sardines = "name is alex", "sardines"
    found = texts(memory, "Can Alex eat peanut butter?", user_id="alex")
    assert "peanut" in found[0].lower()
    assert first(found, "allergic") < first(found, name)
    found = texts(memory, "what should I not cook for Alex?", user_id="alex")
    assert "allergic" in found[0].lower()
    assert first(found, "allergic") < min(first(found, name), first(found, sardines))
    found = texts(memory, "What food should I avoid serving?", user_id="alex")
    assert first(found, "peanut") < first(found, sardines)


def test_the_demo_answers_what_to_avoid_with_the_allergy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main(["demo", "--json"]) == 0
    searches = json.loads(capsys.readouterr().out)["searches"]
    found = [str(text) for text, _ in searches["What food should I avoid serving?"]]
    assert "peanut" in found[0].lower()
    if any("sardines" in t for t in found):
        assert first(found, "peanut") < first(found, "sardines")


# -- edge cases, end to end ----------------------------------------------------------------------


def test_a_name_stated_by_the_memories_is_the_subject_in_any_scope(memory: Memory) -> None:
    for text in ("My name is Tomás.", "I teach high school chemistry.", "I'm learning the cello."):
        memory.add(text, user_id="u-1043", infer=False)
    found = texts(memory, "What instrument is Tomás learning?", user_id="u-1043")
    assert "cello" in found[0]
    found = texts(memory, "What does Tomas do for a living?", user_id="u-1043")  # no accent
    assert "chemistry" in found[0]


def test_a_query_that_is_only_the_name_is_searched_as_asked(memory: Memory) -> None:
    memory.add("Hi, my name is Alex.", user_id="alex", infer=False)
    memory.add("I love grilled sardines", user_id="alex", infer=False)
    for query in ("Alex", "alex?", "Who is Alex?"):
        assert "Alex" in texts(memory, query, user_id="alex")[0]


def test_names_with_pattern_characters(memory: Memory) -> None:
    user = "al(ex)+[1]*"
    memory.add("Likes green tea", user_id=user, infer=False)
    memory.add("Al(ex)+[1]* is a member of the chess club", user_id=user, infer=False)
    found = texts(memory, "What does Al(ex)+[1]* drink?", user_id=user)
    assert found[0] == "Likes green tea"
    assert texts(memory, "(", user_id=user) is not None  # a query of syntax alone is no error


def test_an_agent_scope_and_a_user_with_an_agent(memory: Memory) -> None:
    for text in ("Name is Remy", "Specialises in French cuisine", "Measures ingredients in grams"):
        memory.add(text, agent_id="remy", infer=False)
    assert texts(memory, "What cuisine does Remy specialise in?", agent_id="remy")[0] == (
        "Specialises in French cuisine"
    )
    for text in ("Name is Jo", "Has a knee injury", "Prefers morning workouts"):
        memory.add(text, user_id="jo", agent_id="coach", infer=False)
    found = texts(memory, "When does Jo like to train?", user_id="jo", agent_id="coach")
    assert found[0] == "Prefers morning workouts"


def test_a_name_stated_after_the_first_search_is_learnt(memory: Memory) -> None:
    memory.add("I love jazz", user_id="u7", infer=False)
    memory.add("I work at a bakery in Bristol", user_id="u7", infer=False)
    assert texts(memory, "Where does Sam work?", user_id="u7")  # the names are read here
    memory.add("Hi, my name is Sam.", user_id="u7", infer=False)
    assert texts(memory, "Where does Sam work?", user_id="u7")[0] == "I work at a bakery in Bristol"
    assert texts(memory, "What music does Sam like?", user_id="u7")[0] == "I love jazz"


def test_an_id_that_is_a_word_names_nobody_in_lower_case(memory: Memory) -> None:
    memory.add("I have a maths test on Friday", user_id="test", infer=False)
    memory.add("I like oranges", user_id="test", infer=False)
    assert texts(memory, "When is my test?", user_id="test")[0] == "I have a maths test on Friday"


# -- the rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Name is Alex Moreno", "Alex Moreno"),
        ("Hi, my name is Rosa.", "Rosa"),
        ("User's name is Sam", "Sam"),
        ("My name is Alex and I live in Lisbon", "Alex"),
        ("Nickname is Bia", "Bia"),
        ("Name is Inês", "Inês"),
        ("Name is 李雷", "李雷"),
        ("Her name is Maria", None),
        ("Has a dog whose name is Rex", None),
        ("Name is not important", None),
        ("Has a sister named Maria", None),
    ],
)
def test_stated_names(text: str, name: str | None) -> None:
    assert stated_name(text) == name


def test_names_in_a_query() -> None:
    names = [*names_of("maria.lopez", stated=False), *names_of("Alex Moreno", stated=True)]

    def named(query: str) -> list[str]:
        return [query[start:end] for start, end, _ in subject_spans(query, names)]

    assert named("What does María López's father do?") == ["María López"]
    assert named("Where does Alex Moreno live? Ask Alex.") == ["Alex Moreno", "Alex"]
    assert named("does alex like tea?") == ["alex"]  # no capitals at all: stated names count
    assert named("Is maria ok?") == []  # an id's words count where written as a name
    assert named("Does Alexander like tea?") == []  # words, not prefixes
    names = list(names_of("王伟", stated=False))
    assert named("What does 王伟 like?") == ["王伟"]  # no case: written as a name


def test_phrasing_leaves_the_subject_out() -> None:
    names = [
        *names_of("jo", stated=False, of="user_id"),
        *names_of("Coach Kai", stated=True, of="agent_id"),
    ]
    asked = phrase("Which exercises did Coach Kai give Jo's class?", names)
    assert asked.embedded == "Which exercises did the assistant give the user's class?"
    assert asked.terms == ["exercises", "give", "class"]
    assert phrase("Jo", names).embedded == "Jo"  # nothing but the name: as asked
    assert phrase("Where is Lisbon?", names).terms == ["lisbon"]


async def test_names_come_from_the_subjects_own_memories(tmp_path: Path) -> None:
    """One lookup per scope id; a speaker's turn names the speaker; an agent's names are those
    of its own memories, not of its users'."""
    from engram.providers.embedders.hashing import HashingEmbedder

    class Counting(SQLiteStore):
        calls = 0

        async def candidates(self, *args: Any, **kwargs: Any) -> list[Candidate]:
            Counting.calls += 1
            return await super().candidates(*args, **kwargs)

    store = Counting(tmp_path / "e.db")
    async with AsyncMemory(embedder=HashingEmbedder(64), store=store) as memory:
        add = memory.add
        await add("Name is Kim", user_id="kim", agent_id="coach", infer=False)
        await add("Name is Coach Kai", agent_id="coach", infer=False)
        await add("Name is Jo", user_id="jo", agent_id="coach", infer=False)
        await add({"role": "user", "content": "my name is Caroline", "name": "Caroline"},
                  user_id="conv-1", infer=False)  # fmt: skip
        ctx = await memory._open()

        def where(user_id: str, agent_id: str | None = None) -> Node | None:
            return resolve_filters(None, user_id=user_id, agent_id=agent_id)

        names = await subject_names(ctx, where(user_id="jo", agent_id="coach"), graph=False)
        assert {(n.words, n.stated, n.of) for n in names or []} == {
            (("jo",), False, "user_id"), (("jo",), True, "user_id"),
            (("coach",), False, "agent_id"), (("coach", "kai"), True, "agent_id"),
            (("coach",), True, "agent_id"),
        }  # fmt: skip
        assert [
            n
            for n in await subject_names(ctx, where(user_id="conv-1"), graph=False) or []
            if n.stated
        ] == []
        Counting.calls = 0
        for _ in range(3):
            await memory.search("What does Jo like?", user_id="jo", agent_id="coach")
        assert Counting.calls == 3  # the search's own call only: the names are remembered


def test_asking_what_to_avoid_and_stances() -> None:
    assert asks_to_avoid("What food should I avoid serving?")
    assert asks_to_avoid("what shouldn\u2019t I cook for Alex?")
    assert asks_to_avoid("Which balloons are unsafe for the party?")
    assert asks_to_avoid("Is there anything Sam can't eat?")
    assert not asks_to_avoid("Where does Alex live?")
    assert not asks_to_avoid("Why doesn't Alex skip football on Friday?")  # asks for a reason
    assert not asks_to_avoid("When did Sam stop eating meat? Was it not in May?")
    assert stance("Is allergic to peanuts") == 1.0
    assert stance("Does not drink alcohol") == 1.0
    assert stance("Loves grilled sardines") == -1.0
    assert stance("Lives in Lisbon") == 0.0
    assert RECIPES["vector"].stance == 0.0 and RECIPES["keyword"].stance == 0.0


def test_a_speakers_turn_takes_no_stance(memory: Memory) -> None:
    memory.add({"role": "user", "content": "I love cooking fish", "name": "Caroline"},
               user_id="conv-1", infer=False)  # fmt: skip
    hits = memory.search("What should I not cook?", user_id="conv-1", explain=True)["results"]
    assert "stance" not in hits[0]["explain"]
    memory.add("I love cooking fish", user_id="alex", infer=False)
    hits = memory.search("What should I not cook?", user_id="alex", explain=True)["results"]
    assert hits[0]["explain"]["stance"] == -1.0


def test_the_assistant_naming_itself_does_not_name_the_user(tmp_path: Path) -> None:
    with Memory(embedder=HashingEmbedder(64), store=SQLiteStore(tmp_path / "a.db")) as memory:
        memory.add(
            [{"role": "assistant", "content": "Hi, my name is Rosa, your travel assistant."},
             {"role": "user", "content": "Rosa, book me a train to Porto."}],
            user_id="alice", infer=False,
        )  # fmt: skip
        found = memory.search("What did Rosa book?", user_id="alice", explain=True)
        assert found["results"] and all(r["explain"]["keyword"] > 0 for r in found["results"])


def test_scope_names_expire() -> None:
    now = [0.0]
    names = ScopeNames(ttl=60, clock=lambda: now[0])
    names.put(("user_id", "a"), ("Alex",))
    assert names.learn(("user_id", "a"), "Al") and names.get(("user_id", "a")) == ("Alex", "Al")
    now[0] = 61.0
    assert names.get(("user_id", "a")) is None  # looked up again: a deleted name is forgotten
