"""Search-query vectors: remembered for recent queries, and embedded together when several
searches wait at once; and the names each scope's memories give its subject.

- A query asked again (an agent searching the same thing every turn, a dashboard refreshing) is
  not embedded again: the last `CACHE_SIZE` distinct query texts keep their vectors. An embedder
  maps a text to the same vector every time, so the cache changes no answer.
- Concurrent searches (a server under load) share one embedder call: queries that arrive while a
  call is running wait for the next one, which takes them all. A model runs a batch of texts in
  much less time than the same texts one by one (all-MiniLM-L6-v2 on 2 cores: 1.2 ms a text in
  a batch of 8, 3.4 ms alone), and a lone query goes straight through.
- The names a scope id's memories state ("Name is Alex", see `pipeline.subject`) are looked up
  at the first search of that id and kept (`ScopeNames`, the last `NAMES_CACHE_SIZE` ids, for
  `NAMES_TTL` seconds): a search then costs no store call for them. A name stated later is learnt
  from the results of the first search that finds its memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from engram.providers.embedders.base import Embedder

CACHE_SIZE = 1024  # query texts (a 384-dimension vector is 1.5 KiB)
NAMES_CACHE_SIZE = 4096  # scope ids whose stated names are kept
NAMES_TTL = 60.0  # seconds a scope id's names are kept before they are looked up again
BATCH_SIZE = 32  # queries per embedder call

Vector = npt.NDArray[np.float32]


class QueryVectors:
    def __init__(self, embedder: Embedder, cache_size: int = CACHE_SIZE) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size
        self._waiting: dict[str, asyncio.Future[Vector]] = {}
        self._task: asyncio.Future[None] | None = None  # the one draining `_waiting`
        self.names = ScopeNames()

    def remembered(self, text: str) -> Vector | None:
        """The query's vector if it is remembered (no embedder call), else None."""
        found = self._cache.get(text)
        if found is not None:
            self._cache.move_to_end(text)
        return found

    async def vector(self, text: str) -> tuple[Vector, bool]:
        """The query's vector, and whether the embedder was called for it (not remembered)."""
        found = self.remembered(text)
        if found is not None:
            return found, False
        future = self._waiting.get(text)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[text] = future
            if self._task is None or self._task.done():
                self._task = asyncio.ensure_future(self._drain())
        # A cancelled search must not cancel the call its neighbours wait on.
        return await asyncio.shield(future), True

    async def _drain(self) -> None:
        """Embed the waiting queries, a batch per call, until none wait."""
        try:
            while self._waiting:
                texts = list(self._waiting)[:BATCH_SIZE]
                futures = [self._waiting.pop(t) for t in texts]
                try:
                    vectors = await self._embedder.embed(texts, purpose="search")
                except BaseException as exc:
                    for future in futures:
                        _fail(future, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for text, future, row in zip(texts, futures, vectors, strict=True):
                    vector = np.array(row, dtype=np.float32)  # its own copy, never a view
                    vector.flags.writeable = False  # shared by every search of the text
                    self._remember(text, vector)
                    if not future.done():
                        future.set_result(vector)
        finally:
            for future in self._waiting.values():  # only when the loop itself stops
                future.cancel()
            self._waiting.clear()

    def _remember(self, text: str, vector: Vector) -> None:
        self._cache[text] = vector
        self._cache.move_to_end(text)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


class ScopeNames:
    """The names stated by the memories of each scope id (`("user_id", "alex")`), once looked up.
    A name found later is learnt from search results at once; a name whose memory was changed
    or deleted (here or by another process) is forgotten when its entry expires (`ttl`)."""

    def __init__(
        self, size: int = NAMES_CACHE_SIZE, ttl: float = NAMES_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._names: OrderedDict[tuple[str, str], tuple[float, tuple[str, ...]]] = OrderedDict()
        self._size, self._ttl, self._clock = size, ttl, clock

    def get(self, key: tuple[str, str]) -> tuple[str, ...] | None:
        found = self._names.get(key)
        if found is None:
            return None
        if self._clock() - found[0] > self._ttl:
            del self._names[key]
            return None
        self._names.move_to_end(key)
        return found[1]

    def put(self, key: tuple[str, str], names: tuple[str, ...]) -> None:
        self._names[key] = (self._clock(), names)
        self._names.move_to_end(key)
        while len(self._names) > self._size:
            self._names.popitem(last=False)

    def learn(self, key: tuple[str, str], name: str) -> bool:
        """Add a name stated by a memory of a looked-up id; whether it was new."""
        known = self._names.get(key)
        if known is None or name in known[1]:
            return False
        self._names[key] = (known[0], (*known[1], name))
        return True


def _fail(future: asyncio.Future[Vector], exc: BaseException) -> None:
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)
