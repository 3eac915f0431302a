from tests.server.conftest import server_db

__all__ = ["server_db"]
