"""`engram serve`: the Mem0 Platform REST API (FastAPI). Needs the `server` extra."""
