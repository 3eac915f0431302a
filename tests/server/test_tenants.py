"""Tenants: projects, members, keys and roles; no key ever sees another project's data."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx

from tests.fakes.docs_server import DocsServer
from tests.fakes.openai_server import FakeOpenAI
from tests.server.live import LiveServer, free_port, member_key, new_project, wait_event


def test_keys_are_confined_to_their_project(server: LiveServer, admin: httpx.Client) -> None:
    projects = [new_project(admin, f"p{i}") for i in range(3)]
    clients = [server.client(member_key(admin, org, project, f"dev{i}@x.io"))
               for i, (org, project, _) in enumerate(projects)]  # fmt: skip
    rng = random.Random(7)
    owned: list[dict[str, str]] = [{} for _ in clients]  # memory id -> text, per project
    for step in range(60):
        i = rng.randrange(len(clients))
        user = rng.choice(["ann", "bob"])
        text = f"secret {step} of project {i}"
        answer = clients[i].post("/v1/memories/", json={
            "messages": text, "user_id": user, "infer": False, "async_mode": False})  # fmt: skip
        owned[i][answer.json()["results"][0]["id"]] = text
    for i, client in enumerate(clients):
        for user in ("ann", "bob"):
            listed = client.post("/v3/memories/", json={"filters": {"user_id": user}}).json()
            assert {r["id"] for r in listed["results"]} <= set(owned[i])
            found = client.post("/v3/memories/search/", json={
                "query": "secret project", "filters": {"user_id": user}, "top_k": 100}).json()  # fmt: skip
            assert all(f"of project {i}" in r["memory"] for r in found["results"])
        for j, other in enumerate(owned):
            if j == i:
                continue
            for memory_id in list(other)[:5]:
                assert client.get(f"/v1/memories/{memory_id}/").status_code == 404
                assert (
                    client.put(f"/v1/memories/{memory_id}/", json={"text": "x"}).status_code == 404
                )
                assert client.delete(f"/v1/memories/{memory_id}/").status_code == 404
                assert client.get(f"/v1/memories/{memory_id}/history/").status_code == 404
        org_id, project_id, _ = projects[(i + 1) % 3]
        assert (
            client.get(f"/api/v1/orgs/organizations/{org_id}/projects/{project_id}/").status_code
            == 403
        )
        assert client.get("/v1/ping/", params={"project_id": project_id}).status_code == 403
    for client in clients:
        client.close()


def test_no_way_up_to_the_organization_through_a_member_email(
    server: LiveServer, admin: httpx.Client
) -> None:
    """The key a new project comes with is a project key, though its user owns the
    organization; so is a key a project's owner makes for that user. Only an organization
    OWNER's key makes keys that carry an organization role."""
    org_id = admin.get("/v1/ping/").json()["org_id"]
    orgs = f"/api/v1/orgs/organizations/{org_id}"
    _, mine, made_with = new_project(admin, "mine")
    _, theirs, _ = new_project(admin, "theirs")
    with server.client(made_with) as first:
        assert first.get(f"{orgs}/projects/{theirs}/").status_code == 403
        as_admin = first.post(f"{orgs}/projects/{mine}/api-keys/",
                              json={"email": "admin@localhost"}).json()  # fmt: skip
        assert as_admin["org_wide"] is False
        wider = first.post(f"{orgs}/projects/{mine}/api-keys/",
                           json={"email": "admin@localhost", "organization": True})  # fmt: skip
        assert wider.status_code == 403
    with server.client(as_admin["key"]) as borrowed:
        assert borrowed.get(f"{orgs}/projects/{theirs}/").status_code == 403
        assert borrowed.get("/metrics").status_code == 403
        assert borrowed.post(f"{orgs}/members/", json={"email": "x@x.io"}).status_code == 403
    made = admin.post(f"{orgs}/projects/{mine}/api-keys/",
                      json={"email": "admin@localhost", "organization": True}).json()  # fmt: skip
    with server.client(made["key"]) as organization_key:
        assert made["org_wide"] is True
        assert organization_key.get(f"{orgs}/projects/{theirs}/").status_code == 200


def test_project_keys_reach_their_project_only_and_org_roles_reach_the_rest(
    server: LiveServer, admin: httpx.Client
) -> None:
    org_id = admin.get("/v1/ping/").json()["org_id"]
    orgs = f"/api/v1/orgs/organizations/{org_id}"
    _, mine, _ = new_project(admin, "mine")
    _, theirs, _ = new_project(admin, "theirs")
    admin.post(f"{orgs}/projects/{theirs}/members/", json={"email": "secret@x.io"})
    with server.client(member_key(admin, org_id, mine, "dev@x.io")) as dev:
        listed = dev.get(f"{orgs}/projects/")
        assert listed.status_code == 200 and [p["id"] for p in listed.json()] == [mine]
        assert "secret@x.io" not in listed.text
        for path in (f"/projects/{theirs}/", f"/projects/{theirs}/members/",
                     f"/projects/{theirs}/api-keys/", "/members/"):  # fmt: skip
            assert dev.get(orgs + path).status_code == 403, path
        made = dev.post(f"{orgs}/projects/", json={"name": "sneaky"})
        assert made.status_code == 403 and "organization OWNER" in made.json()["detail"]
        assert dev.patch(f"{orgs}/projects/{theirs}/", json={"description": "x"}).status_code == 403
        assert dev.delete(f"{orgs}/projects/{theirs}/").status_code == 403
        promoted = dev.post(f"{orgs}/members/", json={"email": "dev@x.io", "role": "OWNER"})
        assert promoted.status_code == 403
        assert dev.get(f"{orgs}/projects/{mine}/").status_code == 200  # its own project
        assert dev.get("/metrics").status_code == 403
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    assert admin.get("/metrics").status_code == 200
    assert "sneaky" not in [p["name"] for p in admin.get(f"{orgs}/projects/").json()]

    # The admin (the organization's OWNER) reaches every project and manages the organization.
    assert {mine, theirs} <= {p["id"] for p in admin.get(f"{orgs}/projects/").json()}
    assert admin.get(f"{orgs}/projects/{theirs}/members/").status_code == 200
    members = admin.get(f"{orgs}/members/").json()["members"]
    assert [(m["email"], m["role"]) for m in members] == [("admin@localhost", "OWNER")]
    assert (
        admin.post(f"{orgs}/members/", json={"email": "lead@x.io", "role": "READER"}).status_code
        == 200
    )
    lead_key = member_key(admin, org_id, mine, "lead@x.io", "READER", organization=True)
    with server.client(lead_key) as lead:
        assert {mine, theirs} <= {p["id"] for p in lead.get(f"{orgs}/projects/").json()}
        assert lead.get(f"{orgs}/members/").status_code == 200
        assert lead.post(f"{orgs}/projects/", json={"name": "x"}).status_code == 403
        assert lead.get(f"{orgs}/projects/{theirs}/members/").status_code == 200
        changed = lead.patch(f"{orgs}/projects/{theirs}/", json={"description": "x"})
        assert changed.status_code == 403  # reads only: not an OWNER
    last = admin.delete(f"{orgs}/members/", params={"email": "admin@localhost"})
    assert last.status_code == 409 and "last OWNER" in last.json()["detail"]
    demoted = admin.put(f"{orgs}/members/", json={"email": "admin@localhost", "role": "READER"})
    assert demoted.status_code == 409
    assert (
        admin.put(f"{orgs}/members/", json={"email": "lead@x.io", "role": "BOSS"}).status_code
        == 400
    )
    assert admin.delete(f"{orgs}/members/", params={"email": "lead@x.io"}).status_code == 200
    assert admin.delete(f"{orgs}/members/", params={"email": "lead@x.io"}).status_code == 404


def test_metrics_may_be_made_public(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", public_metrics=True)
    try:
        answer = httpx.get(f"{server.url}/metrics")
        assert answer.status_code == 200 and "engram_requests_total" in answer.text
    finally:
        server.close()


def test_reader_keys_cannot_write_and_revoked_keys_stop(
    server: LiveServer, admin: httpx.Client
) -> None:
    org_id, project_id, owner_key = new_project(admin, "roles")
    base = f"/api/v1/orgs/organizations/{org_id}/projects/{project_id}"
    with server.client(owner_key) as owner:
        assert (
            owner.post(f"{base}/members/", json={"email": "r@x.io", "role": "READER"}).status_code
            == 200
        )
        made = owner.post(f"{base}/api-keys/", json={"email": "r@x.io"}).json()
        assert made["role"] == "READER" and made["key"].startswith("eg-")
        listed = owner.get(f"{base}/api-keys/").json()["results"]
        assert all("key" not in k and "digest" not in k for k in listed)
        with server.client(made["key"]) as reader:
            assert reader.get("/v1/ping/").json()["role"] == "READER"
            assert (
                reader.post("/v3/memories/", json={"filters": {"user_id": "u"}}).status_code == 200
            )
            denied = reader.post("/v3/memories/add/", json={"messages": "hi", "user_id": "u"})
            assert denied.status_code == 403 and "read-only" in denied.json()["detail"]
            assert owner.delete(f"{base}/api-keys/{made['id']}/").status_code == 200
            assert reader.get("/v1/ping/").status_code == 401


def test_project_settings_apply_to_adds(server: LiveServer, admin: httpx.Client) -> None:
    pong = admin.get("/v1/ping/").json()
    path = f"/api/v1/orgs/organizations/{pong['org_id']}/projects/{pong['project_id']}/"
    patched = admin.patch(path, json={"custom_categories": [{"pets": "animals the user has"}]})
    assert patched.json()["custom_categories"] == [{"pets": "animals the user has"}]
    assert admin.get(path, params={"fields": "custom_categories"}).json() == {
        "custom_categories": [{"pets": "animals the user has"}]}  # fmt: skip
    assert admin.patch(path, json={"colour": "red"}).status_code == 400


def test_project_instructions_reach_the_llm(
    tmp_path: Path, fake_openai: FakeOpenAI, server_db: dict[str, Any]
) -> None:
    llm = {"provider": "openai", "config": {"openai_base_url": fake_openai.base_url,
                                            "api_key": "test-key", "model": "gpt-test"}}  # fmt: skip
    live = LiveServer(tmp_path / "llm-server", memory={"llm": llm}, **server_db)
    try:
        with live.client() as admin:
            pong = admin.get("/v1/ping/").json()
            path = f"/api/v1/orgs/organizations/{pong['org_id']}/projects/{pong['project_id']}/"
            admin.patch(path, json={"custom_instructions": "Only keep food facts.",
                                    "agent_custom_instructions": "Only keep tool names."})  # fmt: skip
            for scope in ({"user_id": "u"}, {"agent_id": "a"}):
                answer = admin.post("/v1/memories/", json={
                    "messages": "I like soup.", "async_mode": False, **scope})  # fmt: skip
                assert answer.status_code == 200, answer.text
            user_call, agent_call = fake_openai.chat_requests[-2:]
            assert "Only keep food facts." in json.dumps(user_call["json"]["messages"])
            assert "Only keep tool names." in json.dumps(agent_call["json"]["messages"])
    finally:
        live.close()


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.fail_first > 0:
            _Receiver.fail_first -= 1
            self.send_response(500)
        else:
            _Receiver.received.append((dict(self.headers), body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhooks_are_signed_retried_and_recorded(server: LiveServer, admin: httpx.Client) -> None:
    _Receiver.received, _Receiver.fail_first = [], 1  # one receiver per run
    port = free_port()
    receiver = HTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        project_id = admin.get("/v1/ping/").json()["project_id"]
        hook = admin.post(f"/api/v1/webhooks/projects/{project_id}/", json={
            "url": f"http://127.0.0.1:{port}/hook", "name": "h",
            "event_types": ["memory_add"]}).json()  # fmt: skip
        assert admin.post(f"/api/v1/webhooks/projects/{project_id}/", json={
            "url": "ftp://x", "name": "h", "event_types": ["memory_add"]}).status_code == 400  # fmt: skip
        answer = admin.post(
            "/v3/memories/add/", json={"messages": "I like tea", "user_id": "w", "infer": False}
        )
        assert wait_event(admin, answer.json()["event_id"])["status"] == "SUCCEEDED"
        deadline = time.monotonic() + 20
        while not _Receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        headers, body = _Receiver.received[0]
        expected = "sha256=" + hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Engram-Signature"] == expected
        payload = json.loads(body)
        assert payload["event_type"] == "memory_add"
        assert payload["event_details"]["event"] == "ADD"
        assert payload["event_details"]["data"]["memory"] == "I like tea"
        record = admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries/").json()["results"]
        assert record[0]["status"] == "DELIVERED" and record[0]["attempts"] == 2
        assert admin.get(f"/api/v1/webhooks/projects/{project_id}/").json()[0]["name"] == "h"
        assert (
            admin.put(f"/api/v1/webhooks/{hook['id']}/", json={"name": "renamed"}).json()["name"]
            == "renamed"
        )
        assert admin.delete(f"/api/v1/webhooks/{hook['id']}/").status_code == 200
    finally:
        receiver.shutdown()


PRIVATE_TARGETS = (
    "http://127.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://[::1]:{port}/hook",
    "http://0.0.0.0:{port}/hook",
    "http://224.0.0.1/hook",
    "https://no-such-host.invalid/hook",
)


def test_webhooks_reach_public_addresses_only(tmp_path: Path) -> None:
    """Unless the operator allows private URLs, a webhook to a loopback, private, link-local,
    multicast or unresolvable host is refused when made, and a stored one (made while they were
    allowed, or whose DNS changed since) is refused again when sent: nothing reaches it."""
    _Receiver.received, _Receiver.fail_first = [], 0
    port = free_port()
    receiver = HTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    data = tmp_path / "data"
    try:
        allowed = LiveServer(data)  # the tests' default: private URLs allowed
        with allowed.client() as client:
            project_id = client.get("/v1/ping/").json()["project_id"]
            hook = client.post(f"/api/v1/webhooks/projects/{project_id}/", json={
                "url": f"http://127.0.0.1:{port}/hook", "name": "inside",
                "event_types": ["memory_add"]}).json()  # fmt: skip
        allowed.close()
        strict = LiveServer(data, allow_private_urls=False)
        try:
            with strict.client() as client:
                for url in PRIVATE_TARGETS:
                    answer = client.post(f"/api/v1/webhooks/projects/{project_id}/", json={
                        "url": url.format(port=port), "name": "h",
                        "event_types": ["memory_add"]})  # fmt: skip
                    assert answer.status_code == 400, (url, answer.text)
                moved = client.put(f"/api/v1/webhooks/{hook['id']}/",
                                   json={"url": "http://192.168.1.1/hook"})  # fmt: skip
                assert moved.status_code == 400
                added = client.post("/v3/memories/add/", json={
                    "messages": "I like tea", "user_id": "w", "infer": False})  # fmt: skip
                assert wait_event(client, added.json()["event_id"])["status"] == "SUCCEEDED"
                deadline, record = time.monotonic() + 20, []
                while time.monotonic() < deadline:
                    record = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries/").json()[
                        "results"]  # fmt: skip
                    if record and record[0]["attempts"] >= 1:
                        break
                    time.sleep(0.1)
                assert record and "refused" in record[0]["last_error"], record
                assert _Receiver.received == []
        finally:
            strict.close()
    finally:
        receiver.shutdown()


def test_a_project_opts_in_to_private_addresses_by_an_org_owner(tmp_path: Path) -> None:
    """On a server that refuses private addresses, an organization OWNER may let one project
    reach them (a self-hoster's own network): its webhooks and its documents; not another
    project's, and the project's own key cannot turn it on."""
    docs = DocsServer()
    server = LiveServer(tmp_path / "data", allow_private_urls=False)
    try:
        with server.client() as admin:
            org_id, inside, _ = new_project(admin, "inside")
            _, outside, outside_key = new_project(admin, "outside")
            settings = f"/api/v1/orgs/organizations/{org_id}/projects/{inside}/"
            with server.client(member_key(admin, org_id, inside, "dev@x.io")) as dev:
                denied = dev.patch(settings, json={"allow_private_urls": True})
                assert denied.status_code == 403 and "OWNER" in denied.json()["detail"]
                assert admin.patch(settings, json={"allow_private_urls": "yes"}).status_code == 400
                opened = admin.patch(settings, json={"allow_private_urls": True})
                assert opened.status_code == 200 and opened.json()["allow_private_urls"] is True
                hook = {"url": docs.url("/hook"), "name": "h", "event_types": ["memory_add"]}
                made = dev.post(f"/api/v1/webhooks/projects/{inside}/", json=hook)
                assert made.status_code == 200, made.text
                document = {"type": "txt_url", "txt_url": {"url": docs.url("/notes.txt")}}
                added = dev.post("/v1/memories/", json={
                    "messages": [{"role": "user", "content": document}], "user_id": "u",
                    "infer": False, "async_mode": False})  # fmt: skip
                assert added.status_code == 200, added.text
                assert "Porto" in added.json()["results"][0]["memory"]
            with server.client(outside_key) as other:
                refused = other.post(f"/api/v1/webhooks/projects/{outside}/", json=hook)
                assert refused.status_code == 400
                fetched = other.post("/v1/memories/", json={
                    "messages": [{"role": "user", "content": document}], "user_id": "u",
                    "infer": False, "async_mode": False})  # fmt: skip
                assert fetched.status_code == 400 and "private" in fetched.text, fetched.text
    finally:
        server.close()
        docs.close()


def test_a_delivery_goes_to_the_address_checked_with_its_host_kept(server: LiveServer) -> None:
    """The delivery connects to the address the host resolved to, and keeps the URL's host in
    `Host` (what a virtual host or a TLS certificate is chosen by)."""
    _Receiver.received, _Receiver.fail_first = [], 0
    port = free_port()
    receiver = HTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        with server.client() as client:
            project_id = client.get("/v1/ping/").json()["project_id"]
            client.post(f"/api/v1/webhooks/projects/{project_id}/", json={
                "url": f"http://localhost:{port}/hook", "name": "named",
                "event_types": ["memory_add"]}).raise_for_status()  # fmt: skip
            added = client.post("/v3/memories/add/", json={
                "messages": "I like tea", "user_id": "w", "infer": False})  # fmt: skip
            assert wait_event(client, added.json()["event_id"])["status"] == "SUCCEEDED"
        deadline = time.monotonic() + 20
        while not _Receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        headers, _ = _Receiver.received[0]
        assert headers["Host"] == f"localhost:{port}"
    finally:
        receiver.shutdown()


def test_an_organization_key_names_the_project_it_works_on(
    server: LiveServer, admin: httpx.Client
) -> None:
    """1.x clients send project_id in the query: an organization key (the admin's) works on
    that project of its organization; a project key only on its own."""
    _, project_id, project_key = new_project(admin, "picked")
    chosen = {"project_id": project_id}
    added = admin.post("/v1/memories/", params=chosen, json={
        "messages": "Vera keeps bees", "user_id": "vera", "infer": False, "async_mode": False})  # fmt: skip
    assert added.status_code == 200, added.text
    with server.client(project_key) as own:
        listed = own.get("/v1/memories/", params={"user_id": "vera"}).json()
        assert [m["memory"] for m in listed["results"]] == ["Vera keeps bees"]
        default_project = admin.get("/v1/ping/").json()["project_id"]
        refused = own.get("/v1/memories/", params={"user_id": "vera",
                                                   "project_id": default_project})  # fmt: skip
        assert refused.status_code == 403
    # The admin's own project does not have it; a project that does not exist is a 404.
    assert admin.get("/v1/memories/", params={"user_id": "vera"}).json()["count"] == 0
    missing = admin.get("/v1/memories/", params={"user_id": "vera", "project_id": "proj_nope"})
    assert missing.status_code == 404
    assert admin.get("/v1/ping/", params=chosen).json()["project_id"] == project_id
