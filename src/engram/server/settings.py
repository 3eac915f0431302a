"""Server settings: read once at the edge, from `ENGRAM_*` environment variables and CLI flags.

| variable | flag | default | meaning |
|---|---|---|---|
| `ENGRAM_HOST` | `--host` | `127.0.0.1` | interface to listen on |
| `ENGRAM_PORT` | `--port` | `8000` | port to listen on |
| `ENGRAM_HOME` | `--data-dir` | `~/.engram` | data directory (server.db, a store per project) |
| `ENGRAM_CONFIG` | `--config` | none | a mem0-style JSON config file (llm, embedder, ...) |
| `ENGRAM_ADMIN_API_KEY` | | none | the first admin key, instead of a generated one |
| `ENGRAM_CORS_ORIGINS` | `--cors-origins` | none | CORS origins, comma-separated (`*`: any) |
| `ENGRAM_RATE_LIMIT` | `--rate-limit` | `1200` | requests per minute per API key (0: no limit) |
| `ENGRAM_AUTH_FAILURES_PER_MINUTE` | | `30` | failed authentications per client address |
| `ENGRAM_MAX_BODY_BYTES` | | `10485760` | largest request body accepted (413 above) |
| `ENGRAM_WORKERS` | `--workers` | `1` | server processes (one per core serves the most searches) |
| `ENGRAM_JOB_WORKERS` | | `2` | async adds processed at once |
| `ENGRAM_WEBHOOK_TIMEOUT` | | `10` | seconds per webhook delivery attempt |
| `ENGRAM_ALLOW_PRIVATE_URLS` | | `false` | webhooks, documents may be at private addresses |
| `ENGRAM_PUBLIC_METRICS` | | `false` | `/metrics` with no key (else: an organization OWNER's key) |
| `ENGRAM_JOB_LEASE` | | `60` | PostgreSQL: seconds before another server retakes a dead one's job |
| `ENGRAM_DATABASE_POOL` | | `10` | PostgreSQL: store connections per process (+5 of the server's) |
| `ENGRAM_DATABASE_URL` | `--database-url` | none | PostgreSQL: every project, key, job, ... there |
| `ENGRAM_DATABASE_READ_URL` | `--database-read-url` | none | read replicas (space-separated URLs) |
| `ENGRAM_UPSTREAM_URL` | | the llm's | the chat proxy's OpenAI-compatible LLM (`.../v1`) |
| `ENGRAM_UPSTREAM_API_KEY` | | none | its API key |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engram.config import default_data_dir, read_config_file
from engram.errors import ConfigurationError

PREFIX = "ENGRAM_"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = field(default_factory=default_data_dir)
    config: Path | None = None
    admin_api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    rate_limit: int = 1200
    auth_failures_per_minute: int = 30
    max_body_bytes: int = 10 * 1024 * 1024
    workers: int = 1
    job_workers: int = 2
    webhook_timeout: float = 10.0
    allow_private_urls: bool = False
    public_metrics: bool = False
    job_lease: float = 60.0
    database_pool: int = 10
    database_url: str | None = None
    database_read_urls: tuple[str, ...] = ()
    upstream_url: str | None = None
    upstream_api_key: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the environment, then `overrides` (flags; `None` values are skipped)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(variable(f.name))
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)
        settings.check()
        return settings

    def check(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"port must be in 1..65535, got {self.port}")
        if self.database_url is not None and not self.database_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ConfigurationError(
                "ENGRAM_DATABASE_URL must be a postgresql:// URL (the data directory is SQLite's)"
            )
        if self.upstream_url is not None and not self.upstream_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigurationError("ENGRAM_UPSTREAM_URL must be an http:// or https:// URL")
        if self.database_read_urls and self.database_url is None:
            raise ConfigurationError("read replicas (ENGRAM_DATABASE_READ_URL) need a database URL")
        least_values = (("rate_limit", 0), ("auth_failures_per_minute", 0), ("max_body_bytes", 0),
                        ("workers", 1), ("job_workers", 1), ("job_lease", 1),
                        ("database_pool", 1))  # fmt: skip
        for name, least in least_values:
            if getattr(self, name) < least:
                raise ConfigurationError(f"{name} must be at least {least}")

    def to_env(self) -> dict[str, str]:
        """These settings as `ENGRAM_*` variables (what `from_env` reads back): how the worker
        processes of `--workers N` get the flags given to the first one."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                joiner = " " if f.name == "database_read_urls" else ","
                out[variable(f.name)] = (
                    joiner.join(value) if isinstance(value, tuple) else str(value)
                )
        return out

    def memory_config(self) -> dict[str, Any]:
        """The mem0-style config every project's memory is built from (its `data_dir` is set
        per project)."""
        return {} if self.config is None else read_config_file(self.config)


def variable(name: str) -> str:
    """The environment variable of a setting (`data_dir` is `ENGRAM_HOME`)."""
    special = {"data_dir": "HOME", "database_read_urls": "DATABASE_READ_URL"}
    return PREFIX + special.get(name, name.upper())


def _parse(name: str, raw: str) -> Any:
    try:
        if name in (
            "port",
            "rate_limit",
            "auth_failures_per_minute",
            "max_body_bytes",
            "workers",
            "job_workers",
            "database_pool",
        ):
            return int(raw)
        if name in ("webhook_timeout", "job_lease"):
            return float(raw)
    except ValueError:
        raise ConfigurationError(f"{variable(name)} must be a number, got {raw!r}") from None
    if name in ("allow_private_urls", "public_metrics"):
        if raw.strip().lower() not in ("true", "false", "1", "0"):
            raise ConfigurationError(f"{variable(name)} must be true or false, got {raw!r}")
        return raw.strip().lower() in ("true", "1")
    if name in ("data_dir", "config"):
        return Path(raw).expanduser()
    if name == "cors_origins":
        return tuple(o.strip() for o in raw.split(",") if o.strip())
    if name == "database_read_urls":  # URLs hold commas (several hosts), never spaces
        return tuple(raw.split())
    return raw
