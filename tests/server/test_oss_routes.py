"""mem0's self-hosted server routes (flat paths, `X-API-Key`), on the key's project."""

from __future__ import annotations

import httpx

from tests.server.live import ADMIN_KEY, LiveServer


def test_self_hosted_routes(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as c:
        added = c.post("/memories", json={
            "messages": [{"role": "user", "content": "I live in Lisbon."}], "user_id": "ana"})  # fmt: skip
        assert added.status_code == 200, added.text
        memory_id = added.json()["results"][0]["id"]
        for text in ("I love fado.", "I work at Acme."):
            c.post("/memories", json={"messages": text, "user_id": "ana", "infer": False})
        c.post("/memories", json={"messages": "I like tea.", "user_id": "bo", "infer": False})
        listed = c.get("/memories", params={"user_id": "ana"}).json()
        assert listed["total"] == 3 and len(listed["results"]) == 3
        assert len(c.get("/memories", params={"user_id": "ana", "limit": 2}).json()["results"]) == 2
        assert c.get("/memories", params={"user_id": "ana", "limit": "x"}).status_code == 400
        assert c.get("/memories", params={"user_id": "ana", "colour": "red"}).status_code == 400
        assert c.get("/memories").status_code == 400  # no scope: an error, not everything
        filtered = c.get("/memories", params={"filters": "{'user_id': 'bo'}"}).json()
        assert [m["memory"] for m in filtered["results"]] == ["I like tea."]
        assert c.get(f"/memories/{memory_id}").json()["memory"] == "Lives in Lisbon"
        found = c.post("/search", json={"query": "where does she live", "user_id": "ana"}).json()
        assert found["results"][0]["id"] == memory_id
        updated = c.put(f"/memories/{memory_id}", json={"text": "Lives in Porto"})
        assert updated.status_code == 200
        assert c.put(f"/memories/{memory_id}", json={"txt": "x"}).status_code == 400
        assert [h["event"] for h in c.get(f"/memories/{memory_id}/history").json()] == [
            "ADD", "UPDATE"]  # fmt: skip
        assert c.delete(f"/memories/{memory_id}").status_code == 200
        assert c.get(f"/memories/{memory_id}").status_code == 404
        assert c.delete("/memories", params={"user_id": "ana", "limit": 1}).status_code == 400
        assert c.delete("/memories", params={"user_id": "ana"}).json()["deleted_count"] == 2
        assert c.post("/reset").status_code == 200
        assert c.get("/memories", params={"user_id": "bo"}).json()["total"] == 0
