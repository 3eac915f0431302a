"""LLM providers over real HTTP against the fake server: parsing, repair, retries, typed errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engram.core.jsonparse import JSONNotFoundError, extract_json
from engram.core.messages import Message
from engram.errors import LLMError, LLMOutputError
from engram.prompts import extract, vision
from engram.prompts.base import Prompt
from engram.prompts.extract import ExtractInput
from engram.providers._http import RetryPolicy
from engram.providers.llm.anthropic import AnthropicLLM
from engram.providers.llm.base import Usage
from engram.providers.llm.openai import OpenAILLM
from tests.fakes.openai_server import FakeOpenAI

FAST = RetryPolicy(max_retries=2, backoff=0.01)
RAW = Path(__file__).parent / "data" / "llm_outputs"
GOOD = {"facts": [{"text": "Loves sci-fi movies", "event": "ADD", "categories": ["entertainment"]}]}


def prompt() -> Prompt[extract.ExtractOutput]:
    return extract.render(
        ExtractInput(messages=[Message("user", "I love sci-fi movies")], today="2026-01-02")
    )


@pytest.fixture
async def openai_llm(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAILLM]:
    llm = OpenAILLM(model="gpt-test", base_url=fake_openai.base_url, api_key="test-key", retry=FAST)
    yield llm
    await llm.aclose()


@pytest.fixture
async def anthropic_llm(fake_openai: FakeOpenAI) -> AsyncIterator[AnthropicLLM]:
    base = fake_openai.base_url.removesuffix("/v1")
    llm = AnthropicLLM(model="claude-test", base_url=base, api_key="test-key", retry=FAST)
    yield llm
    await llm.aclose()


@pytest.mark.parametrize("name", sorted(p.stem for p in RAW.glob("*.txt")))
def test_recorded_raw_outputs_parse(name: str) -> None:
    raw = (RAW / f"{name}.txt").read_text()
    expected = json.loads((RAW / f"{name}.json").read_text())
    if expected == "error":
        with pytest.raises(JSONNotFoundError):
            extract_json(raw)
    else:
        parsed = extract.ExtractOutput.model_validate(extract_json(raw))
        assert parsed.model_dump() == expected


async def test_openai_structured_call_and_usage(
    fake_openai: FakeOpenAI, openai_llm: OpenAILLM
) -> None:
    fake_openai.reply(GOOD, prompt_tokens=321, completion_tokens=45)
    usage = Usage()
    out = await openai_llm.generate(prompt(), usage=usage)
    assert out.facts[0].text == "Loves sci-fi movies"
    (request,) = fake_openai.chat_requests
    body = request["json"]
    assert request["path"] == "/v1/chat/completions"
    assert body["model"] == "gpt-test"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["facts"]
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert (usage.llm_calls, usage.prompt_tokens, usage.completion_tokens) == (1, 321, 45)
    assert usage.calls[0]["prompt_version"] == extract.VERSION


async def test_invalid_answer_gets_one_repair(
    fake_openai: FakeOpenAI, openai_llm: OpenAILLM
) -> None:
    fake_openai.reply("Sure! The facts are: none that I can see", GOOD)
    out = await openai_llm.generate(prompt())
    assert len(out.facts) == 1
    repair = fake_openai.chat_requests[1]["json"]["messages"]
    assert repair[-2]["role"] == "assistant" and repair[-1]["role"] == "user"
    assert "could not be used" in repair[-1]["content"]


async def test_schema_violation_then_failure_is_llm_output_error(
    fake_openai: FakeOpenAI, openai_llm: OpenAILLM
) -> None:
    bad = {"facts": [{"text": "x", "event": "MAYBE"}]}
    fake_openai.reply(bad, bad)
    with pytest.raises(LLMOutputError, match="event"):
        await openai_llm.generate(prompt())
    assert len(fake_openai.chat_requests) == 2


async def test_retries_on_429_and_500_then_succeeds(
    fake_openai: FakeOpenAI, openai_llm: OpenAILLM
) -> None:
    fake_openai.fail(429, headers={"Retry-After": "0.05"})
    fake_openai.fail(500)
    fake_openai.reply(GOOD)
    assert (await openai_llm.generate(prompt())).facts
    assert len(fake_openai.chat_requests) == 3


async def test_persistent_failures_are_llm_errors(
    fake_openai: FakeOpenAI, openai_llm: OpenAILLM
) -> None:
    fake_openai.fail(500, times=3)
    with pytest.raises(LLMError, match="500"):
        await openai_llm.generate(prompt())
    fake_openai.fail(429, times=3, headers={"Retry-After": "0"})
    with pytest.raises(LLMError, match="rate limited"):
        await openai_llm.generate(prompt())
    fake_openai.fail(200, delay=0.5, times=3)
    slow = OpenAILLM(base_url=fake_openai.base_url, api_key="test-key", timeout=0.1, retry=FAST)
    with pytest.raises(LLMError, match="Timeout"):
        await slow.generate(prompt())
    await slow.aclose()
    wrong = OpenAILLM(base_url=fake_openai.base_url, api_key="wrong", retry=FAST)
    with pytest.raises(LLMError, match="401"):
        await wrong.generate(prompt())
    await wrong.aclose()


async def test_4xx_is_not_retried(fake_openai: FakeOpenAI, openai_llm: OpenAILLM) -> None:
    openai_llm.structured = "json_object"
    fake_openai.fail(422)
    with pytest.raises(LLMError, match="422"):
        await openai_llm.generate(prompt())
    assert len(fake_openai.chat_requests) == 1


async def test_json_schema_refused_falls_back_to_json_object(
    fake_openai: FakeOpenAI, openai_llm: OpenAILLM
) -> None:
    fake_openai.fail(400, body=json.dumps({"error": {"message": "response_format not supported"}}))
    fake_openai.reply(GOOD, GOOD)
    await openai_llm.generate(prompt())
    await openai_llm.generate(prompt())
    formats = [r["json"]["response_format"]["type"] for r in fake_openai.chat_requests]
    assert formats == ["json_schema", "json_object", "json_object"]


async def test_anthropic_forced_tool_call(
    fake_openai: FakeOpenAI, anthropic_llm: AnthropicLLM
) -> None:
    fake_openai.reply(GOOD, prompt_tokens=50, completion_tokens=7)
    usage = Usage()
    out = await anthropic_llm.generate(prompt(), usage=usage)
    assert out.facts[0].text == "Loves sci-fi movies"
    (request,) = fake_openai.chat_requests
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == "test-key"
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    body = request["json"]
    assert body["tool_choice"] == {"type": "tool", "name": "extract"}
    assert body["tools"][0]["input_schema"]["properties"]["facts"]
    assert body["system"].startswith("You keep a long-term memory")
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert (usage.prompt_tokens, usage.completion_tokens) == (50, 7)


async def test_anthropic_text_answer_repair_and_images(
    fake_openai: FakeOpenAI, anthropic_llm: AnthropicLLM
) -> None:
    fake_openai.reply("no json here", GOOD)
    assert (await anthropic_llm.generate(prompt())).facts
    fake_openai.reply({"description": "a red bicycle"})
    image = vision.render("data:image/png;base64,iVBORw0KGgo=")
    assert (await anthropic_llm.generate(image)).description == "a red bicycle"
    blocks = fake_openai.chat_requests[-1]["json"]["messages"][0]["content"]
    assert blocks[1]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": "iVBORw0KGgo=",
    }
    fake_openai.fail(529, times=3)
    with pytest.raises(LLMError):
        await anthropic_llm.generate(prompt())


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5", "1e300", "soon", ""])
async def test_any_retry_after_is_a_bounded_wait(
    fake_openai: FakeOpenAI, openai_llm: OpenAILLM, value: str
) -> None:
    """`Retry-After` that is not a finite, sane number of seconds never holds a call: nan, inf
    and garbage fall back to the backoff, negative is no wait, huge is capped."""
    from engram.providers._http import MAX_RETRY_AFTER

    fake_openai.fail(429, headers={"Retry-After": value})
    fake_openai.reply(GOOD)
    if value == "1e300":  # the cap itself, checked without waiting for it
        assert FAST.delay(0, 1e300) == MAX_RETRY_AFTER
        assert FAST.delay(0, float("nan")) <= 1.0
        return
    assert (await openai_llm.generate(prompt())).facts
    assert len(fake_openai.chat_requests) == 2


def test_retry_after_as_an_http_date() -> None:
    import email.utils
    import time

    import httpx

    from engram.providers._http import _retry_after

    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = _retry_after(httpx.Response(429, headers={"Retry-After": soon}))
    assert seconds is not None and 25 <= seconds <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert FAST.delay(0, _retry_after(httpx.Response(429, headers={"Retry-After": past}))) == 0.0


OPENAI_BODIES = {
    "text is a number": {"choices": [{"message": {"content": 7}}]},
    "text is a list": {"choices": [{"message": {"content": [{"type": "text"}]}}]},
    "usage is a string": {"choices": [{"message": {"content": "{}"}}], "usage": "lots"},
    "count is text": {
        "choices": [{"message": {"content": "{}"}}],
        "usage": {"prompt_tokens": "many", "completion_tokens": 1},
    },
    "count is negative": {
        "choices": [{"message": {"content": "{}"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": -3},
    },
    "count is an object": {
        "choices": [{"message": {"content": "{}"}}],
        "usage": {"prompt_tokens": {"n": 1}},
    },
}


@pytest.mark.parametrize("case", sorted(OPENAI_BODIES))
async def test_odd_openai_answers_are_output_errors(
    fake_openai: FakeOpenAI, openai_llm: OpenAILLM, case: str
) -> None:
    fake_openai.fail(200, body=json.dumps(OPENAI_BODIES[case]))
    with pytest.raises(LLMOutputError):
        await openai_llm.generate(prompt())


ANTHROPIC_BODIES = {
    "text is a number": {"content": [{"type": "text", "text": 5}]},
    "count is text": {
        "content": [{"type": "text", "text": "{}"}],
        "usage": {"input_tokens": "x", "output_tokens": 2},
    },
    "usage is a list": {"content": [{"type": "text", "text": "{}"}], "usage": [1, 2]},
}


@pytest.mark.parametrize("case", sorted(ANTHROPIC_BODIES))
async def test_odd_anthropic_answers_are_output_errors(
    fake_openai: FakeOpenAI, anthropic_llm: AnthropicLLM, case: str
) -> None:
    fake_openai.fail(200, body=json.dumps(ANTHROPIC_BODIES[case]))
    with pytest.raises(LLMOutputError):
        await anthropic_llm.generate(prompt())


async def test_whole_number_counts_as_floats_are_counts(
    fake_openai: FakeOpenAI, openai_llm: OpenAILLM
) -> None:
    body = {
        "choices": [{"message": {"content": json.dumps(GOOD)}}],
        "usage": {"prompt_tokens": 12.0, "completion_tokens": None},
    }
    fake_openai.fail(200, body=json.dumps(body))
    usage = Usage()
    assert (await openai_llm.generate(prompt(), usage=usage)).facts
    assert (usage.prompt_tokens, usage.completion_tokens) == (12, 0)


async def test_one_deadline_for_every_call_and_retry(fake_openai: FakeOpenAI) -> None:
    """Slow failures retried would take ~2 s; the deadline ends the call at 0.6 s, typed."""
    import time

    llm = OpenAILLM(
        base_url=fake_openai.base_url, api_key="test-key", timeout=5, retry=FAST, deadline=0.6
    )
    fake_openai.fail(500, times=3, delay=0.5)
    start = time.monotonic()
    with pytest.raises(LLMError, match=r"deadline of 0\.6 s"):
        await llm.generate(prompt())
    assert time.monotonic() - start < 1.5
    await llm.aclose()


def test_an_add_past_its_deadline_writes_nothing(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    from engram import Memory

    config = {
        "vector_store": {"provider": "sqlite", "config": {"path": str(tmp_path / "m.db")}},
        "embedder": {"provider": "hashing", "config": {"embedding_dims": 64}},
        "llm": {
            "provider": "openai",
            "config": {
                "api_key": "test-key",
                "openai_base_url": fake_openai.base_url,
                "timeout": 5,
                "deadline": 0.5,
            },
        },
    }
    memory = Memory.from_config(config)
    try:
        fake_openai.fail(200, delay=1.0, body=json.dumps({"choices": []}))
        with pytest.raises(LLMError, match="deadline"):
            memory.add("I moved to Lisbon", user_id="u")
        assert memory.get_all(user_id="u")["results"] == []
    finally:
        memory.close()


@pytest.mark.parametrize("value", [0, -1, "soon", float("nan"), True])
def test_deadline_and_timeout_are_seconds(value: object, tmp_path: Path) -> None:
    from engram import Memory
    from engram.errors import ConfigurationError

    for key in ("deadline", "timeout"):
        with pytest.raises(ConfigurationError, match=key):
            Memory.from_config(
                {"llm": {"provider": "openai", "config": {"api_key": "k", key: value}}}
            )
