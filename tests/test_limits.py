"""The sizes one call may bring (engram.limits): past each, a clear ValidationError and nothing
written; the config can move them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from engram import ConfigurationError, Memory, ValidationError
from engram.providers.embedders.hashing import HashingEmbedder
from tests.conftest import Backend

SMALL = {"message_chars": 50, "messages": 3, "query_chars": 40, "metadata_bytes": 100,
         "filter_conditions": 4, "filter_values": 6, "parts": 2, "categories": 2}  # fmt: skip
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


@pytest.fixture
def small(backend: Backend) -> Iterator[Memory]:
    with Memory({"limits": SMALL}, embedder=HashingEmbedder(64), store=backend()) as memory:
        yield memory


def test_each_limit_is_a_clear_error_and_writes_nothing(small: Memory) -> None:
    kept = small.add("a fact that fits", user_id="u", infer=False)["results"][0]["id"]
    many = [{"role": "user", "content": f"message {i}"} for i in range(4)]
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: small.add("x" * 51, user_id="u", infer=False), "limits.message_chars"),
        (lambda: small.add("x" * 51, user_id="u"), "limits.message_chars"),
        (lambda: small.add(many, user_id="u", infer=False), "limits.messages"),
        (
            lambda: small.add("fits", user_id="u", infer=False, metadata={"k": "v" * 100}),
            "limits.metadata_bytes",
        ),
        (
            lambda: small.add([{"role": "user", "content": [IMAGE] * 3}], user_id="u"),
            "limits.parts",
        ),
        (
            lambda: small.add("fits", user_id="u", infer=False, categories=["a", "b", "c"]),
            "limits.categories",
        ),
        (
            lambda: small.add("fits", user_id="u", custom_instructions="i" * 51),
            "limits.message_chars",
        ),
        (lambda: small.update(kept, "y" * 51), "limits.message_chars"),
        (lambda: small.update(kept, metadata={"k": "v" * 100}), "limits.metadata_bytes"),
        (lambda: small.search("q" * 41, user_id="u"), "limits.query_chars"),
        (
            lambda: small.search(
                "q", filters={"AND": [{"user_id": "u"}] + [{"n": i} for i in range(4)]}
            ),
            "limits.filter_conditions",
        ),
        (
            lambda: small.get_all(filters={"user_id": "u", "run_id": {"in": list("abcdefg")}}),
            "limits.filter_values",
        ),
        (
            lambda: small.delete_all(user_id="u", filters={"run_id": {"nin": list("abcdefg")}}),
            "limits.filter_values",
        ),
    ]
    for call, setting in calls:
        with pytest.raises(ValidationError, match=setting.replace(".", r"\.")):
            call()
    listed = small.get_all(user_id="u")
    assert [m["memory"] for m in listed["results"]] == ["a fact that fits"]
    assert len(small.history(kept)) == 1


def test_at_the_limit_is_accepted(small: Memory) -> None:
    three = [{"role": "user", "content": str(i) * 50} for i in range(3)]
    assert len(small.add(three, user_id="u", infer=False)["results"]) == 3
    assert small.search("q" * 40, user_id="u")["results"] is not None
    filters = {"AND": [{"user_id": "u"}, {"run_id": {"in": list("abcde")}}]}
    assert small.get_all(filters=filters)["total"] == 0


def test_the_defaults_and_bad_settings(tmp_path: object) -> None:
    with Memory(embedder=HashingEmbedder(64), config={"data_dir": str(tmp_path)}) as memory:
        memory.add("y" * 100_000, user_id="u", infer=False)  # the default: 100,000 characters
        with pytest.raises(ValidationError, match="100,000"):
            memory.add("y" * 100_001, user_id="u", infer=False)
        with pytest.raises(ValidationError, match=r"limits\.query_chars"):
            memory.search("q" * 20_001, user_id="u")
    for bad in ({"message_chars": 0}, {"messages": True}, {"message_char": 5}, ["x"]):
        with pytest.raises(ConfigurationError, match="limits"):
            Memory.from_config({"limits": bad})
