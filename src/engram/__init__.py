"""Engram: long-term memory for LLM applications and agents, with mem0's API.

```python
from engram import Memory

memory = Memory()  # SQLite under $ENGRAM_HOME or ~/.engram, local MiniLM embeddings
memory.add("I moved to Lisbon and I love sardines", user_id="alex")
memory.search("where does alex live?", user_id="alex")
```
"""

from engram._sync import Memory
from engram.config import MemoryConfig
from engram.errors import (
    AccessError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    DatabaseError,
    DimensionMismatchError,
    EmbeddingError,
    EngramError,
    FilterError,
    ImmutableMemoryError,
    LLMError,
    LLMOutputError,
    MemoryNotFoundError,
    MissingDependencyError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    StoreError,
    TooManyRequestsError,
    UnauthenticatedError,
    ValidationError,
    VectorStoreError,
)
from engram.memory import AsyncMemory

__version__ = "0.1.0"

__all__ = [
    "AccessError",
    "AsyncMemory",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseError",
    "DimensionMismatchError",
    "EmbeddingError",
    "EngramError",
    "FilterError",
    "ImmutableMemoryError",
    "LLMError",
    "LLMOutputError",
    "Memory",
    "MemoryConfig",
    "MemoryNotFoundError",
    "MissingDependencyError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitError",
    "StoreError",
    "TooManyRequestsError",
    "UnauthenticatedError",
    "ValidationError",
    "VectorStoreError",
    "__version__",
]
