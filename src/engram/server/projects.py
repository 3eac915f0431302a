"""One memory store per project. The default project (made on the first start) keeps its memories
in the data directory's own store, `<data_dir>/engram.db`: the one `Memory()` and the `engram`
CLI use with the same data directory, so what the server stores the CLI lists, and the other way
round. Every other project has `<data_dir>/projects/<project_id>/engram.db` (the CLI reaches it
with `--project`). A data directory whose default project was stored under `projects/` by an
earlier Engram keeps it there.

Tenant isolation is structural: a request's API key names one project, and every memory
operation of that request goes to that project's database file. No query, filter or memory id
can reach another project's rows, because they are not in the database the query runs on. The
embedder and the LLM are shared by all projects (they hold no tenant data).

With a PostgreSQL database (`engram serve --database-url`), every project's memories are rows of
that database carrying the project's id, read and written through one set of pools
(`store.postgres.database.Database`); every statement is confined to the project, and the tables'
Row-Level Security policies enforce it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engram.config import MemoryConfig, build_embedder, build_llm
from engram.errors import ConfigurationError
from engram.memory import AsyncMemory
from engram.pipeline.rerank import close_reranker
from engram.providers.embedders.base import Embedder
from engram.providers.llm.base import LLM
from engram.store.base import Store

if TYPE_CHECKING:
    from engram.store.postgres.database import Database


def store_dir(data_dir: Path, project_id: str, default: tuple[str, str] | None) -> Path:
    """The data directory of a project's store; `default` is the default project and its place
    (`control.default_store`)."""
    if default is not None and project_id == default[0]:
        return data_dir / default[1]
    return data_dir / "projects" / project_id


class ProjectMemories:
    def __init__(
        self, data_dir: Path, config: dict[str, Any], database: Database | None = None
    ) -> None:
        self._data_dir = data_dir
        self.database = database  # PostgreSQL: every project's store in this database
        self._root = data_dir / "projects"
        self.default: tuple[str, str] | None = None  # control.default_store, set at start
        if "data_dir" in config:
            raise ConfigurationError(
                "the server's data directory comes from --data-dir or $ENGRAM_HOME, not from "
                "the config file's data_dir"
            )
        self._base = MemoryConfig.from_dict({**config, "data_dir": str(data_dir)})
        if self._base.postgres is not None:
            raise ConfigurationError(
                "the server keeps its projects' stores in --database-url ($ENGRAM_DATABASE_URL), "
                "not in a pgvector vector_store of the config file"
            )
        if self._base.db_path is not None:  # one file for every project: never
            raise ConfigurationError(
                "the server keeps each project's store under its data directory: set "
                "--data-dir or $ENGRAM_HOME instead of a vector_store path in the config"
            )
        # One inference thread per process, as for BLAS (see app._start): a second one saves
        # little time per query and costs CPU that concurrent requests need (measured with
        # MiniLM: 5.0 -> 3.9 ms of CPU per query; `--workers` spreads the load over cores).
        self.embedder: Embedder = build_embedder(self._base, threads=1)
        self.llm: LLM | None = build_llm(self._base)
        self._open: dict[str, AsyncMemory] = {}
        self._lock = asyncio.Lock()

    async def get(self, project_id: str) -> AsyncMemory:
        memory = self._open.get(project_id)
        if memory is not None:
            return memory
        async with self._lock:
            memory = self._open.get(project_id)
            if memory is None:
                store: Store | None = None
                if self.database is not None:
                    from engram.store.postgres.store import PostgresStore

                    store = PostgresStore(self.database, project=project_id)
                where = store_dir(self._data_dir, project_id, self.default)
                config = dataclasses.replace(self._base, data_dir=where)
                # A key's project is its scope: reads need no user, agent or run id.
                memory = AsyncMemory(
                    config, embedder=self.embedder, llm=self.llm, store=store,
                    require_scope=False,
                )  # fmt: skip
                await memory  # open (create or migrate) the store now
                self._open[project_id] = memory
        return memory

    def writing(self) -> AbstractContextManager[None]:
        """Around a write whose decisions read the store (an add): those reads go to the primary
        database, never to a read replica."""
        if self.database is None or not self.database.has_replicas:
            return contextlib.nullcontext()
        from engram.store.postgres.database import primary_reads

        return primary_reads()

    async def drop(self, project_id: str) -> None:
        """Close and delete a project's store (the project was deleted)."""
        if self.database is not None:
            from engram.store.postgres.store import PostgresStore

            await PostgresStore(self.database, project=project_id).drop()
        async with self._lock:
            memory = self._open.pop(project_id, None)
            if memory is not None:
                await _release(memory)
        if self.database is None:
            await asyncio.to_thread(shutil.rmtree, self._root / project_id, True)

    async def close(self) -> None:
        for memory in self._open.values():
            await _release(memory)
        self._open.clear()
        if self.database is not None:
            await self.database.close()
        await self.embedder.aclose()
        if self.llm is not None:
            await self.llm.aclose()


async def _release(memory: AsyncMemory) -> None:
    """What a project's memory holds of its own: its store, and a reranker's client (the
    embedder and the LLM are shared by every project, closed once by `close`)."""
    await memory.store.close()
    await close_reranker(memory.reranker)
