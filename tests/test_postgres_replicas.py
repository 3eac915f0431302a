"""Read replicas: a real primary and a real hot standby (streaming replication, started on this
machine). Reads go to the standby once it has replayed the reader's mark; a writer reads its own
writes whatever the standby's lag (the primary answers while it lags); a server started with
ENGRAM_DATABASE_READ_URL does the same for every request."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from engram import Memory
from engram.store.postgres.store import PostgresStore
from tests.pg import Cluster, skip_or_fail, unavailable
from tests.server.live import LiveServer, add_now

CONFIG = {"embedder": {"provider": "hashing"}}


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary (commits wait for their WAL to be written) and its hot standby."""
    reason = unavailable()
    if reason is not None:
        skip_or_fail(reason)
    bases = [Path(tempfile.mkdtemp(prefix=f"engram-{role}-")) for role in ("primary", "standby")]
    primary = Cluster(bases[0], durable=True)
    standby = Cluster(bases[1], primary=primary)
    yield primary, standby
    standby.stop()
    primary.stop()
    for base in bases:
        shutil.rmtree(base, ignore_errors=True)


def _database(primary: Cluster, standby: Cluster) -> tuple[str, str]:
    """A fresh database on the primary, once the standby has it too."""
    url = primary.database()
    replica = standby.url(url.rsplit("/", 1)[1])
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(replica) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
                return url, replica
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the standby never got the database"
            time.sleep(0.1)


def _replay(replica: str, on: bool) -> None:
    with psycopg.connect(replica, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_resume()" if on else "SELECT pg_wal_replay_pause()")


def _standby_reads(replica: str) -> int:
    """Transactions the standby has committed (its own reads: it writes nothing)."""
    with psycopg.connect(replica, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_reads_go_to_the_standby_and_a_writer_reads_its_writes(
    pair: tuple[Cluster, Cluster],
) -> None:
    url, replica = _database(*pair)
    with Memory(CONFIG, store=PostgresStore(url, project="p", read_urls=[replica])) as writer:
        writer.add("The first fact.", user_id="u", infer=False)
        before = _standby_reads(replica)
        for _ in range(5):
            assert len(writer.get_all(user_id="u")["results"]) == 1
        assert _standby_reads(replica) > before  # the standby answered

        _replay(replica, on=False)  # the standby falls behind from here
        try:
            writer.add("The second fact.", user_id="u", infer=False)
            # The writer reads its own write: the standby has not replayed it, so the primary
            # answers (after waiting briefly for the standby).
            assert len(writer.get_all(user_id="u")["results"]) == 2
            hits = writer.search("second fact", user_id="u")["results"]
            assert hits[0]["memory"] == "The second fact."
            # A reader that wrote nothing reads the standby: one fact, as of the pause.
            with Memory(CONFIG, store=PostgresStore(replica, project="p")) as stale:
                assert len(stale.get_all(user_id="u")["results"]) == 1
        finally:
            _replay(replica, on=True)
        deadline = time.monotonic() + 30
        with Memory(CONFIG, store=PostgresStore(replica, project="p")) as caught_up:
            while len(caught_up.get_all(user_id="u")["results"]) < 2:
                assert time.monotonic() < deadline
                time.sleep(0.05)


def test_a_server_with_a_read_replica_reads_every_write_at_once(
    tmp_path: Path, pair: tuple[Cluster, Cluster]
) -> None:
    url, replica = _database(*pair)
    live = LiveServer(tmp_path / "home", database_url=url, database_read_urls=(replica,))
    try:
        with live.client() as client:
            for i in range(5):  # each write read back at once, by the next request
                add_now(client, f"Fact number {i} about the harbour.", "ana", infer=False)
                listed = client.post("/v2/memories/", json={"filters": {"user_id": "ana"}})
                assert len(listed.json()["results"]) == i + 1
            before = _standby_reads(replica)
            hits = client.post("/v2/memories/search/", json={
                "query": "harbour", "filters": {"user_id": "ana"}}).json()["results"]  # fmt: skip
            assert len(hits) == 5
            assert _standby_reads(replica) > before  # searched on the standby
            _replay(replica, on=False)
            try:
                add_now(client, "A fact the standby has not seen.", "ana", infer=False)
                listed = client.post("/v2/memories/", json={"filters": {"user_id": "ana"}})
                assert len(listed.json()["results"]) == 6  # from the primary, at once
            finally:
                _replay(replica, on=True)
    finally:
        live.close()
