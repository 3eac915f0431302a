"""Embeddings from OpenAI-compatible `/embeddings` endpoints (OpenAI, Azure, Ollama, vLLM, TEI)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from engram.errors import ConfigurationError, EmbeddingError
from engram.providers._http import RetryPolicy, post_json
from engram.providers.embedders.base import Purpose, Vectors, normalize_rows

KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
    "all-minilm": 384,
}


class OpenAIEmbedder:
    """`dims` comes from `embedding_dims`, the known-model table, or one probe request."""

    def __init__(
        self,
        *,
        model: str = "text-embedding-3-small",
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        embedding_dims: int | None = None,
        timeout: float = 30.0,
        batch_size: int = 256,
        retry: RetryPolicy | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1")
        self._model = model
        self._base_url = base_url.rstrip("/")
        self._dims = embedding_dims or KNOWN_DIMS.get(model)
        self._send_dims = embedding_dims is not None and model.startswith("text-embedding-3")
        self._batch_size = batch_size
        self._retry = retry or RetryPolicy()
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout, headers={**auth, **(headers or {})})

    @property
    def dims(self) -> int:
        if self._dims is None:
            raise ConfigurationError(
                f"the dimension of {self._model!r} is not known yet: "
                "set embedding_dims or call `await embedder.probe()`"
            )
        return self._dims

    @property
    def model_id(self) -> str:
        return f"openai-compatible:{self._model}"

    async def probe(self) -> int:
        """Learn the dimension from one request, when it was not configured."""
        if self._dims is None:
            self._dims = int((await self._request(["dimension probe"])).shape[1])
        return self._dims

    async def embed(self, texts: Sequence[str], *, purpose: Purpose = "add") -> Vectors:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        parts = [
            await self._request(list(texts[i : i + self._batch_size]))
            for i in range(0, len(texts), self._batch_size)
        ]
        vectors = np.concatenate(parts)
        if self._dims is not None and vectors.shape[1] != self._dims:
            raise EmbeddingError(
                f"{self._model!r} returned {vectors.shape[1]} dimensions, expected {self._dims}"
            )
        return vectors

    async def _request(self, texts: list[str]) -> Vectors:
        payload: dict[str, Any] = {"model": self._model, "input": texts}
        if self._send_dims:
            payload["dimensions"] = self._dims
        body = await post_json(
            self._client,
            f"{self._base_url}/embeddings",
            payload,
            policy=self._retry,
            what=f"embeddings ({self._model})",
            error_cls=EmbeddingError,
        )
        try:
            rows = sorted(body["data"], key=lambda row: row["index"])
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"unexpected embeddings answer: {str(body)[:200]}") from exc
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise EmbeddingError(f"asked for {len(texts)} embeddings, got {len(vectors)}")
        return normalize_rows(vectors)

    async def aclose(self) -> None:
        await self._client.aclose()
