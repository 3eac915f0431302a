"""The PostgreSQL backend (pgvector for vectors, PostgreSQL text search for full text)."""
