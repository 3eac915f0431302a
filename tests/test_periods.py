"""The period a search query asks about (`core.periods`) and the `time` signal of search: what
happened then comes first, and `explain` says so."""

from __future__ import annotations

from datetime import date

import pytest

from engram import Memory
from engram.core.periods import Period, query_period

TODAY = date(2024, 3, 13)  # a Wednesday


def day(text: str) -> date:
    return date.fromisoformat(text)


@pytest.mark.parametrize(
    ("query", "first", "last", "any_year"),
    [
        ("What movie did Joanna watch on 1 May, 2022?", "2022-05-01", "2022-05-01", False),
        ("What did Nate cook on November 9th 2022?", "2022-11-09", "2022-11-09", False),
        ("Where was the photo taken on December 1,2023?", "2023-12-01", "2023-12-01", False),
        ("what did we do on 2023-05-07", "2023-05-07", "2023-05-07", False),
        ("Where was John between August 11 and August 15 2023?", "2023-08-11", "2023-08-15", False),
        ("Where was Tim in the week before 16 November 2023?", "2023-11-09", "2023-11-15", False),
        ("What was shown on the Sunday before October 25, 2022?", "2022-10-23", "2022-10-23", False),
        ("the first half of September 2022", "2022-09-01", "2022-09-15", False),
        ("Where was he in early August, 2023?", "2023-08-01", "2023-08-10", False),
        ("What did John share in January 2024?", "2024-01-01", "2024-01-31", False),
        ("When did John get injured in 2023?", "2023-01-01", "2023-12-31", False),
        ("Which country was Tim visiting in the second week of November?", "2000-11-08",
         "2000-11-14", True),
        ("Which outdoor spot did Joanna visit in May?", "2000-05-01", "2000-05-31", True),
        ("What did I eat yesterday?", "2024-03-12", "2024-03-12", False),
        ("What did I do last week?", "2024-03-04", "2024-03-10", False),
        ("Anything I said last month?", "2024-02-01", "2024-02-29", False),
        ("Where did I go last Friday?", "2024-03-08", "2024-03-08", False),
        ("What happened three days ago?", "2024-03-09", "2024-03-11", False),
        ("What did we do last May?", "2023-05-01", "2023-05-31", False),
        ("between Dec 28 and Jan 3 2024", "2023-12-28", "2024-01-03", False),
    ],
)  # fmt: skip
def test_the_period_a_query_asks_about(query: str, first: str, last: str, any_year: bool) -> None:
    assert query_period(query, TODAY) == Period(day(first), day(last), any_year)


@pytest.mark.parametrize(
    "query",
    ["What does Melanie paint?", "May I ask what you like?", "the march for peace",
     "I have 3 cats and 2 dogs", "my flight is at 10:30", "room 12 may be free",
     "during march practice"],
)  # fmt: skip
def test_no_period(query: str) -> None:
    assert query_period(query, TODAY) is None


def test_a_days_place_in_a_period() -> None:
    may = Period(day("2022-05-01"), day("2022-05-31"))
    assert may.score(day("2022-05-15")) == 1.0
    assert may.score(day("2022-06-03")) == 0.5  # told a few days after
    assert may.score(day("2022-06-30")) == 0.0 and may.score(day("2022-04-30")) == 0.0
    any_may = Period(day("2000-05-01"), day("2000-05-31"), any_year=True)
    assert any_may.score(day("2019-05-20")) == 1.0 and any_may.score(day("2019-07-20")) == 0.0
    assert any_may.score(day("2020-02-29")) == 0.0  # no such day in the period's year
    new_year = Period(day("2000-12-29"), day("2001-01-04"), any_year=True)
    assert new_year.score(day("2024-01-02")) == 1.0 and new_year.score(day("2023-12-30")) == 1.0


def test_what_happened_then_comes_first(memory: Memory) -> None:
    for when, text in [
        ("2022-10-02", "Cooked a big pot of chili for the team"),
        ("2022-11-09", "Cooked coconut curry for dinner"),
        ("2023-03-01", "Cooked pancakes with the kids"),
    ]:
        memory.add(text, user_id="nate", infer=False, timestamp=f"{when}T18:00:00+00:00")
    found = memory.search("What did Nate cook on 9 November, 2022?", user_id="nate", explain=True)
    best = found["results"][0]
    assert best["memory"] == "Cooked coconut curry for dinner"
    assert best["explain"]["time"] == 1.0
    assert {r["explain"]["time"] for r in found["results"][1:]} == {0.0}
    plain = memory.search("What did Nate cook?", user_id="nate", explain=True)["results"]
    assert all("time" not in r["explain"] for r in plain)  # no period asked: no time signal
