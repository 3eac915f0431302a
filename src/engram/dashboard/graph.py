"""The Graph page: a user's (agent's, run's) entities and relations, drawn (Cytoscape.js, shipped
in the package) and listed; ended relations with their validity window; each relation links to
the memory that stated it; the profile facts beside. A large graph is capped, saying so, with a
link to show more."""

from __future__ import annotations

import json
from collections import Counter

from fastapi import Request
from fastapi.responses import Response

from engram.dashboard.api import Api
from engram.dashboard.pages import page, render, router, seg
from engram.dashboard.session import Viewer

STEP = 200  # entities drawn at first, and added by each "show more"


@router.get("/graph")
@page
async def graph(request: Request, seen: Viewer) -> Response:
    kind = request.query_params.get("type", "user")
    name = request.query_params.get("id", "").strip()
    wanted = request.query_params.get("limit", "")
    limit = int(wanted) if wanted.isdigit() and int(wanted) > 0 else STEP
    api = Api(request, seen)
    owners = [e for e in (await api.get("/v1/entities/"))["results"]
              if e["type"] in ("user", "agent", "run")]  # fmt: skip
    if not name:
        return render(request, seen, "graph.html", owners=owners, kind=kind, name="", data=None)
    found = await api.get(f"/v1/entities/{seg(kind)}/{seg(name)}/graph/")
    relations = found["relations"]
    degree = Counter(r["source"] for r in relations) + Counter(r["target"] for r in relations)
    ranked = [n for n, _ in degree.most_common()]
    shown = set(ranked[:limit])
    drawn = [r for r in relations if r["source"] in shown and r["target"] in shown]
    data = {
        "nodes": [{"data": {"id": n, "label": n, "degree": degree[n]}} for n in ranked[:limit]],
        "edges": [
            {"data": {"id": f"e{i}", "source": r["source"], "target": r["target"],
                      "label": r["relationship"], "memory": r["memory_id"],
                      "ended": r["invalid_at"] is not None}}
            for i, r in enumerate(drawn)
        ],
    }  # fmt: skip
    more = f"?type={kind}&id={name}&limit={limit + STEP}" if len(ranked) > limit else None
    return render(request, seen, "graph.html", owners=owners, kind=kind, name=name,
                  data=json.dumps(data), relations=relations, profile=found["profile"],
                  entities=len(ranked), shown=min(limit, len(ranked)), more=more,
                  drawn=len(drawn))  # fmt: skip
