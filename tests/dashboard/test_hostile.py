"""Hostile requests to the dashboard (no browser needed): each gets an error page with a 4xx and
a message, never a 500, and nothing changes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.live import ADMIN_KEY, LiveServer, add_now


@pytest.fixture
def signed_in(tmp_path: Path) -> Iterator[tuple[LiveServer, httpx.Client, str]]:
    live = LiveServer(tmp_path / "data")
    browser = httpx.Client(base_url=live.url, timeout=30)
    answer = browser.post("/dashboard/login", data={"api_key": ADMIN_KEY})
    assert answer.status_code == 303
    page = browser.get("/dashboard/keys").text
    csrf = re.findall(r'name="csrf" value="([^"]+)"', page)[0]
    yield live, browser, csrf
    browser.close()
    live.close()


def test_sign_in_goes_nowhere_but_the_dashboard(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "data")
    try:
        with httpx.Client(base_url=live.url) as browser:
            for target in ("//evil.example/x", "https://evil.example", "/dashboard/../../x",
                           "/dashboard\\\\evil", "javascript:alert(1)"):  # fmt: skip
                answer = browser.post("/dashboard/login", data={"api_key": ADMIN_KEY,
                                                                "next": target})  # fmt: skip
                assert answer.status_code == 303
                assert answer.headers["location"] == "/dashboard", target
            assert browser.post("/dashboard/login", data={}).status_code == 401
            long_key = "k" * 100_000
            assert browser.post("/dashboard/login", data={"api_key": long_key}).status_code == 401
    finally:
        live.close()


def test_bad_values_are_4xx_pages(signed_in: tuple[LiveServer, httpx.Client, str]) -> None:
    live, browser, csrf = signed_in
    with live.client() as admin:
        memory_id = add_now(admin, "Yara swims", user="yara", infer=False)["results"][0]["id"]
    for path in (
        "/dashboard/memories?after=not-a-cursor",
        "/dashboard/memories?since=yesterday",
        "/dashboard/memories?metadata_key=a&metadata_value=%7B%22%24bad%22%3A1%7D",
        "/dashboard/memories/not-a-uuid",
        "/dashboard/memories/..%2F..%2Fv1%2Fping",
        "/dashboard/graph?type=bogus&id=x",
        "/dashboard/events/nope",
        "/dashboard/webhooks/999999",
        "/dashboard/transfer/exports/nope",
    ):  # fmt: skip
        answer = browser.get(path)
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:300])
        assert "that did not work" in answer.text or answer.status_code == 404, path
    posts = [
        (f"/dashboard/memories/{memory_id}/edit", {"text": "x", "metadata": "[1, 2]"}),
        (f"/dashboard/memories/{memory_id}/edit", {"text": ""}),
        (f"/dashboard/memories/{memory_id}/feedback", {"feedback": "SUPER"}),
        ("/dashboard/webhooks", {"name": "h", "url": "ftp://x", "event_types": "memory_add"}),
        ("/dashboard/settings", {"custom_categories": "no colon here"}),
        ("/dashboard/transfer/schema-export", {"schema": "{not json"}),
        ("/dashboard/project", {"project_id": "proj_nope"}),
        ("/dashboard/entities/delete", {"type": "planet", "name": "x"}),
    ]
    for path, form in posts:
        answer = browser.post(path, data={"csrf": csrf, **form})
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:300])
    bad_upload = browser.post("/dashboard/transfer/import", data={"csrf": csrf},
                              files={"file": ("x.jsonl", b"\xff\xfe not utf-8")})  # fmt: skip
    assert bad_upload.status_code == 400
    with live.client() as admin:  # nothing changed
        found = admin.get(f"/v1/memories/{memory_id}/").json()
        assert found["memory"] == "Yara swims" and found["metadata"] == {}
