"""Configuration: mem0's config dict, parsed into typed settings, and the one provider registry.

The library itself takes provider instances (`AsyncMemory(embedder=..., store=...)`); this module is
where names such as `{"embedder": {"provider": "openai"}}` become instances, for
`Memory.from_config` and the CLI.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engram.errors import ConfigurationError, MissingDependencyError
from engram.limits import DEFAULT_LIMITS, Limits
from engram.providers.embedders.base import Embedder
from engram.providers.llm.base import LLM

if TYPE_CHECKING:
    from engram.pipeline.rerank import Reranker
    from engram.store.base import Store

logger = logging.getLogger("engram.config")
DEFAULT_DB_NAME = "engram.db"
EMBEDDERS = ("minilm", "huggingface", "openai", "ollama", "lmstudio", "vllm", "hashing")
VECTOR_STORES = ("sqlite", "pgvector")
# mem0's pgvector keys (connection_string, or its parts), and the pool's sizes
_PGVECTOR_KEYS = {"connection_string", "dbname", "user", "password", "host", "port", "sslmode",
                  "collection_name", "embedding_model_dims", "hnsw", "minconn", "maxconn",
                  "diskann"}  # fmt: skip
LLMS = ("openai", "azure_openai", "anthropic", "ollama", "vllm", "lmstudio", "groq", "together",
        "deepseek", "xai", "openrouter", "offline")  # fmt: skip
GRAPH_STORES = ("sqlite",)
RERANKERS = ("llm_reranker", "llm")
_GUIDANCE = ("custom_instructions", "custom_categories", "custom_fact_extraction_prompt",
             "custom_update_memory_prompt")  # fmt: skip
_KNOWN = {"embedder", "vector_store", "llm", "history_db_path", "version", "data_dir",
          "documents", "graph_store", "reranker", "limits", *_GUIDANCE}  # fmt: skip
_DOCUMENT_KEYS = {"timeout", "max_bytes", "max_chars", "allow_private_urls"}
_LLM_KEYS = {"model", "api_key", "temperature", "max_tokens", "enable_vision", "timeout",
             "deadline", "structured_output", "azure_kwargs"}  # fmt: skip
_LLM_SECONDS = ("timeout", "deadline")


def default_data_dir() -> Path:
    """`$ENGRAM_HOME` if set, else `~/.engram`."""
    home = os.environ.get("ENGRAM_HOME")
    return Path(home).expanduser() if home else Path.home() / ".engram"


def default_cache_dir() -> Path:
    """Where built artefacts shared by every data directory of a user live (the local model's
    ONNX graph, 87 MB): `$ENGRAM_CACHE_DIR`, else `$XDG_CACHE_HOME/engram`, else
    `~/.cache/engram`."""
    chosen = os.environ.get("ENGRAM_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "engram"


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A mem0-style JSON config file (`engram serve --config`, the CLI's `--config`)."""
    try:
        loaded = json.loads(Path(path).expanduser().read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the config file {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"the config file {path} must hold a JSON object")
    return loaded


@dataclass(frozen=True, slots=True)
class Hnsw:
    """The HNSW index of a PostgreSQL store: `m` and `ef_construction` shape the graph when the
    index is built (one index per dimension serves every project of the database), `ef_search`
    is how many candidates each search step keeps. Higher: better recall, slower inserts and
    searches (bench/README.md has the figures at 1M memories)."""

    m: int = 16
    ef_construction: int = 200
    ef_search: int = 400

    @classmethod
    def from_setting(cls, value: Any) -> Hnsw | None:
        """mem0's `hnsw` (true or false), or Engram's `{"m", "ef_construction", "ef_search"}`."""
        if isinstance(value, bool):
            return cls() if value else None
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                'pgvector hnsw must be true, false or {"m", "ef_construction", "ef_search"}'
            )
        unknown = set(value) - {"m", "ef_construction", "ef_search"}
        if unknown:
            names = ", ".join(sorted(map(str, unknown)))
            raise ConfigurationError(f"unknown pgvector hnsw keys: {names}")
        for name, value_ in value.items():
            if isinstance(value_, bool) or not isinstance(value_, int):
                raise ConfigurationError(f"pgvector hnsw {name} must be an integer")
        made = cls(**value)
        # pgvector's own bounds, refused here rather than when the index is built.
        if not 2 <= made.m <= 100 or not 2 * made.m <= made.ef_construction <= 1000:
            raise ConfigurationError(
                "pgvector hnsw needs 2 <= m <= 100 and 2 x m <= ef_construction <= 1000"
            )
        if not 1 <= made.ef_search <= 1000:
            raise ConfigurationError("pgvector hnsw ef_search must be between 1 and 1000")
        return made


@dataclass(frozen=True, slots=True)
class PostgresConfig:
    """A store in PostgreSQL: the connection (a URL or libpq conninfo), the project its rows
    carry (mem0's `collection_name`), the pool's sizes, the expected dimensions, HNSW or not."""

    conninfo: str
    project: str = "mem0"
    min_size: int = 1
    max_size: int = 10
    dims: int | None = None
    hnsw: Hnsw | None = field(default_factory=Hnsw)  # None: exact scans only


@dataclass(slots=True)
class MemoryConfig:
    """Where data lives and which embedder makes vectors."""

    data_dir: Path | None = None
    db_path: Path | None = None
    embedder_provider: str = "minilm"
    embedder_config: dict[str, Any] = field(default_factory=dict)
    synchronous: str = "FULL"
    llm_provider: str | None = None  # None: from the environment's API keys, else offline
    llm_config: dict[str, Any] = field(default_factory=dict)
    custom_instructions: str | None = None
    custom_categories: Any = None
    custom_fact_extraction_prompt: str | None = None
    custom_update_memory_prompt: str | None = None
    documents: dict[str, Any] = field(default_factory=dict)  # DocumentFetcher settings
    graph: bool = False  # graph memory: entities and relations beside the memories
    reranker: dict[str, Any] | None = None  # {"llm": {...}} or {} for the main LLM
    postgres: PostgresConfig | None = None  # the store is in PostgreSQL (vector_store pgvector)
    limits: Limits = DEFAULT_LIMITS  # the sizes one call may bring (engram.limits)

    def resolved_data_dir(self) -> Path:
        if self.data_dir is not None:
            return Path(self.data_dir).expanduser()
        if self.db_path is not None:
            return Path(self.db_path).expanduser().parent
        return default_data_dir()

    def resolved_db_path(self) -> Path:
        if self.db_path is not None:
            return Path(self.db_path).expanduser()
        return self.resolved_data_dir() / DEFAULT_DB_NAME

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> MemoryConfig:
        """Parse mem0's config dict (the keys Engram supports; anything else is an error)."""
        if not isinstance(config, Mapping):
            raise ConfigurationError("config must be a dict")
        unknown = set(config) - _KNOWN
        if unknown:
            raise ConfigurationError(
                f"unknown config keys: {', '.join(sorted(unknown))}; "
                f"supported: {', '.join(sorted(_KNOWN))}"
            )
        if config.get("history_db_path"):
            logger.warning(
                "history_db_path is not used: Engram keeps history in the same database as the "
                "memories (one transaction covers both)"
            )
        result = cls()
        if config.get("data_dir"):
            result.data_dir = Path(config["data_dir"])
        _apply_vector_store(result, config.get("vector_store"))
        _apply_embedder(result, config.get("embedder"))
        _apply_llm(result, config.get("llm"))
        for key in _GUIDANCE:
            if config.get(key) is not None:
                setattr(result, key, config[key])
        if result.custom_categories is not None:
            from engram.pipeline.requests import custom_categories

            try:
                custom_categories(result.custom_categories)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from exc
        result.documents = _documents(config.get("documents"))
        result.graph = _graph(config.get("graph_store"))
        result.reranker = _reranker(config.get("reranker"))
        result.limits = Limits.from_dict(config.get("limits"))
        return result


def _provider_block(
    block: Any, name: str, default: str | None = None
) -> tuple[str | None, dict[str, Any]]:
    """(provider, settings) of a `{"provider": ..., "config": {...}}` block. A block with settings
    but no provider takes `default`; where there is none, that is an error (its settings would
    otherwise be dropped unread)."""
    if block is None:
        return None, {}
    if not isinstance(block, Mapping):
        raise ConfigurationError(f"{name} must be a dict with 'provider' and 'config'")
    unknown = set(block) - {"provider", "config"}
    if unknown:
        raise ConfigurationError(
            f"unknown {name} keys: {', '.join(sorted(map(str, unknown)))}; "
            "a provider block has 'provider' and 'config'"
        )
    settings = block.get("config") or {}
    if not isinstance(settings, Mapping):
        raise ConfigurationError(f"{name}.config must be a dict")
    provider = block.get("provider") or (default if settings else None)
    if provider is None and settings:
        raise ConfigurationError(f"{name} has a 'config' but no 'provider'")
    return provider, dict(settings)


def _apply_vector_store(result: MemoryConfig, block: Any) -> None:
    provider, settings = _provider_block(block, "vector_store", default="sqlite")
    if provider is None:
        return
    if provider not in VECTOR_STORES:
        raise ConfigurationError(
            f"unknown vector_store provider {provider!r}; supported: {', '.join(VECTOR_STORES)} "
            "(memories, vectors and history live in one SQL database)"
        )
    if provider == "pgvector":
        result.postgres = _pgvector(settings)
        return
    path = settings.pop("path", None) or settings.pop("db_path", None)
    if path:
        path = Path(path)
        result.db_path = path if path.suffix else path / DEFAULT_DB_NAME
    if "synchronous" in settings:
        result.synchronous = str(settings.pop("synchronous"))
    settings.pop("collection_name", None)  # mem0 naming; one database holds every scope
    settings.pop("embedding_model_dims", None)  # the embedder decides the dimension
    if settings:
        raise ConfigurationError(f"unknown vector_store config keys: {', '.join(sorted(settings))}")


def _pgvector(settings: dict[str, Any]) -> PostgresConfig:
    """mem0's pgvector config: `connection_string`, or `dbname`/`user`/`password`/`host`/`port`/
    `sslmode`; `collection_name` names the project; `minconn`/`maxconn` size the pool."""
    unknown = set(settings) - _PGVECTOR_KEYS
    if unknown:
        raise ConfigurationError(
            f"unknown pgvector config keys: {', '.join(sorted(unknown))}; "
            f"supported: {', '.join(sorted(_PGVECTOR_KEYS))}"
        )
    if settings.get("diskann"):
        raise ConfigurationError(
            "diskann needs the pgvectorscale extension, which Engram does not use: "
            "its pgvector store uses HNSW (hnsw: true, the default)"
        )
    parts = {k: settings[k] for k in ("dbname", "user", "password", "host", "port", "sslmode")
             if settings.get(k) is not None}  # fmt: skip
    conninfo = settings.get("connection_string")
    if conninfo and parts:
        raise ConfigurationError("give pgvector a connection_string or its parts, not both")
    if not conninfo:
        if not parts:
            raise ConfigurationError(
                "pgvector needs a connection_string (postgresql://...) or dbname/user/host/port"
            )
        conninfo = " ".join(f"{k}={_conninfo_value(v)}" for k, v in parts.items())
    sizes = {"min_size": settings.get("minconn", 1), "max_size": settings.get("maxconn", 10)}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"pgvector {name.replace('_size', 'conn')} must be >= 1")
    if sizes["min_size"] > sizes["max_size"]:
        raise ConfigurationError("pgvector minconn must not exceed maxconn")
    project = settings.get("collection_name", "mem0")
    if not isinstance(project, str) or not project.strip():
        raise ConfigurationError("pgvector collection_name must be a non-empty string")
    dims = settings.get("embedding_model_dims")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise ConfigurationError("pgvector embedding_model_dims must be a positive integer")
    return PostgresConfig(
        str(conninfo), project.strip(), sizes["min_size"], sizes["max_size"], dims,
        Hnsw.from_setting(settings.get("hnsw", True)),
    )  # fmt: skip


def _conninfo_value(value: Any) -> str:
    """A libpq conninfo value, quoted (spaces, quotes and backslashes escaped)."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def build_store(config: MemoryConfig) -> Store:
    """The configured store: PostgreSQL (vector_store pgvector), else SQLite in the data dir."""
    if config.postgres is None:
        from engram.store.sqlite.store import SQLiteStore

        return SQLiteStore(config.resolved_db_path(), synchronous=config.synchronous)
    try:
        from engram.store.postgres.store import PostgresStore
    except ImportError as exc:
        raise MissingDependencyError(
            f"the pgvector store needs its extra: pip install 'engram-llm[postgres]' ({exc})"
        ) from None
    pg = config.postgres
    return PostgresStore(
        pg.conninfo, project=pg.project, min_size=pg.min_size, max_size=pg.max_size,
        dims=pg.dims, hnsw=pg.hnsw,
    )  # fmt: skip


_EMBEDDER_KEYS = {
    "minilm": {"model", "embedding_dims", "threads", "precision"},
    "huggingface": {"model", "embedding_dims", "threads", "precision"},
    "hashing": {"embedding_dims"},
    "openai": {"model", "api_key", "embedding_dims", "openai_base_url", "base_url",
               "ollama_base_url"},
}  # fmt: skip


def _apply_embedder(result: MemoryConfig, block: Any) -> None:
    provider, settings = _provider_block(block, "embedder")
    if provider is None:
        return
    if provider not in EMBEDDERS:
        raise ConfigurationError(
            f"unknown embedder provider {provider!r}; supported: {', '.join(EMBEDDERS)}"
        )
    allowed = _EMBEDDER_KEYS.get(provider, _EMBEDDER_KEYS["openai"])
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ConfigurationError(
            f"unknown embedder config keys for {provider!r}: {', '.join(unknown)}; "
            f"supported: {', '.join(sorted(allowed))}"
        )
    if provider in ("minilm", "huggingface") and settings.get("embedding_dims", 384) != 384:
        raise ConfigurationError(
            f"all-MiniLM-L6-v2 makes 384-dimension vectors, not {settings['embedding_dims']!r}"
        )
    threads = settings.get("threads")
    if threads is not None and (type(threads) is not int or threads < 1):
        raise ConfigurationError(f"embedder 'threads' must be a positive integer, not {threads!r}")
    precision = settings.get("precision", "auto")
    if precision not in ("auto", "fp32", "int8"):
        raise ConfigurationError(
            f"embedder 'precision' must be 'auto', 'fp32' or 'int8', not {precision!r}"
        )
    result.embedder_provider = provider
    result.embedder_config = settings


def _reranker(block: Any) -> dict[str, Any] | None:
    provider, settings = _provider_block(block, "reranker")
    if provider is None:
        return None
    if provider not in RERANKERS:
        raise ConfigurationError(
            f"unknown reranker provider {provider!r}; supported: {', '.join(RERANKERS)} "
            "(any configured LLM reranks; serve other models through an OpenAI-compatible LLM)"
        )
    llm = settings.get("llm")
    if llm is not None and not isinstance(llm, Mapping):
        raise ConfigurationError("reranker.config.llm must be an llm block like the top-level one")
    return {"llm": dict(llm)} if llm else {}


def build_reranker(config: MemoryConfig, main_llm: LLM | None) -> Reranker | None:
    """The configured reranker: its own LLM if it names one, else the main LLM."""
    if config.reranker is None:
        return None
    from engram.pipeline.rerank import LLMReranker

    llm = main_llm
    if "llm" in config.reranker:
        own = MemoryConfig()
        _apply_llm(own, config.reranker["llm"])
        llm = build_llm(own)
    if llm is None:
        raise ConfigurationError(
            "the reranker needs an LLM: configure 'llm' or reranker.config.llm"
        )
    return LLMReranker(llm, owns_llm=llm is not main_llm)


def _graph(block: Any) -> bool:
    provider, _ = _provider_block(block, "graph_store", default="sqlite")
    if provider is None:
        return bool(block)
    if provider not in GRAPH_STORES:
        raise ConfigurationError(
            f"unknown graph_store provider {provider!r}; supported: {', '.join(GRAPH_STORES)} "
            "(entities and relations live in the same SQL database as the memories)"
        )
    return True


def _documents(block: Any) -> dict[str, Any]:
    """The `documents` block: how document URLs in messages are fetched."""
    if block is None:
        return {}
    if not isinstance(block, Mapping) or set(block) - _DOCUMENT_KEYS:
        raise ConfigurationError(
            f"documents takes a dict with keys {', '.join(sorted(_DOCUMENT_KEYS))}"
        )
    settings = dict(block)
    if "allow_private_urls" in settings:
        settings["allow_private"] = bool(settings.pop("allow_private_urls"))
    return settings


def _apply_llm(result: MemoryConfig, block: Any) -> None:
    provider, settings = _provider_block(block, "llm")
    if provider is None:
        return
    if provider not in LLMS:
        raise ConfigurationError(f"unknown llm provider {provider!r}; supported: {', '.join(LLMS)}")
    unknown = {k for k in settings if k not in _LLM_KEYS and not k.endswith("base_url")}
    if unknown:
        raise ConfigurationError(
            f"unknown llm config keys: {', '.join(sorted(unknown))}; supported: "
            f"{', '.join(sorted(_LLM_KEYS))} and <provider>_base_url"
        )
    for key in _LLM_SECONDS:
        value = settings.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ConfigurationError(f"llm config {key} is a number of seconds > 0, not {value!r}")
    result.llm_provider = provider
    result.llm_config = settings


def build_llm(config: MemoryConfig) -> LLM | None:
    """The LLM a config names; with none named, one from OPENAI_API_KEY or ANTHROPIC_API_KEY
    in the environment; else `None` (the offline extractor)."""
    provider, settings = config.llm_provider, dict(config.llm_config)
    if provider is None:
        if os.environ.get("OPENAI_API_KEY"):
            provider = "openai"
        elif os.environ.get("ANTHROPIC_API_KEY"):
            provider = "anthropic"
        else:
            return None
    if provider == "offline":
        return None
    common: dict[str, Any] = {
        k: settings[k]
        for k in ("temperature", "max_tokens", *_LLM_SECONDS)
        if k in settings and (k == "temperature" or settings[k] is not None)
    }
    common["enable_vision"] = bool(settings.get("enable_vision", False))
    base_url = next((v for k, v in settings.items() if k.endswith("base_url") and v), None)
    if provider == "anthropic":
        from engram.providers.llm.anthropic import AnthropicLLM

        return AnthropicLLM(
            model=settings.get("model") or "claude-sonnet-4-5",
            base_url=base_url
            or os.environ.get("ANTHROPIC_BASE_URL")
            or "https://api.anthropic.com",
            api_key=settings.get("api_key") or os.environ.get("ANTHROPIC_API_KEY"),
            **common,
        )
    from engram.providers.llm.openai import PRESETS, OpenAILLM

    if provider == "azure_openai":
        azure = dict(settings.get("azure_kwargs") or {})
        endpoint = azure.get("azure_endpoint") or os.environ.get("AZURE_OPENAI_ENDPOINT")
        deployment = azure.get("azure_deployment") or settings.get("model")
        if not endpoint or not deployment:
            raise ConfigurationError(
                "azure_openai needs azure_kwargs.azure_endpoint and azure_deployment"
            )
        return OpenAILLM(
            model=deployment,
            base_url=f"{endpoint.rstrip('/')}/openai/deployments/{deployment}",
            api_key=azure.get("api_key") or os.environ.get("AZURE_OPENAI_API_KEY"),
            azure_api_version=azure.get("api_version") or "2024-10-21",
            **common,
        )
    preset = PRESETS[provider]
    env_base = os.environ.get("OPENAI_BASE_URL") if provider == "openai" else None
    return OpenAILLM(
        model=settings.get("model") or preset.model,
        base_url=base_url or env_base or preset.base_url,
        api_key=settings.get("api_key")
        or (os.environ.get(preset.api_key_env) if preset.api_key_env else None),
        structured=settings.get("structured_output") or preset.structured,
        **common,
    )


_LOCAL_BASE_URLS = {
    "ollama": "http://localhost:11434/v1",
    "lmstudio": "http://localhost:1234/v1",
    "vllm": "http://localhost:8000/v1",
}
_MINILM_NAMES = {None, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def build_embedder(config: MemoryConfig, *, threads: int | None = None) -> Embedder:
    """The embedder a config names. `threads`: CPU threads for a local model when the config
    does not say (`{"embedder": {"config": {"threads": N}}}`; default: see MiniLMEmbedder)."""
    provider, settings = config.embedder_provider, dict(config.embedder_config)
    if provider in ("minilm", "huggingface"):
        if settings.get("model") not in _MINILM_NAMES:
            raise ConfigurationError(
                f"the local embedder runs all-MiniLM-L6-v2 only, not {settings.get('model')!r}; "
                "serve other models through an OpenAI-compatible endpoint (provider 'openai')"
            )
        from engram.providers.embedders.minilm import MiniLMEmbedder

        chosen = settings.get("threads", threads)  # checked with the other keys at parse time
        return MiniLMEmbedder(
            cache_dir=default_cache_dir(), threads=chosen,
            precision=settings.get("precision", "auto"),
        )  # fmt: skip
    if provider == "hashing":
        from engram.providers.embedders.hashing import HashingEmbedder

        return HashingEmbedder(int(settings.get("embedding_dims", 256)))
    from engram.providers.embedders.openai import OpenAIEmbedder

    base_url = (
        settings.get("openai_base_url")
        or settings.get("base_url")
        or settings.get("ollama_base_url")
        or _LOCAL_BASE_URLS.get(provider)
        or os.environ.get("OPENAI_BASE_URL")
        or "https://api.openai.com/v1"
    )
    if provider == "ollama" and not base_url.rstrip("/").endswith("/v1"):
        base_url = base_url.rstrip("/") + "/v1"
    api_key = settings.get("api_key") or (
        os.environ.get("OPENAI_API_KEY") if provider == "openai" else None
    )
    return OpenAIEmbedder(
        model=settings.get("model") or "text-embedding-3-small",
        base_url=base_url,
        api_key=api_key,
        embedding_dims=settings.get("embedding_dims"),
    )
