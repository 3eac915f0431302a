"""The Memories pages: the table (paged by position through everything, or the search box's
results with each hit's score components), the filter builder, bulk delete, and one memory
with its history, edit, delete and feedback."""

from __future__ import annotations

import contextlib
import difflib
import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from engram.dashboard.api import Api, ApiError
from engram.dashboard.pages import (
    PAGE_SIZES,
    SCOPE,
    back,
    local_path,
    page,
    render,
    router,
    seg,
)
from engram.dashboard.session import Viewer

FILTER_FIELDS = (*SCOPE, "category", "metadata_key", "metadata_value", "since", "until",
                 "recipe")  # fmt: skip
RECIPES = ("hybrid", "hybrid_graph", "vector", "keyword", "hybrid_llm")  # the search box's choice
CAUSES = {  # a history version's `cause`, said plainly
    "add": "stored as given by an add (infer=False)",
    "add:extraction": "an add: facts extracted from its messages, reconciled with what was known",
    "update": "edited by an update call",
    "delete": "deleted by a delete call",
    "delete_all": "deleted with its user, agent or run (delete_all)",
    "batch_update": "edited by a batch update",
    "batch_delete": "deleted by a batch delete",
}


def _filters(params: dict[str, str]) -> dict[str, Any] | None:
    """The filter builder's fields as the API's filter (ANDed); None when empty."""
    parts: list[dict[str, Any]] = [
        {name: {"in": [params[name]]}} for name in SCOPE if params.get(name)
    ]
    if params.get("category"):
        parts.append({"categories": {"in": [params["category"]]}})
    if params.get("metadata_key"):
        value: Any = params.get("metadata_value", "")
        with contextlib.suppress(ValueError):  # 3, true, "x" as JSON; anything else as text
            value = json.loads(value)
        parts.append({"metadata": {params["metadata_key"]: value}})
    if params.get("since"):
        parts.append({"created_at": {"gte": params["since"]}})
    if params.get("until"):
        parts.append({"created_at": {"lte": params["until"]}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"AND": parts}


@router.get("/memories")
@page
async def memories(request: Request, seen: Viewer) -> Response:
    params = {k: v.strip() for k, v in request.query_params.items() if v.strip()}
    size = int(params["size"]) if params.get("size", "").isdigit() else 50
    size = size if size in PAGE_SIZES else 50
    where = _filters(params)
    api = Api(request, seen)
    query = params.get("q", "")
    kept = {k: v for k, v in params.items() if k in (*FILTER_FIELDS, "q", "size")}
    if query:
        body: dict[str, Any] = {"query": query, "top_k": size, "explain": True}
        if params.get("recipe") in RECIPES:
            body["recipe"] = params["recipe"]
        if where:
            body["filters"] = where
        found = await api.post("/v3/memories/search/", body)
        results = found["results"]
        used = (results[0].get("explain") or {}).get("recipe") if results else None
        return render(request, seen, "memories.html", params=params, results=results,
                      recipes=RECIPES, recipe=used or body.get("recipe"), searching=True,
                      filtered=where is not None, total=len(results), next_url=None,
                      first_url=None, size=size)  # fmt: skip
    body = {"page_size": size, "after": params.get("after", "")}
    if where:
        body["filters"] = where
    found = await api.post("/v3/memories/", body)
    cursor = found.get("next_cursor")
    next_url = f"/dashboard/memories?{urlencode({**kept, 'after': cursor})}" if cursor else None
    first_url = f"/dashboard/memories?{urlencode(kept)}" if params.get("after") else None
    return render(request, seen, "memories.html", params=params, results=found["results"],
                  recipes=RECIPES, recipe=None, searching=False, filtered=where is not None,
                  total=found["count"], next_url=next_url, first_url=first_url,
                  size=size)  # fmt: skip


@router.post("/memories/delete")
@page
async def delete_many(request: Request, seen: Viewer) -> Response:
    form = await request.form()
    ids = [str(i) for i in form.getlist("ids")]
    target = _return_to(str(form.get("return_to", "")))
    if not ids:
        return back(target, "Nothing was selected")
    await Api(request, seen).call(
        "DELETE", "/v1/batch/", json={"memories": [{"memory_id": i} for i in ids]}
    )
    return back(target, f"Deleted {len(ids)} memories")


def _return_to(path: str) -> str:
    """Where a bulk delete returns: the memories page it came from (a dashboard path)."""
    kept = path.startswith("/dashboard/memories") and "//" not in path and local_path(path)
    return path if kept else "/dashboard/memories"


@router.get("/memories/{memory_id}")
@page
async def memory(request: Request, seen: Viewer, memory_id: str) -> Response:
    api = Api(request, seen)
    item = await api.get(f"/v1/memories/{seg(memory_id)}/")
    history = await api.get(f"/v1/memories/{seg(memory_id)}/history/")
    versions = [
        {**h, "diff": _diff(h.get("old_memory"), h.get("new_memory")),
         "why": CAUSES.get(h.get("cause") or "", "")}
        for h in history
    ]  # fmt: skip
    return render(request, seen, "memory.html", item=item, history=list(reversed(versions)))


def _diff(old: str | None, new: str | None) -> list[tuple[str, str]]:
    """Word-level changes from `old` to `new`: ("same" | "gone" | "new", words)."""
    a, b = (old or "").split(), (new or "").split()
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if op == "equal":
            out.append(("same", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("gone", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("new", " ".join(b[j1:j2])))
    return out


@router.post("/memories/{memory_id}/edit")
@page
async def edit(request: Request, seen: Viewer, memory_id: str) -> Response:
    form = await request.form()
    body: dict[str, Any] = {"text": str(form.get("text", ""))}
    raw = str(form.get("metadata", "")).strip()
    if raw:
        try:
            body["metadata"] = json.loads(raw)
        except ValueError:
            raise ApiError(400, "validation_error", "metadata must be a JSON object") from None
    categories = [c.strip() for c in str(form.get("categories", "")).split(",") if c.strip()]
    body["categories"] = categories
    await Api(request, seen).put(f"/v1/memories/{seg(memory_id)}/", body)
    return back(f"/dashboard/memories/{memory_id}", "Saved: a new version is in the history")


@router.post("/memories/{memory_id}/delete")
@page
async def delete(request: Request, seen: Viewer, memory_id: str) -> Response:
    await Api(request, seen).delete(f"/v1/memories/{seg(memory_id)}/")
    return back("/dashboard/memories", f"Deleted memory {memory_id}")


@router.post("/memories/{memory_id}/feedback")
@page
async def feedback(request: Request, seen: Viewer, memory_id: str) -> Response:
    form = await request.form()
    value = str(form.get("feedback", "")) or None
    body = {"memory_id": memory_id, "feedback": value,
            "feedback_reason": str(form.get("reason", "")) or None}  # fmt: skip
    await Api(request, seen).post("/v1/feedback/", body)
    return back(f"/dashboard/memories/{memory_id}", "Feedback recorded")
