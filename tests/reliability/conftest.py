"""The server tests' database fixture, `server_db`: SQLite, and PostgreSQL where it runs."""

from tests.server.conftest import server_db

__all__ = ["server_db"]
