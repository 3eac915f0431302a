"""The dashboard's project pages in a real browser: webhooks (secret shown once, the delivery
log, redeliver), settings, and a whole project exported and imported into another."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from playwright.sync_api import Browser, expect

from tests.dashboard.test_browser import browser, database, shot, sign_in
from tests.server.live import LiveServer, add_now, free_port, new_project

__all__ = ["browser"]


@pytest.fixture
def site(tmp_path: Path, server_db: dict[str, Any]) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "data", **server_db)
    yield live
    live.close()


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        _Hook.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook_url() -> Iterator[str]:
    _Hook.received = []
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/hook"
    server.shutdown()
    server.server_close()


def test_webhooks_secret_once_log_and_redeliver(
    browser: Browser, site: LiveServer, hook_url: str
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, site)
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("Name").fill("audit")
    page.get_by_label("URL").fill(hook_url)
    page.get_by_label("memory_delete").uncheck()
    page.get_by_role("button", name="Add webhook").click()
    secret = page.locator("#new-secret").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    expect(page.locator("tbody")).to_contain_text("memory_add, memory_update")
    shot(page, "webhooks", database(site))
    page.goto(f"{site.url}/dashboard/webhooks")
    expect(page.locator("#new-secret")).to_have_count(0)  # shown once
    with site.client() as admin:
        add_now(admin, "Tara runs a bakery", user="tara", infer=False)
    page.get_by_role("link", name="audit").click()
    row = page.locator("tbody tr").first
    expect(row.locator(".status")).to_have_text("DELIVERED", timeout=15_000)
    page.reload()
    expect(page.locator("tbody tr").first.locator(".status")).to_have_text("DELIVERED")
    page.locator("tbody tr").first.get_by_role("button", name="Redeliver").click()
    expect(page.get_by_role("status")).to_contain_text("queued again")
    expect(page.locator("tbody tr")).to_have_count(2)
    for _ in range(100):
        if len(_Hook.received) == 2:
            break
        page.wait_for_timeout(100)
    assert len(_Hook.received) == 2 and _Hook.received[0] == _Hook.received[1]
    assert json.loads(_Hook.received[0])["event_details"]["data"]["memory"] == (
        "Tara runs a bakery"
    )
    shot(page, "deliveries", database(site))
    # Paused: nothing more is delivered.
    page.goto(f"{site.url}/dashboard/webhooks")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("tbody")).to_contain_text("paused")
    page.close()


def test_settings_are_saved(browser: Browser, site: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, site)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Custom instructions (what").fill("Keep food preferences only.")
    page.get_by_label("Custom categories").fill("food: what they eat\nbroken line")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("line 2")  # refused, said where
    page.go_back()
    page.get_by_label("Custom categories").fill("food: what they eat\ntravel: trips")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved")
    expect(page.get_by_label("Custom categories")).to_have_value(
        "food: what they eat\ntravel: trips"
    )
    with site.client() as admin:
        pong = admin.get("/v1/ping/").json()
        project = admin.get(f"/api/v1/orgs/organizations/{pong['org_id']}/projects/"
                            f"{pong['project_id']}/").json()  # fmt: skip
    assert project["custom_instructions"] == "Keep food preferences only."
    assert project["custom_categories"] == [{"food": "what they eat"}, {"travel": "trips"}]
    shot(page, "settings", database(site))
    page.close()


def test_export_then_import_into_another_project(
    browser: Browser, site: LiveServer, tmp_path: Path
) -> None:
    with site.client() as admin:
        add_now(admin, "Uma speaks Welsh", user="uma", infer=False)
        add_now(admin, "Uma moved to Cardiff", user="uma", infer=False)
        _, _, other_key = new_project(admin, "copy")
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    sign_in(page, site)
    page.get_by_role("link", name="Import / Export").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download JSON Lines").click()
    saved = tmp_path / "export.jsonl"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "project" and len(lines) >= 3
    shot(page, "transfer", database(site))
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site, other_key)
    page.goto(f"{site.url}/dashboard/transfer")
    page.get_by_label("A JSON Lines export").set_input_files(str(saved))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-result")).to_contain_text("2 memories")
    page.goto(f"{site.url}/dashboard/memories")
    expect(page.get_by_text("2 memories, newest first")).to_be_visible()
    expect(page.locator("tbody")).to_contain_text("Uma moved to Cardiff")
    # The same file again: the ids exist, nothing is written, and the page says why.
    page.goto(f"{site.url}/dashboard/transfer")
    page.get_by_label("A JSON Lines export").set_input_files(str(saved))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("alert")).to_contain_text("exist")
    page.goto(f"{site.url}/dashboard/memories")
    expect(page.get_by_text("2 memories, newest first")).to_be_visible()
    page.close()


def test_an_organization_key_switches_projects(browser: Browser, site: LiveServer) -> None:
    with site.client() as admin:
        _, _, second_key = new_project(admin, "second")
        add_now(admin, "Wes lives in the default project", user="wes", infer=False)
    with site.client(second_key) as second:
        add_now(second, "Xia lives in the second project", user="xia", infer=False)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, site)  # the admin's key: an organization OWNER's
    page.goto(f"{site.url}/dashboard/memories")
    expect(page.locator("tbody")).to_contain_text("Wes lives in the default project")
    page.get_by_label("Project", exact=True).select_option(label="second")
    expect(page.get_by_role("status")).to_contain_text("Now looking at project")
    page.goto(f"{site.url}/dashboard/memories")
    expect(page.locator("tbody")).to_contain_text("Xia lives in the second project")
    expect(page.locator("tbody")).not_to_contain_text("Wes")
    page.get_by_role("button", name="Sign out").click()
    # The second project's own key: no switcher.
    sign_in(page, site, second_key)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_label("Project", exact=True)).to_have_count(0)
    page.close()
