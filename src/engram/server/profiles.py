"""Memory profiles (the Platform's `/v2/profiles/` and `/v2/entities/user/{id}/profile/`).

A user's profile is their memories exported through the project's profile schema (or
`DEFAULT_SCHEMA`): the LLM fills it when one is configured, else the offline field mapping does
(`AsyncMemory.export`). Generation runs as a queued PROFILE job: `POST /v2/profiles/jobs/`
(`operation` "trigger" for one user, "sample" for the users with the most memories; an
`Idempotency-Key` header makes a retried create return the first job), and reading a profile
that is missing or older than the user's newest memory queues one. Profiles are on by default
(there is nothing to configure offline); `POST /v2/profiles/settings/` turns them off or sets
the schema and instructions.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request

from engram.core.jsonschema import parse_schema
from engram.core.timeutil import utc_now_iso
from engram.errors import EngramError, NotFoundError, StoreError, ValidationError
from engram.memory import AsyncMemory
from engram.pipeline.requests import flag
from engram.server import jobs
from engram.server.bodies import ProfileJob, ProfileSettings, documented, read
from engram.server.control import Caller, Conn, rows, transaction
from engram.server.platform import pick
from engram.server.state import Reader, State, Writer, memory_for, state_of

router = APIRouter()

JOBS = "/v2/profiles/jobs/"
SAMPLE_DEFAULT, SAMPLE_MAX = 3, 10
_TEXT = {"type": "string"}
_LIST = {"type": "array", "items": {"type": "string"}}
DEFAULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": _TEXT, "location": _TEXT, "origin": _TEXT, "age": {"type": "integer"},
        "employer": _TEXT, "job": _TEXT, "diet": _TEXT, "allergies": _LIST, "likes": _LIST,
        "dislikes": _LIST, "summary": _TEXT,
    },
}  # fmt: skip


# -- settings -----------------------------------------------------------------------------------


def read_settings(c: Conn, project_id: str) -> dict[str, Any]:
    found = rows(c, "SELECT * FROM profile_settings WHERE project_id = ?", (project_id,))
    row: dict[str, Any] = found[0] if found else {"enabled": 1, "schema": None,
                                                  "custom_instructions": None}  # fmt: skip
    return {
        "enabled": bool(row["enabled"]),
        "capabilities": {"entity_types": ["user"], "operations": ["trigger", "sample"]},
        "entities": {"user": {"schema": json.loads(row["schema"] or "null"),
                              "custom_instructions": row["custom_instructions"]}},
    }  # fmt: skip


def write_settings(c: Conn, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    current = read_settings(c, project_id)
    user = current["entities"]["user"]
    unsupported = set(body) - {"enabled", "entities"}
    entities = body.get("entities") or {}
    if not isinstance(entities, dict):
        raise ValidationError("entities must be an object")
    unsupported |= {f"entities.{k}" for k in entities if k != "user"}
    changes = entities.get("user") or {}
    if not isinstance(changes, dict):
        raise ValidationError("entities.user must be an object")
    unsupported |= {f"entities.user.{k}" for k in changes
                    if k not in ("schema", "custom_instructions")}  # fmt: skip
    if unsupported:
        raise ValidationError(f"Unsupported settings: {', '.join(sorted(unsupported))}")
    if "enabled" in body:
        flag(body["enabled"], "enabled")
    if changes.get("schema") is not None:
        changes["schema"] = parse_schema(changes["schema"])
    instructions = changes.get("custom_instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise ValidationError("custom_instructions must be a string")
    user.update(changes)
    enabled = body.get("enabled", current["enabled"])
    c.execute(
        "INSERT INTO profile_settings VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id) DO UPDATE "
        "SET enabled = excluded.enabled, schema = excluded.schema, "
        "custom_instructions = excluded.custom_instructions, updated_at = excluded.updated_at",
        (project_id, int(enabled), None if user["schema"] is None else json.dumps(user["schema"]),
         user["custom_instructions"], utc_now_iso()),
    )  # fmt: skip
    return read_settings(c, project_id)


@router.get("/v2/profiles/settings/")
async def get_settings(request: Request, who: Reader) -> Any:
    return await state_of(request).db.run(read_settings, who.project_id)


@router.post("/v2/profiles/settings/", openapi_extra=documented(ProfileSettings))
async def update_settings(request: Request, who: Writer) -> Any:
    body = await read(request, ProfileSettings)
    return await state_of(request).db.run(
        lambda c: transaction(c, lambda: write_settings(c, who.project_id, body))
    )


# -- jobs ---------------------------------------------------------------------------------------


def _queue(
    c: Conn, project_id: str, operation: str, users: list[str], key: str | None
) -> tuple[dict[str, Any], bool]:
    """The job for this idempotency key if there is one (replayed), else a new PROFILE job."""
    if key:
        found = jobs.newest_with_key(c, project_id, "PROFILE", key)
        if found is not None:
            return found, True
    payload = {"operation": operation, "entity_ids": users, "key": key}
    job_id = jobs.enqueue(c, project_id, "PROFILE", payload)
    job = jobs.get_job(c, project_id, job_id)
    if job is None:  # written just above, in this transaction
        raise StoreError(f"the profile job {job_id} was not stored")
    return job, False


def _queued_for(c: Conn, project_id: str, user: str) -> bool:
    names = "jsonb_array_elements_text(payload::jsonb -> 'entity_ids')" if c.postgres \
        else "json_each(payload, '$.entity_ids')"  # fmt: skip
    found = c.execute(
        "SELECT 1 FROM jobs WHERE project_id = ? AND kind = 'PROFILE' "
        f"AND status IN ('PENDING', 'RUNNING') AND EXISTS (SELECT 1 FROM {names} WHERE value = ?)",
        (project_id, user),
    ).fetchone()
    return found is not None


async def _users(memory: AsyncMemory) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in await memory.entities() if e["type"] == "user"}


@router.post(JOBS, openapi_extra=documented(ProfileJob))
async def create_job(request: Request, who: Writer) -> Any:
    body = pick(await read(request, ProfileJob), {"operation", "entity_type", "entity_id", "limit"},
                "profile job")  # fmt: skip
    operation = body.get("operation")
    if operation not in ("trigger", "sample"):
        raise ValidationError("operation must be 'trigger' or 'sample'")
    if body.get("entity_type", "user") != "user":
        raise ValidationError("profiles are kept for entity_type 'user' only")
    state = state_of(request)
    if not (await state.db.run(read_settings, who.project_id))["enabled"]:
        raise ValidationError("profiles are not enabled for this project")
    users = await _users(await memory_for(request, who))
    if operation == "trigger":
        user = body.get("entity_id")
        if not isinstance(user, str) or not user:
            raise ValidationError("entity_id is required for 'trigger'")
        if user not in users:
            raise NotFoundError(f"user {user!r} has no memories in this project")
        chosen = [user]
    else:
        limit = body.get("limit") or SAMPLE_DEFAULT
        if not isinstance(limit, int) or not 1 <= limit <= SAMPLE_MAX:
            raise ValidationError(f"limit must be an integer in 1..{SAMPLE_MAX}")
        ranked = sorted(users.values(), key=lambda e: (-e["total_memories"], e["name"]))
        chosen = [e["name"] for e in ranked[:limit]]
    key = request.headers.get("idempotency-key")
    job, replayed = await state.db.run(
        lambda c: transaction(c, lambda: _queue(c, who.project_id, operation, chosen, key))
    )
    if state.workers is not None and not replayed:
        state.workers.notify()
    payload = json.loads(job["payload"])
    out = {"job_id": job["id"], "status": job["status"].lower(),
           "status_url": f"{JOBS}{job['id']}/", "operation": operation, "entity_type": "user",
           "replayed": replayed}  # fmt: skip
    if operation == "trigger":
        return {**out, "entity_count_reserved": len(payload["entity_ids"]), "event_id": job["id"]}
    return {**out, "sampled": len(payload["entity_ids"]), "entity_ids": payload["entity_ids"]}


@router.get(JOBS + "{job_id}/")
async def get_job(job_id: str, request: Request, who: Reader) -> Any:
    job = await state_of(request).db.run(jobs.get_job, who.project_id, job_id, "PROFILE")
    if job is None:
        raise NotFoundError(f"profile job {job_id} not found")
    payload = json.loads(job["payload"])
    counts = json.loads(job["results"]) if job["results"] else {}
    total = len(payload["entity_ids"])
    return {"job": {
        "id": job["id"], "operation": payload["operation"], "entity_type": "user",
        "status": job["status"].lower(), "total": total, "enumeration_complete": True,
        "completed": counts.get("completed", 0), "succeeded": counts.get("succeeded", 0),
        "failed": counts.get("failed", 0), "skipped": counts.get("skipped", 0),
        "entity_ids": payload["entity_ids"], "error": job["error"],
        "created_at": job["created_at"], "updated_at": job["updated_at"],
    }}  # fmt: skip


async def run_profile_job(state: State, project_id: str, payload: dict[str, Any]) -> Any:
    """What a PROFILE job does: generate each user's profile; one user's failure is recorded on
    that profile and counted, and does not stop the others."""
    settings = (await state.db.run(read_settings, project_id))["entities"]["user"]
    memory = await state.projects.get(project_id)
    users = await _users(memory)
    counts = {"completed": 0, "succeeded": 0, "failed": 0, "skipped": 0}
    for user in payload["entity_ids"]:
        counts["completed"] += 1
        if user not in users:
            counts["skipped"] += 1
            continue
        try:
            data = await memory.export(
                settings["schema"] or DEFAULT_SCHEMA,
                user_id=user,
                instructions=settings["custom_instructions"],
            )
        except EngramError as exc:
            counts["failed"] += 1
            error = f"{exc.code}: {exc.message}"
            await state.db.run(_store, project_id, user, None, error, users[user]["updated_at"])
        else:
            counts["succeeded"] += 1
            await state.db.run(_store, project_id, user, data, None, users[user]["updated_at"])
    return counts


def _store(
    c: Conn,
    project_id: str,
    user: str,
    profile: dict[str, Any] | None,
    error: str | None,
    source: str,
) -> None:
    now = utc_now_iso()
    if profile is None:  # a failure keeps the last good profile, marked failed
        c.execute(
            "INSERT INTO profiles (project_id, entity_type, entity_id, status, error, "
            "source_updated_at, updated_at) VALUES (?, 'user', ?, 'failed', ?, ?, ?) "
            "ON CONFLICT (project_id, entity_type, entity_id) DO UPDATE SET status = 'failed', "
            "error = excluded.error, source_updated_at = excluded.source_updated_at, "
            "updated_at = excluded.updated_at",
            (project_id, user, error, source, now),
        )
        return
    c.execute(
        "INSERT INTO profiles VALUES (?, 'user', ?, ?, 'succeeded', NULL, 1, ?, ?) "
        "ON CONFLICT (project_id, entity_type, entity_id) DO UPDATE SET "
        "profile = excluded.profile, status = 'succeeded', error = NULL, "
        "generation_count = profiles.generation_count + 1, "
        "source_updated_at = excluded.source_updated_at, updated_at = excluded.updated_at",
        (project_id, user, json.dumps(profile), source, now),
    )


# -- reading a profile --------------------------------------------------------------------------


@router.get("/v2/entities/user/{entity_id}/profile/")
async def get_profile(entity_id: str, request: Request, who: Reader) -> Any:
    state = state_of(request)
    found = await state.db.run(
        rows, "SELECT * FROM profiles WHERE project_id = ? AND entity_type = 'user' "
        "AND entity_id = ?", (who.project_id, entity_id),
    )  # fmt: skip
    row = found[0] if found else None
    user = (await _users(await memory_for(request, who))).get(entity_id)
    if user is None and row is None:
        raise NotFoundError(f"user {entity_id!r} has no memories in this project")
    out = {"entity_type": "user", "entity_id": entity_id,
           "profile": json.loads(row["profile"]) if row and row["profile"] else {},
           "updated_at": row["updated_at"] if row else None,
           "generation_count": row["generation_count"] if row else 0}  # fmt: skip
    if not (await state.db.run(read_settings, who.project_id))["enabled"]:
        return {**out, "status": "not_enabled"}
    if user is not None and (row is None or (row["source_updated_at"] or "") < user["updated_at"]):
        await _refresh(state, who, entity_id, user["updated_at"])
    if row is None:
        return {**out, "status": "pending"}
    return {**out, "status": row["status"], "error": row["error"]}


async def _refresh(state: State, who: Caller, user: str, newest: str) -> None:
    """Queue a generation for `user` if the profile is missing or older than `newest` (checked
    again here: a job may have finished since the caller read it) and none is queued."""

    def body(c: Conn) -> None:
        # The queue first: a job stores its profile before it finishes, so once no job is
        # queued, the profile read next is the newest one (whatever finishes meanwhile).
        if _queued_for(c, who.project_id, user):
            return
        found = c.execute(
            "SELECT source_updated_at FROM profiles WHERE project_id = ? AND entity_type = 'user' "
            "AND entity_id = ?",
            (who.project_id, user),
        ).fetchone()
        if found is None or (found[0] or "") < newest:
            _queue(c, who.project_id, "trigger", [user], None)

    await state.db.run(lambda c: transaction(c, lambda: body(c)))
    if state.workers is not None:
        state.workers.notify()
