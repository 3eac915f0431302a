"""The documented filter examples through the official mem0ai 2.2.1 client, and the 1.x
narrowing parameters (categories, metadata, keywords) through mem0ai 1.0.11, against a live
server: a key's project is the scope, so filters need no user, agent or run id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.filter_examples import load, with_ids
from tests.server.live import ADMIN_KEY, LiveServer, run_official_client

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "clients" / "filters.py"
DATA = load()


def _seed(client: httpx.Client) -> dict[str, str]:
    ids = {}
    for row in DATA["seed"]:
        answer = client.post("/v1/memories/", json={
            "messages": row["text"], "infer": False, "async_mode": False,
            "categories": row["categories"], "timestamp": row["timestamp"],
            "metadata": {"label": row["label"], **row["metadata"]}, **row["scope"],
        })  # fmt: skip
        assert answer.status_code == 200, answer.text
        ids[row["label"]] = answer.json()["results"][0]["id"]
    return ids


def _run_client(version: str, server: LiveServer, cases: list[dict[str, Any]], tmp: Path) -> Any:
    path = tmp / "cases.json"
    path.write_text(json.dumps(cases))
    done = run_official_client(version, SCRIPT, server.url, ADMIN_KEY, str(path), home=tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_documented_filters_through_the_2x_client(
    server: LiveServer, admin: httpx.Client, tmp_path: Path
) -> None:
    ids = _seed(admin)
    cases = [
        {"name": e["name"], "search": {"filters": with_ids(e["filters"], ids)},
         "get_all": {"filters": with_ids(e["filters"], ids)}}
        for e in DATA["examples"]
    ]  # fmt: skip
    got = _run_client("2.2.1", server, cases, tmp_path)
    wrong = {
        e["name"]: (got[e["name"]], sorted(e["expect"]))
        for e in DATA["examples"]
        if got[e["name"]] != {"search": sorted(e["expect"]), "get_all": sorted(e["expect"])}
    }
    assert wrong == {}


NARROWING: list[tuple[str, dict[str, Any], list[str]]] = [  # name, parameters, expected labels
    ("categories", {"categories": ["finance", "health"]}, ["m1", "m2"]),
    ("metadata", {"metadata": {"source": "email"}}, ["m1", "m3"]),
    ("keywords", {"keywords": "invoice"}, ["m1", "m3"]),
    ("all three", {"categories": ["spam"], "metadata": {"priority": 9}, "keywords": "cruise"},
     ["m3"]),
]  # fmt: skip


def test_1x_narrowing_parameters_through_the_1x_client(
    server: LiveServer, admin: httpx.Client, tmp_path: Path
) -> None:
    _seed(admin)
    cases = [
        {"name": name, "search": {"user_id": "alex", **params},
         "get_all": {"user_id": "alex", **params}}
        for name, params, _ in NARROWING
    ]  # fmt: skip
    got = _run_client("1.0.11", server, cases, tmp_path)
    assert got == {name: {"search": e, "get_all": e} for name, _, e in NARROWING}


def test_2x_options_beside_filters(server: LiveServer, admin: httpx.Client, tmp_path: Path) -> None:
    """mem0ai 2.2.1's search/get_all options: categories, metadata, start_date/end_date."""
    _seed(admin)
    alex = {"filters": {"user_id": "alex"}}
    cases = [
        {"name": "categories", "search": {**alex, "categories": ["travel"]},
         "get_all": {**alex, "categories": ["travel"]}},
        {"name": "dates", "search": {**alex, "metadata": {"type": "semantic"}},
         "get_all": {**alex, "start_date": "2024-01-01", "end_date": "2024-02-15"}},
    ]  # fmt: skip
    got = _run_client("2.2.1", server, cases, tmp_path)
    assert got == {
        "categories": {"search": ["m4"], "get_all": ["m4"]},
        "dates": {"search": ["m1", "m4"], "get_all": ["m1", "m2"]},
    }


def test_fields_and_latest_only(admin: httpx.Client) -> None:
    _seed(admin)
    body = {"filters": {"user_id": "bo"}, "fields": ["memory"], "latest_only": True}
    listed = admin.post("/v3/memories/", json=body).json()["results"]
    assert [set(r) for r in listed] == [{"id", "memory"}] * 2
    found = admin.post("/v3/memories/search/", json={"query": "pizza", **body}).json()["results"]
    assert {r["memory"] for r in found} == {"Likes pizza", "Kaiseki dinner planned"}
    bad = admin.post("/v3/memories/", json={**body, "fields": ["nope"]})
    assert bad.status_code == 400 and "nope" in bad.json()["detail"]
    older = admin.post("/v3/memories/", json={**body, "latest_only": False})
    assert older.status_code == 400 and "history" in older.json()["detail"]


def test_ids_in_paths_and_queries_are_values_not_wildcards(admin: httpx.Client) -> None:
    _seed(admin)
    total = admin.post("/v3/memories/", json={}).json()["count"]
    assert admin.delete("/v2/entities/user/*/").json()["deleted_count"] == 0
    assert admin.delete("/v1/memories/", params={"user_id": "*"}).json()["deleted_count"] == 0
    refused = admin.delete("/v1/memories/", params={"filters": "{'NOT': [{'user_id': 'alex'}]}"})
    assert refused.status_code == 400 and "delete must name" in refused.json()["detail"]
    assert admin.post("/v3/memories/", json={}).json()["count"] == total
    assert admin.delete("/v2/entities/app/concierge/").json()["deleted_count"] == 2


def test_narrowing_parameters_are_checked(admin: httpx.Client) -> None:
    _seed(admin)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"keywords": ""}, "non-empty"),
        ({"end_date": 20240101}, "end_date"),
        ({"start_date": "someday"}, "start_date"),
        ({"categories": []}, "categories"),
    ]
    for body, message in cases:
        answer = admin.post("/v3/memories/", json={"filters": {"user_id": "alex"}, **body})
        assert answer.status_code == 400 and message in answer.json()["detail"], answer.text
    listed = admin.get("/v1/memories/", params={"user_id": "bo", "latest_only": "true",
                                                "fields": "memory,categories"})  # fmt: skip
    assert listed.status_code == 200, listed.text
    assert [set(r) for r in listed.json()["results"]] == [{"id", "memory", "categories"}] * 2
    for params in ({"page": "abc"}, {"page_size": "0"}, {"latest_only": "yes"}):
        answer = admin.get("/v1/memories/", params={"user_id": "bo", **params})
        assert answer.status_code == 400, (params, answer.text)
