"""The Entities, Events and API keys pages."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from engram.dashboard.api import Api
from engram.dashboard.pages import back, page, render, router, seg
from engram.dashboard.session import Viewer

KINDS = ("user", "agent", "app", "run")


@router.get("/entities")
@page
async def entities(request: Request, seen: Viewer) -> Response:
    found = (await Api(request, seen).get("/v1/entities/"))["results"]
    kind = request.query_params.get("type", "")
    shown = [e for e in found if not kind or e["type"] == kind]
    return render(request, seen, "entities.html", entities=shown, kind=kind, kinds=KINDS,
                  total=len(found))  # fmt: skip


@router.post("/entities/delete")
@page
async def delete_entity(request: Request, seen: Viewer) -> Response:
    form = await request.form()
    kind, name = str(form.get("type", "")), str(form.get("name", ""))
    answer = await Api(request, seen).delete(f"/v2/entities/{seg(kind)}/{seg(name)}/")
    count = answer.get("deleted_count", 0)
    return back("/dashboard/entities", f"Deleted {kind} {name} and its {count} memories")


@router.get("/events")
@page
async def events(request: Request, seen: Viewer) -> Response:
    number = request.query_params.get("page", "1")
    current = int(number) if number.isdigit() and int(number) > 0 else 1
    found = await Api(request, seen).get("/v1/events/", page=current, page_size=50)
    waiting = any(e["status"] in ("PENDING", "RUNNING") for e in found["results"])
    pages = max(1, -(-found["count"] // 50))
    return render(request, seen, "events.html", events=found["results"], count=found["count"],
                  current=current, pages=pages, waiting=waiting)  # fmt: skip


@router.get("/events/{event_id}")
@page
async def event(request: Request, seen: Viewer, event_id: str) -> Response:
    found = await Api(request, seen).get(f"/v1/event/{seg(event_id)}/")
    return render(request, seen, "event.html", event=found)


@router.get("/keys")
@page
async def keys(request: Request, seen: Viewer) -> Response:
    api = Api(request, seen)
    pong, base = await api.ping(), await api.project_path()
    members = (await api.get(f"{base}/members/"))["members"]
    found = (await api.get(f"{base}/api-keys/"))["results"] if seen.can_write else []
    return render(request, seen, "keys.html", keys=found, members=members, project=pong,
                  created=None)  # fmt: skip


@router.post("/keys")
@page
async def create_key(request: Request, seen: Viewer) -> Response:
    form = await request.form()
    api = Api(request, seen)
    pong, base = await api.ping(), await api.project_path()
    body = {k: str(form[k]).strip() for k in ("email", "name") if str(form.get(k, "")).strip()}
    created = await api.post(f"{base}/api-keys/", body)
    members = (await api.get(f"{base}/members/"))["members"]
    found = (await api.get(f"{base}/api-keys/"))["results"]
    # Shown once, on this answer only: never stored in a page that can be reloaded.
    answer = render(request, seen, "keys.html", keys=found, members=members, project=pong,
                    created=created)  # fmt: skip
    answer.headers["Cache-Control"] = "no-store"
    return answer


@router.post("/keys/{key_id}/revoke")
@page
async def revoke_key(request: Request, seen: Viewer, key_id: str) -> Response:
    api = Api(request, seen)
    await api.delete(f"{await api.project_path()}/api-keys/{seg(key_id)}/")
    return back("/dashboard/keys", f"Revoked key {key_id}")


async def _member_change(request: Request, seen: Viewer, method: str) -> dict[str, str]:
    """POST adds a member, PUT changes a role, DELETE removes one: the API's members route."""
    form = await request.form()
    api = Api(request, seen)
    body = {"email": str(form.get("email", "")).strip(), "role": str(form.get("role", "READER"))}
    path = f"{await api.project_path()}/members/"
    if method == "DELETE":
        await api.delete(path, email=body["email"])
    else:
        await api.call(method, path, json=body)
    return body


@router.post("/members")
@page
async def add_member(request: Request, seen: Viewer) -> Response:
    body = await _member_change(request, seen, "POST")
    return back("/dashboard/keys", f"{body['email']} is a {body['role']} of the project")


@router.post("/members/role")
@page
async def change_role(request: Request, seen: Viewer) -> Response:
    body = await _member_change(request, seen, "PUT")
    return back("/dashboard/keys", f"{body['email']} is now a {body['role']}")


@router.post("/members/remove")
@page
async def remove_member(request: Request, seen: Viewer) -> Response:
    body = await _member_change(request, seen, "DELETE")
    note = f"Removed {body['email']}; their keys of this project are revoked"
    return back("/dashboard/keys", note)
