"""The project pages: Webhooks (create with the signing secret shown once, pause, delete, the
delivery log, redeliver), Settings (custom instructions and categories) and Import / Export
(the whole project as JSON Lines, both ways; schema-driven exports)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from engram.dashboard.api import Api, ApiError
from engram.dashboard.pages import back, page, render, router, seg
from engram.dashboard.session import Viewer

EVENT_TYPES = ("memory_add", "memory_update", "memory_delete")


async def _hooks_path(api: Api) -> str:
    """The API path of the project's webhooks."""
    return f"/api/v1/webhooks/projects/{seg((await api.ping())['project_id'])}/"


@router.get("/webhooks")
@page
async def webhooks(request: Request, seen: Viewer) -> Response:
    return await _webhooks_page(request, seen, None)


async def _webhooks_page(request: Request, seen: Viewer, created: Any) -> Response:
    api = Api(request, seen)
    hooks = await api.get(await _hooks_path(api))
    answer = render(request, seen, "webhooks.html", hooks=hooks, created=created,
                    event_types=EVENT_TYPES)  # fmt: skip
    answer.headers["Cache-Control"] = "no-store"
    return answer


@router.post("/webhooks")
@page
async def create_webhook(request: Request, seen: Viewer) -> Response:
    form = await request.form()
    api = Api(request, seen)
    body = {"name": str(form.get("name", "")).strip(), "url": str(form.get("url", "")).strip(),
            "event_types": [str(e) for e in form.getlist("event_types")]}  # fmt: skip
    created = await api.post(await _hooks_path(api), body)
    return await _webhooks_page(request, seen, created)


@router.post("/webhooks/{webhook_id}/toggle")
@page
async def toggle_webhook(request: Request, seen: Viewer, webhook_id: str) -> Response:
    form = await request.form()
    active = form.get("active") == "true"
    await Api(request, seen).put(f"/api/v1/webhooks/{seg(webhook_id)}/", {"is_active": active})
    return back("/dashboard/webhooks", f"Webhook {webhook_id} {'resumed' if active else 'paused'}")


@router.post("/webhooks/{webhook_id}/delete")
@page
async def delete_webhook(request: Request, seen: Viewer, webhook_id: str) -> Response:
    await Api(request, seen).delete(f"/api/v1/webhooks/{seg(webhook_id)}/")
    return back("/dashboard/webhooks", f"Deleted webhook {webhook_id}")


@router.get("/webhooks/{webhook_id}")
@page
async def deliveries(request: Request, seen: Viewer, webhook_id: str) -> Response:
    api = Api(request, seen)
    hooks = await api.get(await _hooks_path(api))
    hook = next((h for h in hooks if str(h["id"]) == webhook_id), None)
    if hook is None:
        raise ApiError(404, "not_found", f"webhook {webhook_id} not found")
    log = (await api.get(f"/api/v1/webhooks/{seg(webhook_id)}/deliveries/"))["results"]
    return render(request, seen, "deliveries.html", hook=hook, deliveries=list(reversed(log)))


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
@page
async def redeliver(request: Request, seen: Viewer, webhook_id: str, delivery_id: str) -> Response:
    path = f"/api/v1/webhooks/{seg(webhook_id)}/deliveries/{seg(delivery_id)}/redeliver/"
    await Api(request, seen).post(path, {})
    return back(f"/dashboard/webhooks/{webhook_id}", f"Delivery {delivery_id} queued again")


# -- settings ---------------------------------------------------------------------------------


@router.get("/settings")
@page
async def settings(request: Request, seen: Viewer) -> Response:
    api = Api(request, seen)
    project = await api.get(f"{await api.project_path()}/")
    categories = project.get("custom_categories") or []
    lines = "\n".join(f"{k}: {v}" for item in categories for k, v in item.items())
    return render(request, seen, "settings.html", project=project, categories=lines)


@router.post("/settings")
@page
async def save_settings(request: Request, seen: Viewer) -> Response:
    form = await request.form()
    categories = []
    for number, line in enumerate(str(form.get("custom_categories", "")).splitlines(), 1):
        if not line.strip():
            continue
        name, colon, description = line.partition(":")
        if not colon or not name.strip():
            raise ApiError(
                400,
                "validation_error",
                f"custom categories, line {number}: write it as 'name: description'",
            )
        categories.append({name.strip(): description.strip()})
    body = {
        "custom_instructions": str(form.get("custom_instructions", "")).strip() or None,
        "agent_custom_instructions":
            str(form.get("agent_custom_instructions", "")).strip() or None,
        "custom_categories": categories or None,
    }  # fmt: skip
    api = Api(request, seen)
    await api.call("PATCH", f"{await api.project_path()}/", json=body)
    return back("/dashboard/settings", "Settings saved")


# -- import, export ---------------------------------------------------------------------------


@router.get("/transfer")
@page
async def transfer(request: Request, seen: Viewer) -> Response:
    return render(request, seen, "transfer.html", result=None, export=None)


@router.get("/transfer/export.jsonl")
@page
async def export_jsonl(request: Request, seen: Viewer) -> Response:
    """The project as JSON Lines, streamed from the API as it is read."""
    api = Api(request, seen)
    upstream = await api.client.send(
        api.client.build_request("GET", "/v1/exports/jsonl/", headers=api.headers), stream=True
    )
    if upstream.status_code != 200:
        body = json.loads(await upstream.aread())
        await upstream.aclose()
        raise ApiError(upstream.status_code, body.get("code", "error"), body.get("detail"))

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    disposition = upstream.headers.get("content-disposition", "attachment")
    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": disposition})  # fmt: skip


@router.post("/transfer/import")
@page
async def import_jsonl(request: Request, seen: Viewer) -> Response:
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise ApiError(400, "validation_error", "choose a JSON Lines file to import")
    content = await upload.read()
    result = await Api(request, seen).call("POST", "/v1/imports/jsonl/", content=content)
    return render(request, seen, "transfer.html", result=result, export=None)


@router.post("/transfer/schema-export")
@page
async def schema_export(request: Request, seen: Viewer) -> Response:
    form = await request.form()
    try:
        schema = json.loads(str(form.get("schema", "")))
    except ValueError:
        raise ApiError(400, "validation_error", "the schema must be JSON") from None
    body: dict[str, Any] = {"schema": schema}
    if str(form.get("user_id", "")).strip():
        body["user_id"] = str(form["user_id"]).strip()
    api = Api(request, seen)
    queued = await api.post("/v1/exports/", body)
    export = await api.call("POST", "/v1/exports/get/", json={"memory_export_id": queued["id"]})
    return render(request, seen, "transfer.html", result=None,
                  export={"id": queued["id"], "answer": export})  # fmt: skip


@router.get("/transfer/exports/{export_id}")
@page
async def schema_export_result(request: Request, seen: Viewer, export_id: str) -> Response:
    answer = await Api(request, seen).post("/v1/exports/get/", {"memory_export_id": export_id})
    return render(request, seen, "transfer.html", result=None,
                  export={"id": export_id, "answer": answer})  # fmt: skip
