"""What every pipeline step works with: the store, the embedder and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from engram.core.timeutil import format_timestamp
from engram.providers.embedders.base import Embedder
from engram.store.base import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Context:
    store: Store
    embedder: Embedder
    clock: Callable[[], datetime] = utc_now

    def now(self) -> str:
        return format_timestamp(self.clock())

    def today(self) -> str:
        return self.now()[:10]
