"""Export and import as JSON Lines: memories with everything attached to them, losslessly."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from engram import Memory
from engram.core.scope import resolve_filters
from engram.errors import ConflictError, ValidationError
from engram.store.sqlite.store import SQLiteStore
from engram.transfer import export_lines, import_lines
from tests.conftest import Backend

CONFIG = {"graph_store": {"provider": "sqlite"}, "embedder": {"provider": "hashing"}}


@pytest.fixture
def open_memory(backend: Backend) -> Callable[[str], Memory]:
    """A graph-memory store of the test's backend, by name (each its own file or project)."""
    return lambda name: Memory(CONFIG, store=backend(name))


@pytest.fixture
def source(open_memory: Callable[[str], Memory]) -> Iterator[Memory]:
    with open_memory("source") as memory:
        memory.add("I live in Porto.", user_id="alex", timestamp="2025-01-01T00:00:00Z")
        memory.add("I moved to Lisbon.", user_id="alex", timestamp="2025-06-01T00:00:00Z")
        nimbus = memory.add("I work at Nimbus.", user_id="alex")["results"][0]["id"]
        memory.delete(nimbus)  # its relation goes; its history and profile change stay
        memory.add("I live in Oslo. I have a dog named Rex.", user_id="bob")
        liked = memory.get_all(user_id="bob")["results"][0]["id"]
        memory.feedback(liked, "POSITIVE", "spot on")
        said = {"role": "user", "content": "The ferry leaves at nine.", "name": "John Smith"}
        memory.add([said], user_id="bob", infer=False)  # a speaker's name holds a space
        yield memory


def export(memory: Memory, where: Any = None) -> list[str]:
    async def collect() -> list[str]:
        return [line async for line in export_lines(memory.async_memory, where)]

    return memory._loop.run(collect())


def load(memory: Memory, lines: list[str]) -> dict[str, int]:
    return memory._loop.run(import_lines(memory.async_memory, lines))


def kinds(lines: list[str]) -> list[str]:
    return [json.loads(line)["type"] for line in lines]


def graph_state(memory: Memory, user: str) -> dict[str, Any]:
    store = memory.async_memory.store
    return {
        "relations": memory._loop.run(store.relations({"user_id": user}, include_ended=True)),
        "profile": memory.get_profile(user_id=user, include_history=True),
        "memories": memory.get_all(user_id=user)["results"],
    }


def test_a_whole_export_round_trips_with_graph_profile_feedback(
    source: Memory, open_memory: Callable[[str], Memory]
) -> None:
    lines = export(source)
    assert set(kinds(lines)) == {
        "memory", "history", "entity", "relation", "profile", "profile_change", "feedback",
    }  # fmt: skip
    ended = [json.loads(x) for x in lines if '"relation"' in x and '"invalid_at": null' not in x]
    assert [(r["source"], r["target"]) for r in ended] == [("alex", "Porto")]
    with open_memory("copy") as copy:
        counts = load(copy, lines)
        assert counts["memories"] == 4 and counts["feedback"] == 1
        assert counts["relations"] == len([k for k in kinds(lines) if k == "relation"])
        assert export(copy) == lines  # byte for byte
        for user in ("alex", "bob"):
            assert graph_state(copy, user) == graph_state(source, user)
        nimbus = next(json.loads(x) for x in lines if "Nimbus" in x and '"history"' in x)
        assert [h["event"] for h in copy.history(nimbus["memory_id"])] == ["ADD", "DELETE"]
        found = copy.search("where does bob live", user_id="bob", enable_graph=True)
        assert {"source": "bob", "relationship": "lives_in", "destination": "Oslo"} in found[
            "relations"
        ]
        assert found["results"][0]["memory"] == "Lives in Oslo"
        # the entities' name vectors (entity resolution) are computed again, alike
        vectors = entity_vectors(source)
        assert vectors and all(vector for _, vector in vectors)
        assert entity_vectors(copy) == vectors


def entity_vectors(memory: Memory) -> list[tuple[str, list[float]]]:
    """The stored name vectors of the graph's entities, read from the store's own tables."""
    store = memory.async_memory.store
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            rows = conn.execute("SELECT name, embedding FROM entities ORDER BY id").fetchall()
        return [(name, np.frombuffer(blob, dtype=np.float32).tolist()) for name, blob in rows]
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(store.url) as conn:  # type: ignore[attr-defined]
        register_vector(conn)
        rows = conn.execute(
            "SELECT name, embedding FROM entities WHERE project = %s ORDER BY id",
            (store.project,),  # type: ignore[attr-defined]
        ).fetchall()
    return [(name, vector.to_list()) for name, vector in rows]


def test_a_scope_export_carries_only_that_scope(
    source: Memory, open_memory: Callable[[str], Memory]
) -> None:
    lines = export(source, resolve_filters(None, user_id="bob"))
    rows = [json.loads(line) for line in lines]
    assert {r.get("user_id") for r in rows if r["type"] != "history" and "user_id" in r} == {"bob"}
    assert {r["type"] for r in rows} == {
        "memory", "history", "entity", "relation", "profile", "profile_change", "feedback",
    }  # fmt: skip
    with open_memory("copy") as copy:
        load(copy, lines)
        assert export(copy) == lines
        assert graph_state(copy, "bob") == graph_state(source, "bob")
        assert copy.get_all(user_id="alex")["results"] == []


def test_bad_or_conflicting_lines_write_nothing(
    source: Memory, open_memory: Callable[[str], Memory]
) -> None:
    lines = export(source)
    with open_memory("copy") as copy:
        copy.add("I live in Rome.", user_id="alex")  # alex's lives_in profile fact exists
        before = export(copy)
        without_memories = [x for x in lines if '"type": "memory"' not in x]
        with pytest.raises(ConflictError, match="profile fact 'lives_in'"):
            load(copy, without_memories)
        assert export(copy) == before
        orphan = next(x for x in lines if '"type": "relation"' in x)
        with pytest.raises(ValidationError, match="no entity"):
            load(copy, [orphan])
        bad_rows = {
            "unknown field": {"type": "feedback", "memory_id": "m", "feedback": None,
                              "reason": None, "value": 1.0, "created_at": "x", "extra": 1},
            "lacks created_at": {"type": "feedback", "memory_id": "m", "feedback": None,
                                 "reason": None, "value": 1.0},
            "in \\[-1, 1\\]": {"type": "feedback", "memory_id": "m", "feedback": None,
                               "reason": None, "value": 3, "created_at": "x"},
            "'name' must be a non-empty string": {"type": "entity", "user_id": "alex",
                                                  "agent_id": None, "run_id": None, "name": " ",
                                                  "entity_type": None, "created_at": "x"},
            "'type' must be one of": {"type": "edge"},
        }  # fmt: skip
        for message, row in bad_rows.items():
            with pytest.raises(ValidationError, match=f"line 2: .*{message}"):
                load(copy, [lines[0].replace('"alex"', '"zed"'), json.dumps(row)])
        # A memory line holds what the API could have stored: ids, text, times, field types.
        memory = json.loads(next(x for x in lines if '"type": "memory"' in x))
        bad_memories = {
            "not a valid UUID": {"id": "../../etc/passwd"},
            "canonical form": {"id": memory["id"].upper()},
            "must be a string": {"id": 5},
            "non-empty string": {"memory": "  "},
            "user_id must not contain whitespace": {"user_id": "a b"},
            "actor_id must be a non-empty string": {"actor_id": " "},
            "created_at": {"created_at": "yesterday"},
            "expiration_date": {"expiration_date": "soon"},
            "metadata must be a dict": {"metadata": ["x"]},
            "immutable must be a bool": {"immutable": "no"},
            "feedback must be a number": {"feedback": 7},
        }
        for message, change in bad_memories.items():
            with pytest.raises(ValidationError, match=f"line 1: .*{message}"):
                load(copy, [json.dumps({**memory, **change})])
        history = json.loads(next(x for x in lines if '"type": "history"' in x))
        with pytest.raises(ValidationError, match="not a valid UUID"):
            load(copy, [json.dumps({**history, "memory_id": "x' OR 1=1"})])
        assert export(copy) == before
