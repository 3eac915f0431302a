"""Schema-driven exports and summaries: the offline field mapping, and the LLM path over real HTTP
against the fake OpenAI server (the answer is validated against the caller's schema)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engram import AsyncMemory, Memory
from engram.core import jsonschema
from engram.errors import LLMOutputError, ValidationError
from engram.providers._http import RetryPolicy
from engram.providers.llm.openai import OpenAILLM
from tests.fakes.openai_server import FakeOpenAI

FACTS = [
    "My name is Alex Smith.", "I live in Berlin.", "I work at Acme as a data engineer.",
    "I love sushi.", "I hate olives.", "My favorite color is blue.", "I'm allergic to peanuts.",
]  # fmt: skip
PROFILE = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "full_name": {"type": "string"},
        "city": {"type": "string"},
        "company": {"type": "string"},
        "occupation": {"type": "string"},
        "likes": {"type": "array", "items": {"type": "string"}},
        "dislikes": {"type": "array", "items": {"type": "string"}},
        "favorite_color": {"type": "string"},
        "allergies": {"type": "array", "items": {"type": "string"}},
        "memory_count": {"type": "integer"},
        "health": {"type": "array", "items": {
            "type": "object", "properties": {"text": {"type": "string"}, "id": {"type": "string"}}}},
        "shoe_size": {"type": "integer", "description": "nothing says it: left out"},
    },
    "required": ["full_name", "city"],
}  # fmt: skip


def _memory(tmp_path: Path, **kwargs: object) -> Memory:
    return Memory({"data_dir": str(tmp_path), "embedder": {"provider": "hashing"}}, **kwargs)  # type: ignore[arg-type]


def test_offline_export_maps_known_fields(tmp_path: Path) -> None:
    memory = _memory(tmp_path)
    for text in FACTS:
        memory.add(text, user_id="alex")
    memory.add("I live in Oslo.", user_id="bo")
    data = memory.export(PROFILE, user_id="alex")
    assert data == {
        "user_id": "alex", "full_name": "Alex Smith", "city": "Berlin", "company": "Acme",
        "occupation": "data engineer", "likes": ["sushi"], "dislikes": ["olives"],
        "favorite_color": "blue", "allergies": ["peanuts"], "memory_count": 8,
        "health": [{"text": "Is allergic to peanuts", "id": data["health"][0]["id"]}],
    }  # fmt: skip
    assert jsonschema.problems(data, PROFILE) == []
    # the newest memory wins, and the schema may come as JSON text
    memory.add("I live in Paris.", user_id="alex")
    assert memory.export(json.dumps(PROFILE), filters={"user_id": "alex"})["city"] == "Paris"
    memory.close()


def test_offline_export_refuses_what_it_cannot_fill(tmp_path: Path) -> None:
    memory = _memory(tmp_path)
    memory.add("I live in Berlin.", user_id="alex")
    schema = {"type": "object", "properties": {"shoe_size": {"type": "integer"}},
              "required": ["shoe_size"]}  # fmt: skip
    with pytest.raises(ValidationError, match=r"cannot fill required properties \$\.shoe_size"):
        memory.export(schema, user_id="alex")
    nullable = {"type": "object", "properties": {"shoe_size": {"type": ["integer", "null"]}},
                "required": ["shoe_size"]}  # fmt: skip
    assert memory.export(nullable, user_id="alex") == {"shoe_size": None}
    for bad, message in [
        ({"type": "object", "oneOf": []}, "unsupported JSON Schema keywords oneOf"),
        ({"type": "array"}, "top level must be of type 'object'"),
        ("{not json", "not valid JSON"),
        ({"type": "object", "properties": {"a": {"type": "text"}}}, "unknown type 'text'"),
    ]:
        with pytest.raises(ValidationError, match=message):
            memory.export(bad, user_id="alex")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="at least one of"):
        memory.export(PROFILE)
    memory.close()


def test_offline_summary_groups_by_category(tmp_path: Path) -> None:
    memory = _memory(tmp_path)
    for text in FACTS:
        memory.add(text, user_id="alex")
    summary = memory.summary(user_id="alex")
    assert summary["memory_count"] == 8 and summary["method"] == "offline"
    assert summary["summary"].startswith("8 memories for user_id alex")
    assert "Health: Is allergic to peanuts." in summary["summary"]
    assert memory.summary(user_id="nobody") == {"summary": "", "memory_count": 0,
                                                 "method": "offline"}  # fmt: skip
    memory.close()


async def test_llm_export_is_validated_against_the_schema(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    llm = OpenAILLM(model="gpt-test", base_url=fake_openai.base_url, api_key="test-key",
                    retry=RetryPolicy(max_retries=0))  # fmt: skip
    schema = {"type": "object", "properties": {"city": {"type": "string"},
              "pets": {"type": "array", "items": {"type": "string"}}}, "required": ["city"]}  # fmt: skip
    async with AsyncMemory(
        {"data_dir": str(tmp_path), "embedder": {"provider": "hashing"}}, llm=llm
    ) as memory:
        await memory.add("I live in Berlin with my cat Tom.", user_id="alex", infer=False)
        # first answer breaks the schema (city missing): the repair retry shows the problem
        fake_openai.reply(
            {"data": {"pets": ["Tom"]}}, {"data": {"city": "Berlin", "pets": ["Tom"]}}
        )
        data = await memory.export(schema, user_id="alex", instructions="pets by name")
        assert data == {"city": "Berlin", "pets": ["Tom"]}
        first, repair = fake_openai.chat_requests[-2:]
        sent = first["json"]["response_format"]["json_schema"]["schema"]
        assert sent["properties"]["data"] == schema
        prompt = first["json"]["messages"][1]["content"]
        assert "I live in Berlin with my cat Tom." in prompt and "pets by name" in prompt
        assert "$: missing 'city'" in repair["json"]["messages"][-1]["content"]
        fake_openai.reply({"data": {"city": 7}}, {"data": {"city": 7}})
        with pytest.raises(LLMOutputError, match="expected string"):
            await memory.export(schema, user_id="alex")
        fake_openai.reply({"summary": "Alex lives in Berlin with a cat."})
        summary = await memory.summary(user_id="alex")
        assert summary == {"summary": "Alex lives in Berlin with a cat.", "memory_count": 1,
                           "method": "llm:gpt-test"}  # fmt: skip
