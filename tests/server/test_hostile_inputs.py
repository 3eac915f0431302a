"""Hostile inputs, each with the status it must get: a clear 4xx, never a 5xx, never a server
path in the answer, and nothing written. A table, so that a class of fault stays closed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.server.live import LiveServer, new_project

USER = "hostile"
NESTED = 3000  # deeper than Python's recursion limit allows a naive walk


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_filter(depth: int) -> bytes:
    """A filter of `depth` ANDs around the scope, as the JSON text (json.dumps cannot)."""
    inner = json.dumps({"user_id": USER})
    text = '{"AND": [' * depth + inner + "]}" * depth
    return ('{"filters": ' + text + "}").encode()


def nested_metadata(depth: int) -> bytes:
    inner = '{"a": ' * depth + "{}" + "}" * depth
    return (
        '{"messages": "hi", "user_id": "hostile", "infer": false, "metadata": ' + inner + "}"
    ).encode()


ADD = "/v1/memories/"
SEARCH = "/v2/memories/search/"
LIST = "/v2/memories/"
BAD = {400, 404, 413, 422}

# (name, method, path, JSON body or raw bytes or None, the statuses allowed)
CASES: list[tuple[str, str, str, Any, set[int]]] = [
    ("page is not a number", "GET", f"/v1/memories/?user_id={USER}&page=abc", None, BAD),
    ("page is ²", "POST", f"{LIST}?page=%C2%B2", {"filters": {"user_id": USER}}, BAD),
    ("page is huge", "GET", f"/v1/memories/?user_id={USER}&page={10**30}", None, BAD | {200}),
    ("page_size is negative", "GET", f"/v1/memories/?user_id={USER}&page_size=-1", None, BAD),
    ("page_size is huge", "POST", LIST, {"filters": {"user_id": USER}, "page_size": 10**30}, BAD),
    ("limit is not a number", "GET", f"/v1/memories/?user_id={USER}&limit=abc", None, BAD),
    (
        "threshold is text",
        "POST",
        SEARCH,
        {"query": "q", "filters": {"user_id": USER}, "threshold": "abc"},
        BAD,
    ),
    (
        "top_k is huge",
        "POST",
        SEARCH,
        {"query": "q", "filters": {"user_id": USER}, "top_k": 10**30},
        BAD,
    ),
    (
        "timestamp far away",
        "POST",
        ADD,
        {"messages": "hello", "user_id": USER, "timestamp": 1e20, "infer": False},
        BAD,
    ),
    (
        "timestamp is text",
        "POST",
        ADD,
        {"messages": "hello", "user_id": USER, "timestamp": "soon", "infer": False},
        BAD,
    ),
    (
        "integer filter value past 64 bits",
        "POST",
        LIST,
        {"filters": {"AND": [{"user_id": USER}, {"metadata": {"n": 10**40}}]}},
        BAD | {200},
    ),
    (
        "lone surrogate in a message",
        "POST",
        ADD,
        b'{"messages": "bad \\ud800 text", "user_id": "hostile", "infer": false}',
        BAD,
    ),
    (
        "lone surrogate in a query",
        "POST",
        SEARCH,
        b'{"query": "bad \\udfff", "filters": {"user_id": "hostile"}}',
        BAD,
    ),
    ("JSON nested thousands deep", "POST", ADD, nested_list(NESTED).encode(), BAD),
    ("filters nested thousands deep", "POST", LIST, nested_filter(NESTED), BAD),
    ("metadata nested thousands deep", "POST", ADD, nested_metadata(NESTED), BAD),
    ("webhook id past 64 bits", "GET", f"/api/v1/webhooks/{10**25}/deliveries/", None, BAD),
    (
        "`in` list of 10,000 values",
        "POST",
        LIST,
        {
            "filters": {
                "AND": [{"user_id": USER}, {"run_id": {"in": [f"r{i}" for i in range(10_000)]}}]
            }
        },
        BAD | {200},
    ),
    (
        "`in` list past limits.filter_values",
        "POST",
        LIST,
        {
            "filters": {
                "AND": [{"user_id": USER}, {"run_id": {"in": list(map(str, range(10_001)))}}]
            }
        },
        {400},
    ),
    (
        "filter of 1,001 conditions",
        "POST",
        SEARCH,
        {"query": "q", "filters": {"AND": [{"user_id": USER}] + [{"n": i} for i in range(1000)]}},
        {400},
    ),
    (
        "message past limits.message_chars",
        "POST",
        ADD,
        {"messages": "x" * 100_001, "user_id": USER, "infer": False},
        {400},
    ),
    (
        "1,001 messages",
        "POST",
        ADD,
        {"messages": ["hello"] * 1001, "user_id": USER, "infer": False},
        {400},
    ),
    (
        "metadata of 70 kB",
        "POST",
        ADD,
        {"messages": "hi", "user_id": USER, "infer": False, "metadata": {"k": "v" * 70_000}},
        {400},
    ),
    (
        "query past limits.query_chars",
        "POST",
        SEARCH,
        {"query": "q " * 10_001, "filters": {"user_id": USER}},
        {400},
    ),
    (
        '"immutable": "no"',
        "POST",
        ADD,
        {"messages": "hi", "user_id": USER, "immutable": "no", "infer": False},
        BAD,
    ),
    ('"infer": "false"', "POST", ADD, {"messages": "hi", "user_id": USER, "infer": "false"}, BAD),
    ("not JSON at all", "POST", ADD, b"\xff\xfe not json", BAD),
    ("body is a JSON string", "POST", ADD, b'"just a string"', BAD),
    ("memory id with traversal", "GET", "/v1/memories/..%2F..%2Fetc%2Fpasswd/", None, BAD),
    ("memory id that is SQL", "GET", "/v1/memories/1'%20OR%20'1'='1/", None, BAD),
    ("unknown method", "PATCH", ADD, {"messages": "hi"}, {405}),
]


def send(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    if body is None:
        return client.request(method, path)
    if isinstance(body, bytes):
        return client.request(method, path, content=body,
                              headers={"Content-Type": "application/json"})  # fmt: skip
    return client.request(method, path, content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})  # fmt: skip


def test_hostile_inputs_get_a_clear_4xx_and_write_nothing(server: LiveServer) -> None:
    wrong: list[str] = []
    with server.client() as client:
        for name, method, path, body, allowed in CASES:
            try:  # a new connection each: a failed case must not break the next
                client.headers["Connection"] = "close"
                answer = send(client, method, path, body)
            except httpx.HTTPError as exc:  # the server dropped the connection: no answer at all
                wrong.append(f"{name}: no answer ({type(exc).__name__}: {exc})")
                continue
            text = answer.text
            if answer.status_code not in allowed:
                wrong.append(f"{name}: {answer.status_code} {text[:200]}")
            elif (
                str(server.settings.data_dir) in text or "/work/" in text or "site-packages" in text
            ):
                wrong.append(f"{name}: the answer shows a server path: {text[:200]}")
            elif answer.status_code == 405 and "allow" not in answer.headers:
                wrong.append(f"{name}: 405 without Allow")
        listed = client.post(LIST, json={"filters": {"user_id": USER}})
        healthy = client.get("/healthz").status_code
    assert not wrong, "\n".join(wrong)
    assert listed.status_code == 200 and listed.json()["count"] == 0, listed.text
    assert healthy == 200


def test_a_store_that_cannot_open_is_a_503_that_shows_no_path(tmp_path: Path) -> None:
    """The server's own trouble (here a project's store directory taken by a file) is a 503 with
    the store's error, logged whole and answered without the server's file paths."""
    data = tmp_path / "data"
    server = LiveServer(data)
    try:
        with server.client() as admin:
            _, project_id, key = new_project(admin, "broken")
        (data / "projects").mkdir(exist_ok=True)
        (data / "projects" / project_id).write_text("not a directory")
        with server.client(key) as client:
            answer = client.post(ADD, json={"messages": "hi", "user_id": USER, "infer": False})
        assert answer.status_code == 503 and answer.json()["code"] == "store_error", answer.text
        assert str(tmp_path) not in answer.text and "<path>" in answer.text
    finally:
        server.close()
