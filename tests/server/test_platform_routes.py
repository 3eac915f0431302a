"""The Platform routes over real HTTP: shapes, trailing slashes, errors, async adds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.openai_server import FakeOpenAI
from tests.server.live import LiveServer, wait_event


def _add(
    client: httpx.Client, text: str, user: str = "alex", **extra: object
) -> list[dict[str, Any]]:
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, **extra}
    answer = client.post("/v3/memories/add/", json=body)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "PENDING"
    event = wait_event(client, answer.json()["event_id"])
    assert event["status"] == "SUCCEEDED", event
    results: list[dict[str, Any]] = event["results"]
    return results


def test_ping_needs_a_valid_key(server: LiveServer, admin: httpx.Client) -> None:
    pong = admin.get("/v1/ping/").json()
    assert pong["status"] == "ok" and pong["org_id"] and pong["project_id"]
    with server.client(None) as anonymous:
        answer = anonymous.get("/v1/ping/")
        assert answer.status_code == 401 and "API key" in answer.json()["detail"]
    with server.client("eg-wrong") as wrong:
        assert wrong.get("/v1/ping/").status_code == 401
    with httpx.Client(
        base_url=server.url, headers={"X-API-Key": "eg-test-admin-key-0123456789"}
    ) as c:
        assert c.get("/v1/ping/").status_code == 200


def test_memory_lifecycle(admin: httpx.Client) -> None:
    added = _add(admin, "I love hiking in the Alps.", infer=False, metadata={"src": "chat"})
    memory_id = added[0]["id"]
    listed = admin.post("/v3/memories/", json={"filters": {"user_id": "alex"}}).json()
    assert listed["count"] == 1 and listed["next"] is None and listed["previous"] is None
    assert listed["results"][0]["metadata"] == {"src": "chat"}
    found = admin.post(
        "/v3/memories/search/", json={"query": "hiking", "filters": {"user_id": "alex"}}
    ).json()
    assert found["results"][0]["id"] == memory_id and 0 <= found["results"][0]["score"] <= 1
    assert admin.get(f"/v1/memories/{memory_id}/").json()["memory"] == "I love hiking in the Alps."
    updated = admin.put(f"/v1/memories/{memory_id}/", json={"text": "I love hiking in Norway."})
    assert updated.status_code == 200 and updated.json()["memory"] == "I love hiking in Norway."
    events = [h["event"] for h in admin.get(f"/v1/memories/{memory_id}/history/").json()]
    assert events == ["ADD", "UPDATE"]
    feedback = admin.post("/v1/feedback/", json={"memory_id": memory_id, "feedback": "POSITIVE"})
    assert feedback.json() == {"id": memory_id, "feedback": "POSITIVE", "feedback_reason": None}
    assert admin.get("/v1/entities/").json()["results"][0]["name"] == "alex"
    assert admin.delete(f"/v1/memories/{memory_id}/").status_code == 200
    missing = admin.get(f"/v1/memories/{memory_id}/")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]


def test_paging_and_v1_v2_routes(admin: httpx.Client) -> None:
    for i in range(5):
        admin.post("/v1/memories/", json={"messages": [{"role": "user", "content": f"fact {i}"}],
                                          "user_id": "pat", "infer": False, "async_mode": False})  # fmt: skip
    page = admin.post(
        "/v3/memories/?page=2&page_size=2", json={"filters": {"user_id": "pat"}}
    ).json()
    assert page["count"] == 5 and len(page["results"]) == 2
    assert "page=3" in page["next"] and "page=1" in page["previous"]
    assert len(admin.post("/v2/memories/", json={"user_id": "pat"}).json()["results"]) == 5
    assert admin.get("/v1/memories/", params={"user_id": "pat"}).json()["count"] == 5
    v2 = admin.post("/v2/memories/search/", json={"query": "fact", "user_id": "pat"}).json()
    assert len(v2["results"]) == 5
    deleted = admin.delete("/v1/memories/", params={"filters": "{'user_id': 'pat'}"})
    assert deleted.json()["deleted_count"] == 5


def test_batch_and_entities(admin: httpx.Client) -> None:
    ids = [r["id"] for r in _add(admin, "one", infer=False) + _add(admin, "two", infer=False)]
    answer = admin.put("/v1/batch/", json={"memories": [{"memory_id": ids[0], "text": "uno"}]})
    assert answer.status_code == 200
    assert admin.get(f"/v1/memories/{ids[0]}/").json()["memory"] == "uno"
    assert (
        admin.request(
            "DELETE", "/v1/batch/", json={"memories": [{"memory_id": ids[1]}]}
        ).status_code
        == 200
    )
    assert admin.delete("/v2/entities/user/alex/").status_code == 200
    assert admin.get("/v1/entities/").json()["results"] == []
    again = admin.delete("/v2/entities/user/alex/")  # nothing left: deleted already, a success
    assert again.status_code == 200 and again.json()["deleted_count"] == 0


def test_bad_input_is_a_typed_error_and_writes_nothing(admin: httpx.Client) -> None:
    cases = [
        ("/v3/memories/add/", {"messages": "hi"}),  # no scope
        ("/v3/memories/add/", {"messages": "hi", "user_id": "a", "bogus": 1}),
        ("/v3/memories/search/", {"query": "", "filters": {"user_id": "a"}}),
        ("/v3/memories/search/", {"query": "x", "filters": {"user_id": {"$regex": "a"}}}),
        ("/v3/memories/", {"filters": {"user_id": "a"}, "colour": "red"}),
    ]
    for path, body in cases:
        answer = admin.post(path, json=body)
        assert answer.status_code == 400, (path, body, answer.text)
        assert answer.json()["detail"]
    assert admin.post("/v3/memories/add/", content=b"{not json").status_code == 400
    assert admin.get("/v1/events/").json()["count"] == 0  # nothing was queued
    assert admin.get("/v1/memories/nope/").status_code in (400, 404)


def test_health_metrics_and_request_ids(admin: httpx.Client) -> None:
    health = admin.get("/healthz")
    assert health.json()["status"] == "ok" and health.headers["X-Request-ID"]
    assert admin.get("/v1/ping/", headers={"X-Request-ID": "abc"}).headers["X-Request-ID"] == "abc"
    text = admin.get("/metrics").text
    assert 'engram_requests_total{method="GET",route="/v1/ping/",status="200"}' in text
    assert "engram_job_queue_depth 0" in text
    assert admin.get("/openapi.json").json()["paths"]["/v3/memories/add/"]


def test_rate_limit_and_body_size(tmp_path, server_db) -> None:  # type: ignore[no-untyped-def]
    live = LiveServer(tmp_path / "limited", rate_limit=3, max_body_bytes=2000, **server_db)
    try:
        with live.client() as client:
            codes = [client.get("/v1/ping/").status_code for _ in range(5)]
            assert codes[:3] == [200, 200, 200] and codes[-1] == 429
            limited = client.get("/v1/ping/")
            assert int(limited.headers["Retry-After"]) >= 1
            big = client.post("/v1/memories/", content=b"x" * 5000)
            assert big.status_code == 413
    finally:
        live.close()


def test_update_sets_and_clears_the_expiration(admin: httpx.Client) -> None:
    memory_id = admin.post("/v1/memories/", json={
        "messages": "Trip next week.", "user_id": "exp", "infer": False, "async_mode": False,
    }).json()["results"][0]["id"]  # fmt: skip
    set_ = admin.put(f"/v1/memories/{memory_id}/", json={"expiration_date": "2099-01-01"})
    assert set_.status_code == 200 and set_.json()["expiration_date"] == "2099-01-01"
    cleared = admin.put(f"/v1/memories/{memory_id}/", json={"expiration_date": None})
    assert cleared.status_code == 200 and "expiration_date" not in cleared.json()
    assert admin.put(f"/v1/memories/{memory_id}/", json={}).status_code == 400


def test_the_body_limit_holds_for_a_chunked_body(tmp_path, server_db) -> None:  # type: ignore[no-untyped-def]
    """No Content-Length: the body is counted as it streams and cut at the limit with a 413;
    nothing is stored. A body under the limit, chunked, is read as usual."""
    live = LiveServer(tmp_path / "chunked", max_body_bytes=20_000, **server_db)

    def chunks(total: int) -> Iterator[bytes]:
        text = json.dumps({"messages": "x" * total, "user_id": "chunky", "infer": False})
        data = text.encode()
        for offset in range(0, len(data), 4096):
            yield data[offset : offset + 4096]

    try:
        with live.client() as client:
            headers = {"Content-Type": "application/json"}
            big = client.post("/v1/memories/", content=chunks(200_000), headers=headers)
            assert big.status_code == 413 and big.json()["code"] == "too_large"
            listed = client.post("/v3/memories/", json={"filters": {"user_id": "chunky"}})
            assert listed.json()["count"] == 0
            small = client.post("/v1/memories/", content=chunks(500), headers=headers)
            assert small.status_code == 200, small.text
    finally:
        live.close()


def test_failed_authentications_are_limited_per_address(tmp_path, server_db) -> None:  # type: ignore[no-untyped-def]
    live = LiveServer(tmp_path / "guarded", auth_failures_per_minute=5, **server_db)
    try:
        with live.client(key="eg-wrong-key") as wrong, live.client(key=None) as anonymous:
            codes = [wrong.get("/v1/ping/").status_code for _ in range(4)]
            codes.append(anonymous.get("/v1/ping/").status_code)  # no key counts too
            assert codes == [401] * 5
            held = wrong.get("/v1/ping/")
            assert held.status_code == 429 and int(held.headers["Retry-After"]) >= 1
        with live.client() as right:  # a valid key is never held back by others' failures
            assert right.get("/v1/ping/").status_code == 200
    finally:
        live.close()


def test_the_openapi_schema_lists_every_error_status(admin: httpx.Client) -> None:
    schema = admin.get("/openapi.json").json()
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            listed = set(operation["responses"])
            wanted = {"400", "401", "403", "404", "409", "413", "422", "429", "502", "503"}
            if wanted - listed:
                missing.append(f"{method.upper()} {path}: {sorted(wanted - listed)}")
    assert not missing, missing
    assert "ErrorBody" in schema["components"]["schemas"]


def test_search_takes_the_js_clients_source(admin: httpx.Client) -> None:
    """mem0ai 3.x (npm) may send `source`, the calling surface for mem0's analytics: accepted,
    without effect on the answer."""
    _add(admin, "I love hiking in the Alps.", infer=False)
    body = {"query": "hiking", "filters": {"user_id": "alex"}}
    plain = admin.post("/v3/memories/search/", json=body)
    tagged = admin.post("/v3/memories/search/", json={**body, "source": "OPENCLAW"})
    assert tagged.status_code == 200, tagged.text
    assert tagged.json() == plain.json()
    assert admin.post("/v3/memories/search/", json={**body, "source": 1}).status_code == 400


def test_an_adds_agent_instructions_reach_the_llm_for_an_agent_alone(
    tmp_path: Path, fake_openai: FakeOpenAI, server_db: dict[str, Any]
) -> None:
    """`agent_custom_instructions` of an add (mem0ai 3.x, npm): an agent-only add extracts with
    them, before the call's and the project's `custom_instructions`; other adds do not use them."""
    llm = {"provider": "openai", "config": {"openai_base_url": fake_openai.base_url,
                                            "api_key": "test-key", "model": "gpt-test"}}  # fmt: skip
    live = LiveServer(tmp_path / "llm-server", memory={"llm": llm}, **server_db)
    try:
        with live.client() as admin:
            instructions = {"custom_instructions": "Only food.",
                            "agent_custom_instructions": "Only tool names."}  # fmt: skip
            for scope in ({"agent_id": "a"}, {"user_id": "u", "agent_id": "a"}):
                answer = admin.post("/v1/memories/", json={
                    "messages": "I like soup.", "async_mode": False, **scope, **instructions})  # fmt: skip
                assert answer.status_code == 200, answer.text
            agent_call, user_call = (json.dumps(r["json"]["messages"])
                                     for r in fake_openai.chat_requests[-2:])  # fmt: skip
            assert "Only tool names." in agent_call and "Only food." not in agent_call
            assert "Only food." in user_call and "Only tool names." not in user_call
    finally:
        live.close()
