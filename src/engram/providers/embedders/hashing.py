"""A deterministic feature-hashing embedder: no model, no dependency, instant.

Similar texts (sharing words and character trigrams) get similar vectors. Good for tests and for
trying Engram out; use the default MiniLM embedder or a provider for real semantic recall.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from engram.providers.embedders.base import Purpose, Vectors, normalize_rows

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    def __init__(self, dims: int = 256) -> None:
        if dims < 8:
            raise ValueError("dims must be at least 8")
        self._dims = dims

    @property
    def dims(self) -> int:
        return self._dims

    @property
    def model_id(self) -> str:
        return f"engram-hashing-v2-{self._dims}"

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        grams = [w[i : i + 3] for w in words for i in range(max(1, len(w) - 2))]
        return words + words + grams

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dims), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=16).digest()
                for part in (digest[:8], digest[8:]):  # two buckets per feature: fewer ties
                    index = int.from_bytes(part[:4], "little") % self._dims
                    out[row, index] += 1.0 if part[4] & 1 else -1.0
        return normalize_rows(out)

    async def embed(self, texts: Sequence[str], *, purpose: Purpose = "add") -> Vectors:
        return self.embed_sync(texts)

    async def aclose(self) -> None:
        return None
