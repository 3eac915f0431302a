"""Where memories live: the `Store` protocol every backend implements, and the embedded SQLite
backend (`SQLiteStore(path)`, the default)."""

from engram.store.base import Store
from engram.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore", "Store"]
