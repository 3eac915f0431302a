"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a live
`engram serve` on both databases. Each journey asserts what the person sees. Screenshots of every
page go to build/screenshots (or $ENGRAM_SCREENSHOTS)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.fakes.openai_server import FakeOpenAI
from tests.server.live import ADMIN_KEY, LiveServer, add_now, member_key, new_project

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("ENGRAM_SCREENSHOTS", ROOT / "build" / "screenshots"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = "Chromium is not installed: run `make browser` (scripts/install-chromium.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        print(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    """The LLM of the server's adds: slow enough that a queued add is seen waiting."""
    fake = FakeOpenAI()

    def extract(body: dict[str, Any]) -> str:
        time.sleep(1.5)
        said = re.findall(r"I (?:just )?(?:adopted|bought) ([\w ]+)", str(body["messages"]))
        facts = [{"text": f"Has {thing.strip()}", "event": "ADD"} for thing in said]
        return json.dumps({"facts": facts})

    fake.responder = extract
    yield fake
    fake.close()


@pytest.fixture
def site(tmp_path: Path, server_db: dict[str, Any], upstream: FakeOpenAI) -> Iterator[LiveServer]:
    llm = {"provider": "openai", "config": {"openai_base_url": upstream.base_url,
                                            "api_key": "test-key"}}  # fmt: skip
    live = LiveServer(tmp_path / "data", memory={"llm": llm}, **server_db)
    yield live
    live.close()


def shot(page: Page, name: str, database: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{database}.png"), full_page=True)


def sign_in(page: Page, site: LiveServer, key: str = ADMIN_KEY) -> None:
    page.goto(f"{site.url}/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/login"))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def database(site: LiveServer) -> str:
    return "postgres" if site.settings.database_url else "sqlite"


def test_sign_in_search_edit_delete(browser: Browser, site: LiveServer) -> None:
    db = database(site)
    with site.client() as admin:
        add_now(admin, "Noor is allergic to shellfish", user="noor", infer=False)
        add_now(admin, "Noor plays the cello on Sundays", user="noor", infer=False)
        add_now(admin, "Omar collects vinyl records", user="omar", infer=False)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    # A wrong key is refused, and says so.
    sign_in(page, site, "eg-not-a-real-key")
    expect(page.get_by_role("alert")).to_contain_text("invalid or revoked API key")
    shot(page, "login", db)
    page.get_by_label("API key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator(".tile").first).to_contain_text("3")
    expect(page.locator(".legend")).to_contain_text("adds (3)")  # this hour's bar
    shot(page, "overview", db)
    # Find a memory by search and open it.
    page.get_by_role("link", name="Memories").click()
    expect(page.get_by_text("3 memories, newest first")).to_be_visible()
    shot(page, "memories", db)
    page.get_by_label("Search").fill("shellfish")
    page.get_by_role("button", name="Search", exact=True).click()
    first = page.locator("table.memories tbody tr").first
    expect(first).to_contain_text("Noor is allergic to shellfish")
    expect(first.locator(".explain")).to_contain_text("vector")  # the score's components
    expect(page.locator(".summary")).to_contain_text("recipe hybrid")
    page.get_by_label("Recipe", exact=True).select_option("keyword")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator(".summary")).to_contain_text("recipe keyword")
    first = page.locator("table.memories tbody tr").first
    expect(first).to_contain_text("Noor is allergic to shellfish")
    shot(page, "search", db)
    first.get_by_role("link", name="Noor is allergic to shellfish").click()
    expect(page.get_by_role("heading", name="Noor is allergic to shellfish")).to_be_visible()
    # Edit it; the new version is in its history, with what changed.
    page.get_by_label("Text").fill("Noor is allergic to shellfish and peanuts")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    expect(
        page.get_by_role("heading", name="Noor is allergic to shellfish and peanuts")
    ).to_be_visible()
    latest = page.locator(".timeline li").first
    expect(latest).to_contain_text("UPDATE")
    expect(latest.locator(".new")).to_have_text("and peanuts")
    expect(latest.locator(".cause")).to_contain_text("edited by an update call")
    expect(page.locator(".timeline li").last.locator(".cause")).to_contain_text("stored as given")
    expect(page.locator(".timeline li")).to_have_count(2)
    shot(page, "memory", db)
    # Delete it (the browser's confirmation accepted).
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete memory").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted memory")
    expect(page.get_by_text("2 memories, newest first")).to_be_visible()
    expect(page.get_by_text("allergic to shellfish")).to_have_count(0)
    page.close()


def test_filter_then_delete_in_bulk(browser: Browser, site: LiveServer) -> None:
    with site.client() as admin:
        add_now(admin, "Noor plays the cello on Sundays", user="noor", infer=False)
        add_now(admin, "Omar collects vinyl records", user="omar", infer=False)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, site)
    page.goto(f"{site.url}/dashboard/memories")
    page.get_by_text("Filters").click()
    page.get_by_label("user_id").fill("noor")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("1 memories, newest first")).to_be_visible()
    page.get_by_label("Select all").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete selected").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted 1 memories")
    page.get_by_role("link", name="Entities").click()
    expect(page.locator("tbody")).to_contain_text("omar")
    expect(page.locator("tbody")).not_to_contain_text("noor")
    shot(page, "entities", database(site))
    page.close()


def test_keys_are_shown_once_and_readers_see_no_controls(
    browser: Browser, site: LiveServer
) -> None:
    db = database(site)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, site)
    page.get_by_role("link", name="Keys & members").click()
    page.get_by_label("Name").fill("ci bot")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text()
    assert key.startswith("eg-") and len(key) > 30
    shot(page, "keys", db)
    page.goto(f"{site.url}/dashboard/keys")  # shown on the answer to the POST only
    expect(page.locator("#new-key")).to_have_count(0)
    expect(page.locator("tbody").first.locator("tr", has_text="ci bot")).to_have_count(1)
    # Members: add one, change the role, remove.
    page.get_by_label("Email").fill("helper@example.com")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("status")).to_contain_text("helper@example.com is a READER")
    member = page.locator("tbody").nth(1).locator("tr", has_text="helper@example.com")
    member.get_by_role("button", name="Make OWNER").click()
    expect(member).to_contain_text("OWNER")
    page.once("dialog", lambda dialog: dialog.accept())
    member.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_contain_text("Removed helper@example.com")
    expect(page.locator("tbody").nth(1)).not_to_contain_text("helper@example.com")
    # A READER of another project: the pages, but no change controls.
    with site.client() as admin:
        org_id, project_id, _ = new_project(admin, "readers")
        reader = member_key(admin, org_id, project_id, "viewer@example.com", "READER")
    with site.client(reader) as as_reader:
        assert as_reader.get("/v1/ping/").json()["role"] == "READER"
    viewer = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    sign_in(viewer, site, reader)
    expect(viewer.get_by_role("heading", name="Overview")).to_be_visible()
    viewer.goto(f"{site.url}/dashboard/memories")
    expect(viewer.get_by_role("button", name="Delete selected")).to_have_count(0)
    expect(viewer.get_by_label("Select all")).to_have_count(0)
    viewer.goto(f"{site.url}/dashboard/keys")
    expect(viewer.get_by_role("button", name="Create key")).to_have_count(0)
    expect(viewer.get_by_role("button", name="Add member")).to_have_count(0)
    shot(viewer, "keys-reader-phone", db)
    viewer.close()
    page.close()
    dark = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    sign_in(dark, site)
    dark.goto(f"{site.url}/dashboard/keys")
    background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 21, 24)"  # the dark palette
    shot(dark, "keys-dark", db)
    dark.close()


def test_an_async_add_goes_from_pending_to_succeeded(browser: Browser, site: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, site)
    with site.client() as admin:
        queued = admin.post("/v3/memories/add/", json={
            "messages": [{"role": "user", "content": "I just adopted a beagle puppy"}],
            "user_id": "pia"})  # fmt: skip
        assert queued.status_code == 202, queued.text
    page.goto(f"{site.url}/dashboard/events")
    row = page.locator("tbody tr").first
    expect(row.locator(".status")).to_have_text(re.compile("PENDING|RUNNING"))
    expect(page.get_by_text("refreshing while some are pending")).to_be_visible()
    shot(page, "events-pending", database(site))
    expect(row.locator(".status")).to_have_text("SUCCEEDED", timeout=20_000)  # refreshes itself
    expect(row).to_contain_text("Has a beagle puppy")
    shot(page, "events", database(site))
    row.get_by_role("link", name="ADD").click()
    expect(page.get_by_role("link", name="Has a beagle puppy")).to_be_visible()
    page.close()


def test_changes_need_the_session_and_its_csrf_token(browser: Browser, site: LiveServer) -> None:
    with site.client() as admin:
        memory_id = add_now(admin, "Quinn drinks oat milk", user="quinn", infer=False)[
            "results"][0]["id"]  # fmt: skip
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "engram_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # Signed in, but no CSRF token: refused, nothing changed.
    refused = page.request.post(f"{site.url}/dashboard/memories/{memory_id}/delete",
                                form={"confirm": "yes"}, max_redirects=0)  # fmt: skip
    assert refused.status == 403
    assert "did not come from the dashboard" in refused.text()
    with site.client() as admin:
        assert admin.get(f"/v1/memories/{memory_id}/").status_code == 200
    # Signed out: the pages send the browser to the sign-in page, changes are refused.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/dashboard/login"))
    page.goto(f"{site.url}/dashboard/memories/{memory_id}")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    anonymous = page.request.post(f"{site.url}/dashboard/memories/{memory_id}/delete",
                                  form={"csrf": "guess"}, max_redirects=0)  # fmt: skip
    assert anonymous.status == 401
    context.close()


@pytest.fixture
def offline_site(tmp_path: Path, server_db: dict[str, Any]) -> Iterator[LiveServer]:
    """A server without an LLM: the offline extractor keeps the graph's relations."""
    live = LiveServer(tmp_path / "offline", **server_db)
    yield live
    live.close()


def graph_add(site: LiveServer, user: str, *texts: str) -> None:
    with site.client() as admin:
        answer = admin.post("/v1/memories/", json={
            "messages": [{"role": "user", "content": t} for t in texts], "user_id": user,
            "enable_graph": True, "async_mode": False})  # fmt: skip
        assert answer.status_code == 200, answer.text


def test_the_graph_links_relations_to_their_memories(
    browser: Browser, offline_site: LiveServer
) -> None:
    graph_add(offline_site, "rosa", "I work at Acme. I live in Lisbon. I have a dog named Rex.")
    graph_add(offline_site, "rosa", "I live in Madrid now.")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, offline_site)
    page.get_by_role("link", name="Entities").click()
    page.get_by_role("link", name="graph", exact=True).first.click()
    expect(page.get_by_role("heading", name="Graph of user rosa")).to_be_visible()
    expect(page.locator("#graph")).to_have_attribute("data-ready", "true")  # drawn
    relations = page.locator("table.relations tbody")
    expect(relations.locator("tr.ended")).to_contain_text("lives_in Lisbon")  # ended, dated
    expect(relations.locator("tr.ended")).not_to_contain_text("now")
    expect(relations).to_contain_text("works_at Acme")
    shot(page, "graph", database(offline_site))
    relations.get_by_role("link", name="works_at: Acme").click()
    expect(page.get_by_role("heading", name="Works at Acme")).to_be_visible()
    page.go_back()
    expect(page.get_by_role("table").nth(1)).to_contain_text("Madrid")  # the profile facts
    page.close()


def test_a_large_graph_is_capped_saying_so(browser: Browser, tmp_path: Path) -> None:
    """The cap is the page's, whatever the database: on SQLite only."""
    offline_site = LiveServer(tmp_path / "large")
    for start in range(0, 500, 100):
        graph_add(offline_site, "sam", *(f"My friend Person{i} lives in Town{i}."
                                         for i in range(start, start + 100)))  # fmt: skip
    with offline_site.client() as admin:
        relations = admin.get("/v1/entities/user/sam/graph/").json()["relations"]
    entities = len({r["target"] for r in relations} | {"sam"})
    assert entities > 450  # (the extractor may merge a few near-duplicate sentences)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, offline_site)
    page.goto(f"{offline_site.url}/dashboard/graph?type=user&id=sam")
    expect(page.locator("#graph")).to_have_attribute("data-ready", "true")
    expect(page.locator(".summary")).to_contain_text(f"Showing 200 of {entities} entities")
    page.get_by_role("link", name="Show more").click()
    expect(page.locator(".summary")).to_contain_text(f"Showing 400 of {entities} entities")
    expect(page.locator("#graph")).to_have_attribute("data-ready", "true")
    shot(page, "graph-large", database(offline_site))
    page.close()
    offline_site.close()
