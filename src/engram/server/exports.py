"""Exports: schema-driven memory exports (queued jobs), summaries, and the lossless JSON Lines
export and import of a whole project.

`POST /v1/exports/` checks the schema and filters, queues an EXPORT job and answers its id; the
job fills the schema (`AsyncMemory.export`: the LLM, or the offline field mapping) and keeps the
result. `POST /v1/exports/get/` returns that result, by `memory_export_id` or, like the Platform,
by the same filters (the newest export made with them). An export still running answers 202
with its status; one that failed answers 400 with the reason.

`GET /v1/exports/jsonl/` streams the project: a `{"type": "project", ...settings}` line, then
`engram.transfer`'s memory and history lines. `POST /v1/imports/jsonl/` reads such a stream
into the caller's project in one transaction (an id that exists already is a 409; nothing is
written), and applies the settings line.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from engram.core.jsonschema import parse_schema
from engram.core.scope import resolve_filters
from engram.errors import NotFoundError, ValidationError
from engram.memory import AsyncMemory
from engram.server import control, jobs
from engram.server.bodies import ExportBody, ExportGetBody, SummaryBody, documented, read
from engram.server.control import Caller, transaction
from engram.server.platform import SCOPE, filters_param, pick, with_scope
from engram.server.state import Reader, State, Writer, memory_for, state_of
from engram.transfer import export_lines, import_lines

router = APIRouter()

EXPORT_KEYS = {*SCOPE, "schema", "filters", "export_instructions"}
GET_KEYS = {*SCOPE, "filters", "memory_export_id"}
# A project's settings that travel with its memories (allow_private_urls stays: only an
# organization OWNER sets it, and an import is a project owner's).
SETTINGS = tuple(f for f in control.PROJECT_FIELDS
                 if f not in ("name", "description", "allow_private_urls"))  # fmt: skip


def _filters(body: dict[str, Any], memory: AsyncMemory) -> dict[str, Any]:
    """The export's filters (scope ids and `filters` merged), checked now (within the limits of
    the project's memory), in a canonical form. As for every read, the key's project is the
    scope: no id is needed."""
    filters = with_scope(filters_param(body.get("filters")), {k: body[k] for k in SCOPE
                                                                 if k in body})  # fmt: skip
    # A bad filter is the caller's error, now (not the queued job's).
    resolve_filters(filters, require_scope=False, limits=memory.config.limits)
    return filters


def _key(filters: dict[str, Any]) -> str:
    return json.dumps(filters, sort_keys=True, separators=(",", ":"))


@router.post("/v1/exports/", openapi_extra=documented(ExportBody))
async def create_export(request: Request, who: Reader) -> Any:
    body = pick(await read(request, ExportBody), EXPORT_KEYS, "export")
    if "schema" not in body:
        raise ValidationError("schema is required")
    filters = _filters(body, await memory_for(request, who))
    payload = {"schema": parse_schema(body["schema"]), "filters": filters,
               "instructions": body.get("export_instructions"), "key": _key(filters)}  # fmt: skip
    state = state_of(request)
    job_id = await state.db.run(
        lambda c: transaction(c, lambda: jobs.enqueue(c, who.project_id, "EXPORT", payload))
    )
    if state.workers is not None:
        state.workers.notify()
    return JSONResponse(
        {"message": "Memory export request received. The export will be ready in a few seconds.",
         "id": job_id, "status": "PENDING"},
        status_code=201,
    )  # fmt: skip


@router.post("/v1/exports/get/", openapi_extra=documented(ExportGetBody))
async def get_export(request: Request, who: Reader) -> Any:
    body = pick(await read(request, ExportGetBody), GET_KEYS, "export")
    state = state_of(request)
    if "memory_export_id" in body:
        export_id = str(body["memory_export_id"])
        job = await state.db.run(jobs.get_job, who.project_id, export_id, "EXPORT")
        if job is None:
            raise NotFoundError(f"export {export_id} not found")
    else:
        key = _key(_filters(body, await memory_for(request, who)))
        job = await state.db.run(jobs.newest_with_key, who.project_id, "EXPORT", key)
        if job is None:
            raise NotFoundError("no export was made with these filters")
    if job["status"] == "SUCCEEDED":
        return json.loads(job["results"])
    if job["status"] == "FAILED":
        raise ValidationError(f"export {job['id']} failed: {job['error']}")
    return JSONResponse(
        {"id": job["id"], "status": job["status"], "message": "the export is not ready yet"},
        status_code=202,
    )


async def run_export(state: State, project_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What an EXPORT job does."""
    memory = await state.projects.get(project_id)
    return await memory.export(
        payload["schema"], filters=payload["filters"], instructions=payload.get("instructions")
    )


@router.post("/v1/summary/", openapi_extra=documented(SummaryBody))
async def summary(request: Request, who: Reader) -> Any:
    body = pick(await read(request, SummaryBody), {*SCOPE, "filters"}, "summary")
    memory = await memory_for(request, who)
    return await memory.summary(filters=_filters(body, memory))


# -- the whole project as JSON Lines ------------------------------------------------------------


@router.get("/v1/exports/jsonl/")
async def export_project(request: Request, who: Reader) -> StreamingResponse:
    state = state_of(request)
    project = await state.db.run(control.get_project, who.org_id, who.project_id)
    memory = await memory_for(request, who)
    settings = {"type": "project", **{name: project[name] for name in SETTINGS}}

    async def lines() -> AsyncIterator[str]:
        yield json.dumps(settings, ensure_ascii=False) + "\n"
        async for line in export_lines(memory, None):
            yield line + "\n"

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{who.project_id}.jsonl"'},
    )


@router.post("/v1/imports/jsonl/")
async def import_project(request: Request, who: Writer) -> Any:
    try:
        lines = (await request.body()).decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValidationError("the import body must be UTF-8 JSON Lines") from None
    settings = _settings_line(lines[0]) if lines else None
    if settings is not None:
        control.check_changes(settings)  # before anything is written
        lines = lines[1:]
    memory = await memory_for(request, who)
    counts = await import_lines(memory, lines)
    if settings:
        await _apply(state_of(request), who, settings)
    return {"message": "Import completed.", **counts, "settings": sorted(settings or {})}


def _settings_line(line: str) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None  # import_lines reports it with its line number
    if not isinstance(data, dict) or data.get("type") != "project":
        return None
    data.pop("type")
    unknown = set(data) - set(SETTINGS)
    if unknown:
        raise ValidationError(f"line 1: unknown project settings {', '.join(sorted(unknown))}")
    return data


async def _apply(state: State, who: Caller, settings: dict[str, Any]) -> None:
    await state.db.run(
        lambda c: transaction(
            c, lambda: control.update_project(c, who.org_id, who.project_id, settings)
        )
    )
