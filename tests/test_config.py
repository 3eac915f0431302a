"""Configuration: mem0's llm keys, presets, the environment, and clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engram import AsyncMemory, ConfigurationError
from engram.config import MemoryConfig, build_llm
from engram.pipeline.extractors import OfflineExtractor
from engram.providers.llm.anthropic import AnthropicLLM
from engram.providers.llm.openai import OpenAILLM


def llm_for(block: dict[str, object]) -> object:
    return build_llm(MemoryConfig.from_dict({"llm": block}))


def test_openai_with_mem0_keys() -> None:
    llm = llm_for({"provider": "openai", "config": {
        "model": "gpt-4.1-nano", "api_key": "k", "openai_base_url": "http://proxy.local/v1",
        "temperature": 0.2, "max_tokens": 500,
    }})  # fmt: skip
    assert isinstance(llm, OpenAILLM)
    assert (llm.model, llm.base_url, llm.temperature, llm.max_tokens) == (
        "gpt-4.1-nano", "http://proxy.local/v1", 0.2, 500,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "base_url", "structured"),
    [
        ("ollama", "http://localhost:11434/v1", "json_schema"),
        ("vllm", "http://localhost:8000/v1", "json_schema"),
        ("lmstudio", "http://localhost:1234/v1", "json_schema"),
        ("groq", "https://api.groq.com/openai/v1", "json_object"),
        ("together", "https://api.together.xyz/v1", "json_object"),
        ("deepseek", "https://api.deepseek.com/v1", "json_object"),
        ("xai", "https://api.x.ai/v1", "json_schema"),
        ("openrouter", "https://openrouter.ai/api/v1", "json_schema"),
    ],
)
def test_presets(provider: str, base_url: str, structured: str) -> None:
    llm = llm_for({"provider": provider, "config": {"model": "m"}})
    assert isinstance(llm, OpenAILLM)
    assert (llm.base_url, llm.structured) == (base_url, structured)


def test_preset_keys_come_from_their_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "groq-secret")
    llm = llm_for({"provider": "groq", "config": {}})
    assert isinstance(llm, OpenAILLM)
    assert llm._client.headers["authorization"] == "Bearer groq-secret"


def test_azure_and_anthropic() -> None:
    azure = llm_for({"provider": "azure_openai", "config": {"azure_kwargs": {
        "azure_endpoint": "https://acme.openai.azure.com", "azure_deployment": "gpt4o",
        "api_key": "az", "api_version": "2024-10-21",
    }}})  # fmt: skip
    assert isinstance(azure, OpenAILLM)
    assert (
        azure._url
        == "https://acme.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
    )
    assert azure._client.headers["api-key"] == "az"
    claude = llm_for({"provider": "anthropic", "config": {"model": "claude-x", "api_key": "a"}})
    assert isinstance(claude, AnthropicLLM)
    assert claude._client.headers["x-api-key"] == "a"


def test_environment_keys_pick_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_llm(MemoryConfig()) is None
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a")
    assert isinstance(build_llm(MemoryConfig()), AnthropicLLM)
    monkeypatch.setenv("OPENAI_API_KEY", "o")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gateway.local/v1")
    llm = build_llm(MemoryConfig())
    assert isinstance(llm, OpenAILLM)
    assert llm.base_url == "http://gateway.local/v1"
    assert build_llm(MemoryConfig(llm_provider="offline")) is None


def test_offline_extractor_is_announced_once(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    OfflineExtractor._announced = False
    with caplog.at_level(logging.INFO, logger="engram.pipeline"):
        first = AsyncMemory({"data_dir": str(tmp_path), "embedder": {"provider": "hashing"}})
        second = AsyncMemory({"data_dir": str(tmp_path), "embedder": {"provider": "hashing"}})
    assert first.extractor.name == second.extractor.name == "offline"
    assert sum("offline rule-based extractor" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"llm": {"provider": "cohere"}}, "supported: openai"),
        ({"llm": {"provider": "openai", "config": {"top_k": 3}}}, "unknown llm config keys"),
        ({"llm": {"provider": "azure_openai", "config": {}}}, "azure_endpoint"),
        ({"custom_categories": "food"}, "custom_categories"),
        ({"documents": {"verify": False}}, "documents takes"),
        ({"graph_store": {"provider": "neo4j"}}, "supported: sqlite"),
        ({"reranker": {"provider": "cohere"}}, "supported: llm_reranker"),
        ({"reranker": {"provider": "llm_reranker"}}, "needs an LLM"),
        ({"llm": {"config": {"model": "gpt-4o-mini"}}}, "'config' but no 'provider'"),
        ({"embedder": {"provder": "hashing"}}, "unknown embedder keys: provder"),
        ({"embedder": {"provider": "minilm", "config": {"threads": 0}}}, "'threads' must be"),
        ({"embedder": {"provider": "minilm", "config": {"threads": "2"}}}, "'threads' must be"),
        (
            {"embedder": {"provider": "huggingface", "config": {"model_kwargs": {}}}},
            "unknown embedder config keys for 'huggingface': model_kwargs",
        ),
        ({"embedder": {"provider": "minilm", "config": {"embedding_dims": 768}}}, "384-dimension"),
        ({"embedder": {"provider": "openai", "config": {"dims": 8}}}, "unknown embedder config"),
        (
            {"embedder": {"provider": "hashing", "config": {"model": "x"}}},
            "supported: embedding_dims",
        ),
    ],
)
def test_bad_llm_config(config: dict[str, object], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AsyncMemory({"data_dir": str(tmp_path), "embedder": {"provider": "hashing"}, **config})


def test_history_db_path_is_reported_unused(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with caplog.at_level(logging.WARNING, logger="engram.config"):
        MemoryConfig.from_dict({"history_db_path": str(tmp_path / "history.db")})
    assert any("history_db_path is not used" in r.message for r in caplog.records)


def test_vector_store_block_without_provider_is_sqlite(tmp_path: Path) -> None:
    """mem0 configs often leave out the provider; the path must still be used, not dropped."""
    path = tmp_path / "elsewhere" / "memories.db"
    config = MemoryConfig.from_dict({"vector_store": {"config": {"path": str(path)}}})
    assert config.resolved_db_path() == path


def test_local_embedder_threads_setting(tmp_path: Path) -> None:
    """`threads` sets the local model's inference threads (the server runs one per process);
    the vectors are the same."""
    import numpy as np

    from engram.config import build_embedder

    def embedder(block: dict[str, object]) -> object:
        config = MemoryConfig.from_dict({"data_dir": str(tmp_path), "embedder": block})
        return build_embedder(config, threads=2)

    one = embedder({"provider": "minilm", "config": {"threads": 1}})
    default = embedder({"provider": "minilm"})
    texts = ["Loves sailing on weekends", "Moved to Lisbon last year"]
    a, b = one.embed_sync(texts), default.embed_sync(texts)  # type: ignore[attr-defined]
    assert np.allclose(a, b, atol=1e-5)
