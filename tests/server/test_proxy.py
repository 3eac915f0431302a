"""The chat proxy (`POST /v1/chat/completions`): the official `openai` client against a live
server, whose upstream is the fake OpenAI-compatible server, over real HTTP, streamed and not."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.server.live import ADMIN_KEY, LiveServer, add_now, member_key, new_project, wait_event


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key="upstream-key")
    yield fake
    fake.close()


@pytest.fixture
def proxied(
    tmp_path: Path, server_db: dict[str, Any], upstream: FakeOpenAI
) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "data", upstream_url=upstream.base_url,
                      upstream_api_key="upstream-key", **server_db)  # fmt: skip
    yield live
    live.close()


def chat(server: LiveServer, key: str = ADMIN_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def system_of(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["json"]["messages"] if m["role"] == "system"]


def test_recalls_forwards_and_remembers_the_turn(proxied: LiveServer, upstream: FakeOpenAI) -> None:
    with proxied.client() as admin:
        add_now(admin, "Mira is vegetarian", user="mira", infer=False)
        add_now(admin, "Mira's brother Tom loves steak", user="tom", infer=False)
        upstream.reply("Try a mushroom risotto.", prompt_tokens=42, completion_tokens=7)
        answer = chat(proxied).chat.completions.with_raw_response.create(
            model="fake-model",
            messages=[{"role": "system", "content": "You are a cook."},
                      {"role": "user", "content": "I moved to Porto last week. What should I "
                                                  "cook for dinner?"}],
            temperature=0.3, extra_body={"user_id": "mira", "metadata": {"via": "proxy"}},
        )  # fmt: skip
        completion = answer.parse()
        # The upstream's answer, unchanged in shape and content.
        assert completion.choices[0].message.content == "Try a mushroom risotto."
        assert completion.usage and completion.usage.prompt_tokens == 42
        sent = upstream.chat_requests[-1]
        assert sent["headers"]["Authorization"] == "Bearer upstream-key"
        body = sent["json"]
        assert body["model"] == "fake-model" and body["temperature"] == 0.3
        assert "user_id" not in body and "metadata" not in body  # Engram's keys stay here
        # The memories, as a system message after the caller's own; only Mira's.
        systems = system_of(sent)
        assert systems[0] == "You are a cook."
        assert "Mira is vegetarian" in systems[1] and "steak" not in systems[1]
        assert body["messages"][-1]["content"].startswith("I moved to Porto")
        assert answer.headers["x-engram-memories"] == "1"
        # The turn is remembered by an async add.
        event = wait_event(admin, answer.headers["x-engram-event-id"])
        assert event["status"] == "SUCCEEDED", event
        assert event["payload"]["messages"] == [
            {"role": "user", "content": "I moved to Porto last week. What should I cook for "
                                        "dinner?"},
            {"role": "assistant", "content": "Try a mushroom risotto."},
        ]  # fmt: skip
        assert event["payload"]["metadata"] == {"via": "proxy"}
        stored = admin.get("/v1/memories/", params={"user_id": "mira"}).json()["results"]
        assert any("Porto" in m["memory"] for m in stored)


def test_streaming_passes_events_through(proxied: LiveServer, upstream: FakeOpenAI) -> None:
    upstream.reply("Pack a warm jacket for Oslo.")
    stream = chat(proxied).chat.completions.create(
        model="fake-model", stream=True,
        messages=[{"role": "user", "content": "I am flying to Oslo in March."}],
        extra_headers={"X-User-Id": "nils"},
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Pack a warm jacket for Oslo."
    assert len(chunks) > 3  # streamed, not gathered
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert upstream.chat_requests[-1]["json"]["stream"] is True
    with proxied.client() as admin:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            events = admin.get("/v1/events/").json()["results"]
            done = [e for e in events if e["status"] == "SUCCEEDED"]
            if done:
                break
            time.sleep(0.05)
        assert done, events
        turn = done[0]["payload"]["messages"]
        assert turn[-1] == {"role": "assistant", "content": "Pack a warm jacket for Oslo."}
        assert done[0]["payload"]["user_id"] == "nils"


def test_upstream_errors_pass_through(proxied: LiveServer, upstream: FakeOpenAI) -> None:
    client = chat(proxied)
    messages = [{"role": "user", "content": "hello there, how are you?"}]
    upstream.fail(429, headers={"Retry-After": "3"})
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="m", messages=messages,  # type: ignore[arg-type]
                                       extra_body={"user_id": "u"})  # fmt: skip
    assert limited.value.response.headers["retry-after"] == "3"
    upstream.fail(400, body=json.dumps({"error": {"message": "bad model", "type": "invalid"}}))
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="m", messages=messages,  # type: ignore[arg-type]
                                       stream=True, extra_body={"user_id": "u"})  # fmt: skip
    assert bad.value.body == {"message": "bad model", "type": "invalid"}
    with proxied.client() as admin:  # a failed call is not remembered
        assert admin.get("/v1/events/").json()["count"] == 0
    upstream.close()  # nobody answers: a 502-class error, not a hang
    with pytest.raises(openai.APIStatusError) as gone:
        client.chat.completions.create(model="m", messages=messages,  # type: ignore[arg-type]
                                       extra_body={"user_id": "u"})  # fmt: skip
    assert gone.value.status_code in (502, 503, 504)


def test_requests_it_refuses(proxied: LiveServer, upstream: FakeOpenAI) -> None:
    messages: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError, match="user_id, agent_id or run_id"):
        chat(proxied).chat.completions.create(model="m", messages=messages)
    with pytest.raises(openai.BadRequestError, match="differs"):
        chat(proxied).chat.completions.create(
            model="m", messages=messages, extra_body={"user_id": "a"},
            extra_headers={"X-User-Id": "b"},
        )  # fmt: skip
    with pytest.raises(openai.AuthenticationError):
        chat(proxied, "not-a-key").chat.completions.create(
            model="m", messages=messages, extra_body={"user_id": "a"}
        )
    with proxied.client() as admin:
        org_id, project_id, _ = new_project(admin, "proxy-readers")
        reader = member_key(admin, org_id, project_id, "r@example.com", "READER")
    with pytest.raises(openai.PermissionDeniedError):
        chat(proxied, reader).chat.completions.create(
            model="m", messages=messages, extra_body={"user_id": "a"}
        )
    with httpx.Client(base_url=proxied.url, headers={"Authorization": f"Token {ADMIN_KEY}"}) as h:
        bodies: list[Any] = [[], {"messages": []}, {"messages": ["hi"]},
                             {"messages": messages, "user_id": "a", "limit": -1},
                             {"messages": messages, "user_id": ""}]  # fmt: skip
        for body in bodies:
            answer = h.post("/v1/chat/completions", json=body)
            assert answer.json()["error"]["message"], answer.text  # OpenAI's error shape
            assert h.post("/v1/chat/completions", json=body).status_code == 400, body
    assert upstream.chat_requests == []  # nothing refused reached the upstream


def test_limit_filters_and_models(proxied: LiveServer, upstream: FakeOpenAI) -> None:
    with proxied.client() as admin:
        add_now(admin, "Ada writes Haskell", user="ada", infer=False, metadata={"topic": "code"})
        add_now(admin, "Ada grows tomatoes", user="ada", infer=False, metadata={"topic": "home"})
    client = chat(proxied)
    messages: Any = [{"role": "user", "content": "What do I do in my free time?"}]
    client.chat.completions.create(model="m", messages=messages,
                                   extra_body={"user_id": "ada", "limit": 0})  # fmt: skip
    assert system_of(upstream.chat_requests[-1]) == []
    client.chat.completions.create(model="m", messages=messages, extra_body={
        "user_id": "ada", "filters": {"metadata": {"topic": "home"}}})  # fmt: skip
    (recalled,) = system_of(upstream.chat_requests[-1])
    assert "tomatoes" in recalled and "Haskell" not in recalled
    assert [m.id for m in client.models.list()] == ["fake-model"]


def test_the_projects_llm_is_the_default_upstream(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    fake.responder = lambda body: (
        '{"facts": []}' if "response_format" in body else "Hello from the project's LLM."
    )
    try:
        config = {
            "llm": {
                "provider": "openai",
                "config": {"openai_base_url": fake.base_url, "api_key": "test-key"},
            }
        }
        live = LiveServer(tmp_path / "data", memory=config)  # fmt: skip
        try:
            reply = chat(live).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}],
                extra_body={"user_id": "u"},
            )  # fmt: skip
            assert reply.choices[0].message.content == "Hello from the project's LLM."
        finally:
            live.close()
        bare = LiveServer(tmp_path / "bare")  # no LLM, no upstream: said so
        try:
            with pytest.raises(openai.APIStatusError, match="ENGRAM_UPSTREAM_URL") as none:
                chat(bare).chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}],
                    extra_body={"user_id": "u"},
                )  # fmt: skip
            assert none.value.status_code == 501
        finally:
            bare.close()
    finally:
        fake.close()
