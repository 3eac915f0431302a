"""The dashboard's routes (every page module registers on `router`) and its static files."""

from __future__ import annotations

from starlette.staticfiles import StaticFiles

from engram.dashboard import admin, graph, memories, project  # noqa: F401  (they register pages)
from engram.dashboard.pages import HERE, router

__all__ = ["router", "static"]


def static() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")
