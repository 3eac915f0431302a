"""Platform routes around the memories: ping, entities, batch, feedback, events, projects,
members, API keys and webhooks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from engram.core.ids import clean_scope_id
from engram.errors import PermissionDeniedError, ValidationError
from engram.pipeline.requests import paging_of
from engram.server import control, jobs, webhooks
from engram.server.bodies import (
    BatchBody,
    FeedbackBody,
    KeyCreate,
    MemberBody,
    ProjectCreate,
    ProjectUpdate,
    WebhookCreate,
    WebhookUpdate,
    documented,
    read,
)
from engram.server.control import Caller, transaction
from engram.server.platform import pick
from engram.server.state import Reader, Writer, memory_for, private_urls_allowed, state_of

router = APIRouter()
# A webhook's id as the database keeps it (a 64-bit integer): anything else is a 422.
WebhookId = Annotated[int, Path(ge=1, lt=2**63)]


@router.get("/v1/ping/")
async def ping(who: Reader) -> dict[str, Any]:
    return {"status": "ok", "org_id": who.org_id, "project_id": who.project_id,
            "user_email": who.user_email, "role": who.role}  # fmt: skip


@router.get("/v1/entities/")
async def entities(
    request: Request,
    who: Reader,
    page: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
    page_size: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> dict[str, Any]:
    """Every user, agent, app and run with memories; a page of them with `page` / `page_size`
    (`count` is the total)."""
    memory = await memory_for(request, who)
    found = await memory.entities()
    if page is None and page_size is None:
        return {"results": found}
    size = page_size or 100
    offset = paging_of(page or 1, size, None).offset
    return {"count": len(found), "page": page or 1, "page_size": size,
            "results": found[offset : offset + size]}  # fmt: skip


@router.get("/v1/entities/{kind}/{name}/graph/")
async def entity_graph(
    kind: str, name: str, request: Request, who: Reader,
    include_ended: Annotated[bool, Query()] = True,
) -> dict[str, Any]:  # fmt: skip
    """An Engram extension: the entity's relations (ended ones with `invalid_at`, each with the
    memory that stated it) and its profile facts."""
    if kind not in ("user", "agent", "run"):
        raise ValidationError("a graph belongs to a user, agent or run")
    memory = await memory_for(request, who)
    scope: dict[str, Any] = {f"{kind}_id": clean_scope_id(f"{kind}_id", name)}
    relations = await memory.get_relations(**scope, include_ended=include_ended)
    profile = await memory.get_profile(**scope)
    return {"relations": relations, "profile": profile["results"]}


@router.delete("/v1/entities/{kind}/{name}/")  # the clients' deprecated deleteUser
@router.delete("/v2/entities/{kind}/{name}/")
async def delete_entity(kind: str, name: str, request: Request, who: Writer) -> dict[str, Any]:
    if kind not in ("user", "agent", "run", "app"):
        raise ValidationError("entity type must be user, agent, app or run")
    memory = await memory_for(request, who)
    # An entity with no memories left (deleting a user also took its runs' memories, as
    # `client.reset()` finds) is deleted already: that is a success, as on the Platform.
    # The name is a value, never filter syntax ("*" is the entity named "*", not everyone).
    where = {f"{kind}_id": {"in": [clean_scope_id(f"{kind}_id", name)]}}
    deleted = (await memory.delete_all(filters=where))["deleted_count"]
    return {"message": "Entity deleted successfully.", "deleted_count": deleted}


@router.put("/v1/batch/", openapi_extra=documented(BatchBody))
async def batch_update(request: Request, who: Writer) -> dict[str, Any]:
    items = _batch(await read(request, BatchBody))
    memory = await memory_for(request, who)
    result = await memory.batch_update(items)
    await state_of(request).notify(
        who.project_id,
        [{"id": i["memory_id"], "memory": i.get("text"), "event": "UPDATE"} for i in items],
    )
    return dict(result)


@router.delete("/v1/batch/", openapi_extra=documented(BatchBody))
async def batch_delete(request: Request, who: Writer) -> dict[str, Any]:
    items = _batch(await read(request, BatchBody))
    memory = await memory_for(request, who)
    result = await memory.batch_delete(items)
    await state_of(request).notify(
        who.project_id, [{"id": i["memory_id"], "event": "DELETE"} for i in items]
    )
    return dict(result)


def _batch(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = pick(body, {"memories"}, "batch").get("memories")
    if not isinstance(items, list):
        raise ValidationError("memories must be a list")
    return items


@router.post("/v1/feedback/", openapi_extra=documented(FeedbackBody))
async def feedback(request: Request, who: Writer) -> dict[str, Any]:
    body = pick(await read(request, FeedbackBody), {"memory_id", "feedback", "feedback_reason"},
                "feedback")  # fmt: skip
    if "memory_id" not in body:
        raise ValidationError("memory_id is required")
    memory = await memory_for(request, who)
    answer = await memory.feedback(
        body["memory_id"], body.get("feedback"), body.get("feedback_reason")
    )
    return dict(answer)


# -- events -------------------------------------------------------------------------------------


@router.get("/v1/event/{event_id}/")
async def event(event_id: str, request: Request, who: Reader) -> Any:
    return await state_of(request).db.run(jobs.get_event, who.project_id, event_id)


@router.get("/v1/events/")
async def events(
    request: Request,
    who: Reader,
    page: Annotated[int, Query(ge=1, lt=2**63)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Any:
    offset = paging_of(page, page_size, None).offset  # page x page_size within 64 bits
    found, total = await state_of(request).db.run(
        jobs.list_events, who.project_id, offset, page_size
    )
    return {"count": total, "results": found, "page": page, "page_size": page_size}


# -- projects, members, keys --------------------------------------------------------------------

PROJECT = "/api/v1/orgs/organizations/{org_id}/projects/"


def _own(who: Caller, org_id: str, project_id: str | None = None, *, read: bool = False) -> None:
    """The key reaches this organization, and this project: its own, or any of the
    organization's when it is an organization OWNER's key (a READER's: to `read` it)."""
    if org_id != who.org_id:
        raise PermissionDeniedError("this API key belongs to another organization")
    reaches = who.org_owner or (read and who.org_role is not None)
    if project_id is not None and project_id != who.project_id and not reaches:
        raise PermissionDeniedError(
            "this API key belongs to another project (an organization OWNER's key reaches "
            "every project of the organization)"
        )


def _org_owner(who: Caller, org_id: str) -> None:
    _own(who, org_id)
    if not who.org_owner:
        raise PermissionDeniedError(
            "this needs the key of an organization OWNER; this key is "
            + (f"an organization {who.org_role}'s" if who.org_role else "a project key")
        )


@router.get(PROJECT)
async def list_projects(org_id: str, request: Request, who: Reader) -> Any:
    """The organization's projects for a key of an organization member; the key's own project
    only, otherwise."""
    _own(who, org_id)
    if who.org_role is None:
        return [await state_of(request).db.run(control.get_project, org_id, who.project_id)]
    return await state_of(request).db.run(control.list_projects, org_id)


@router.post(PROJECT, openapi_extra=documented(ProjectCreate))
async def create_project(org_id: str, request: Request, who: Writer) -> Any:
    """A new project in the caller's organization (an organization OWNER's key); the caller's
    email becomes its owner, and the answer carries an API key for it (shown once)."""
    _org_owner(who, org_id)
    body = pick(await read(request, ProjectCreate), {"name", "description"}, "project")
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise ValidationError("name is required")

    def run(c: Any) -> dict[str, Any]:
        def body_() -> dict[str, Any]:
            project = control.create_project(c, org_id, body["name"], body.get("description"))
            control.add_member(c, project["id"], who.user_email, "OWNER")
            key = control.create_key(c, org_id, project["id"], who.user_email, "owner")
            return {**control.get_project(c, org_id, project["id"]), "api_key": key["key"]}

        return transaction(c, body_)

    return await state_of(request).db.run(run)


@router.get(PROJECT + "{project_id}/")
async def get_project(org_id: str, project_id: str, request: Request, who: Reader) -> Any:
    _own(who, org_id, project_id, read=True)
    project = await state_of(request).db.run(control.get_project, org_id, project_id)
    # `?fields=a,b` or `?fields=a&fields=b` (the JavaScript client's form)
    wanted = {f.strip() for value in request.query_params.getlist("fields")
              for f in value.split(",") if f.strip()}  # fmt: skip
    if wanted:
        project = {k: v for k, v in project.items() if k in wanted}
    return project


@router.patch(PROJECT + "{project_id}/", openapi_extra=documented(ProjectUpdate))
async def update_project(org_id: str, project_id: str, request: Request, who: Writer) -> Any:
    _own(who, org_id, project_id)
    changes = await read(request, ProjectUpdate)
    _own(who, changes.pop("org_id", org_id), changes.pop("project_id", project_id))
    if "allow_private_urls" in changes and not who.org_owner:
        raise PermissionDeniedError(
            "allow_private_urls lets a project's webhooks and documents reach the server's own "
            "network: only an organization OWNER's key may change it"
        )
    return await state_of(request).db.run(
        lambda c: transaction(c, lambda: control.update_project(c, org_id, project_id, changes))
    )


@router.delete(PROJECT + "{project_id}/")
async def delete_project(org_id: str, project_id: str, request: Request, who: Writer) -> Any:
    _own(who, org_id, project_id)
    state = state_of(request)
    await state.db.run(
        lambda c: transaction(c, lambda: control.delete_project(c, org_id, project_id))
    )
    await state.projects.drop(project_id)
    return {"message": "Project deleted successfully."}


@router.get(PROJECT + "{project_id}/members/")
async def members(org_id: str, project_id: str, request: Request, who: Reader) -> Any:
    _own(who, org_id, project_id, read=True)
    found = await state_of(request).db.run(control.list_members, project_id)
    return {"members": [{**m, "username": m["email"]} for m in found]}


MEMBERS = PROJECT + "{project_id}/members/"


@router.post(MEMBERS, operation_id="add_member", openapi_extra=documented(MemberBody))
@router.put(MEMBERS, operation_id="update_member", openapi_extra=documented(MemberBody))
@router.delete(MEMBERS, operation_id="remove_member",
               openapi_extra=documented(MemberBody, required=False))  # fmt: skip
async def change_member(org_id: str, project_id: str, request: Request, who: Writer) -> Any:
    """POST adds a member `{email, role}`, PUT changes the role, DELETE removes the member (and
    revokes the member's keys of this project; the email may come in the query)."""
    _own(who, org_id, project_id)
    query = {k: v for k, v in request.query_params.items() if k == "email"}  # DELETE sends it so
    body = pick({**query, **await read(request, MemberBody)}, {"email", "role"}, "member")
    email, role = str(body.get("email", "")), str(body.get("role", "READER"))
    method = request.method

    def run(c: Any) -> None:
        if method == "POST":
            control.add_member(c, project_id, email, role)
        elif method == "PUT":
            control.update_member(c, project_id, email, role)
        else:
            control.remove_member(c, project_id, email)

    await state_of(request).db.run(lambda c: transaction(c, lambda: run(c)))
    return {"message": f"Member {'removed' if method == 'DELETE' else 'saved'} successfully."}


@router.get(PROJECT + "{project_id}/api-keys/")
async def api_keys(org_id: str, project_id: str, request: Request,
                   who: Writer) -> Any:  # fmt: skip
    _own(who, org_id, project_id)
    return {"results": await state_of(request).db.run(control.list_keys, project_id)}


@router.post(PROJECT + "{project_id}/api-keys/", openapi_extra=documented(KeyCreate))
async def create_api_key(org_id: str, project_id: str, request: Request,
                         who: Writer) -> Any:  # fmt: skip
    """A key for a member of the project (with the member's role); the key is shown once."""
    _own(who, org_id, project_id)
    body = pick(await read(request, KeyCreate), {"email", "name", "organization"}, "API key")
    email = body.get("email", who.user_email)
    org_wide = body.get("organization", False)
    if org_wide and not who.org_owner:
        raise PermissionDeniedError("only an organization OWNER's key makes organization keys")
    return await state_of(request).db.run(
        lambda c: transaction(
            c,
            lambda: control.create_key(
                c, org_id, project_id, email, body.get("name"), org_wide=org_wide
            ),
        )
    )


@router.delete(PROJECT + "{project_id}/api-keys/{key_id}/")
async def revoke_api_key(org_id: str, project_id: str, key_id: str, request: Request,
                         who: Writer) -> Any:  # fmt: skip
    _own(who, org_id, project_id)
    await state_of(request).db.run(
        lambda c: transaction(c, lambda: control.revoke_key(c, project_id, key_id))
    )
    return {"message": "API key revoked."}


ORG_MEMBERS = "/api/v1/orgs/organizations/{org_id}/members/"


@router.get(ORG_MEMBERS)
async def org_members(org_id: str, request: Request, who: Reader) -> Any:
    """The organization's members and their roles (for a key of one of them)."""
    _own(who, org_id)
    if who.org_role is None:
        raise PermissionDeniedError("this needs the key of a member of the organization")
    return {"members": await state_of(request).db.run(control.list_org_members, org_id)}


@router.post(ORG_MEMBERS, operation_id="add_org_member", openapi_extra=documented(MemberBody))
@router.put(ORG_MEMBERS, operation_id="update_org_member", openapi_extra=documented(MemberBody))
@router.delete(ORG_MEMBERS, operation_id="remove_org_member",
               openapi_extra=documented(MemberBody, required=False))  # fmt: skip
async def change_org_member(org_id: str, request: Request, who: Writer) -> Any:
    """POST or PUT makes `{email, role}` a member of the organization with that role (OWNER:
    creates projects and manages all of them; READER: lists them), DELETE removes one (the
    email may come in the query). The last OWNER stays (409)."""
    _org_owner(who, org_id)
    query = {k: v for k, v in request.query_params.items() if k == "email"}
    body = pick({**query, **await read(request, MemberBody)}, {"email", "role"}, "member")
    email, role = str(body.get("email", "")), str(body.get("role", "READER"))
    removing = request.method == "DELETE"

    def change(c: Any) -> None:
        if removing:
            control.remove_org_member(c, org_id, email)
        else:
            control.set_org_member(c, org_id, email, role)

    await state_of(request).db.run(lambda c: transaction(c, lambda: change(c)))
    done = "removed" if removing else "saved"
    return {"message": f"Organization member {done} successfully."}


# -- webhooks -----------------------------------------------------------------------------------


@router.get("/api/v1/webhooks/projects/{project_id}/")
async def list_webhooks(project_id: str, request: Request, who: Writer) -> Any:
    _own(who, who.org_id, project_id)
    return await state_of(request).db.run(webhooks.list_for, project_id)


@router.post("/api/v1/webhooks/projects/{project_id}/", openapi_extra=documented(WebhookCreate))
async def create_webhook(project_id: str, request: Request, who: Writer) -> Any:
    _own(who, who.org_id, project_id)
    body = pick(await read(request, WebhookCreate), {"url", "name", "event_types"}, "webhook")
    allow_private = await private_urls_allowed(state_of(request), project_id)
    return await state_of(request).db.run(
        lambda c: transaction(
            c,
            lambda: webhooks.create(
                c,
                project_id,
                body.get("url"),
                body.get("name"),
                body.get("event_types"),
                allow_private=allow_private,
            ),
        )
    )


@router.put("/api/v1/webhooks/{webhook_id}/", openapi_extra=documented(WebhookUpdate))
async def update_webhook(webhook_id: WebhookId, request: Request, who: Writer) -> Any:
    changes = await read(request, WebhookUpdate)
    allow_private = await private_urls_allowed(state_of(request), who.project_id)
    return await state_of(request).db.run(
        lambda c: transaction(
            c,
            lambda: webhooks.update(
                c, who.project_id, webhook_id, changes, allow_private=allow_private
            ),
        )
    )


@router.delete("/api/v1/webhooks/{webhook_id}/")
async def delete_webhook(webhook_id: WebhookId, request: Request, who: Writer) -> Any:
    await state_of(request).db.run(
        lambda c: transaction(c, lambda: webhooks.delete(c, who.project_id, webhook_id))
    )
    return {"message": "Webhook deleted successfully"}


@router.post("/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver/")
async def redeliver(webhook_id: WebhookId, delivery_id: Annotated[int, Path(ge=1, lt=2**63)],
                    request: Request, who: Writer) -> Any:  # fmt: skip
    """An Engram extension: send a delivery's body again, as a new delivery."""
    state = state_of(request)
    answer = await state.db.run(lambda c: transaction(
        c, lambda: webhooks.redeliver(c, who.project_id, webhook_id, delivery_id)))  # fmt: skip
    if state.deliverer is not None:
        state.deliverer.notify()
    return answer


@router.get("/api/v1/webhooks/{webhook_id}/deliveries/")
async def webhook_deliveries(webhook_id: WebhookId, request: Request, who: Writer) -> Any:
    return {
        "results": await state_of(request).db.run(webhooks.deliveries, who.project_id, webhook_id)
    }
