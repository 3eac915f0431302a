"""The embedder interface: texts in, L2-normalized float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
Purpose = Literal["add", "search", "update"]


@runtime_checkable
class Embedder(Protocol):
    """An embedding model. `model_id` names the vector space; the store records it with `dims`."""

    @property
    def dims(self) -> int: ...

    @property
    def model_id(self) -> str: ...

    async def embed(self, texts: Sequence[str], *, purpose: Purpose = "add") -> Vectors:
        """Vectors of shape (len(texts), dims), each of unit length."""
        ...

    async def aclose(self) -> None: ...


def normalize_rows(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Scale each row to unit length (zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    out: Vectors = (array / np.maximum(norms, 1e-12)).astype(np.float32)
    return out
