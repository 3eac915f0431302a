"""Every error Engram raises, in one tree.

```
EngramError
├── ValidationError(ValueError)            bad input; nothing was written
│   └── FilterError                        a malformed or unsupported filter
├── NotFoundError(LookupError, ValueError) no memory with that id
├── ConflictError(ValueError)              the request contradicts stored state
│   └── ImmutableMemoryError               the memory was stored as immutable
├── ConfigurationError(ValueError)         bad configuration
│   ├── DimensionMismatchError             store and embedder disagree on vectors
│   └── MissingDependencyError(ImportError) an optional extra is not installed
├── AccessError                            the server refused the caller
│   ├── UnauthenticatedError               no valid API key
│   ├── PermissionDeniedError              the key may not do this
│   └── TooManyRequestsError               the key's rate limit is spent (retry_after)
├── ProviderError                          a configured provider failed
│   ├── EmbeddingError
│   ├── LLMError
│   │   └── LLMOutputError                 the model's answer did not parse, even after a repair
│   ├── AuthenticationError
│   ├── RateLimitError
│   └── NetworkError
└── StoreError                             the database failed
```

Each builtin base lets code written for mem0 (which raises `ValueError` for most of these) keep
working. mem0's own error names are aliases: `MemoryNotFoundError`, `DatabaseError`,
`VectorStoreError`.

`HTTP_STATUS` maps each error class to the HTTP status the server answers with; the answer's JSON
body (`to_dict`) carries the class's `code`, so a client can tell the errors apart again.
"""

from __future__ import annotations

from typing import Any


class EngramError(Exception):
    """Base of every error Engram raises."""

    code = "engram_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The one JSON error shape: `{"detail": message, "code": code, ...details}`."""
        return {"detail": self.message, "code": self.code, **self.details}


class ValidationError(EngramError, ValueError):
    """The input is malformed. Nothing was written."""

    code = "validation_error"


class FilterError(ValidationError):
    """A filter uses an unknown operator or has the wrong shape."""

    code = "filter_error"


class NotFoundError(EngramError, LookupError, ValueError):
    """No memory (or other object) with the given id exists."""

    code = "not_found"


class ConflictError(EngramError, ValueError):
    """The request contradicts the stored state."""

    code = "conflict"


class ImmutableMemoryError(ConflictError):
    """The memory was stored with `immutable=True` and cannot be updated."""

    code = "immutable_memory"


class ConfigurationError(EngramError, ValueError):
    """The configuration is invalid or names an unknown provider."""

    code = "configuration_error"


class DimensionMismatchError(ConfigurationError):
    """The store holds vectors of another dimension or model than the configured embedder."""

    code = "dimension_mismatch"


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    code = "missing_dependency"


class AccessError(EngramError):
    """The server refused the caller (raised by `engram serve`, never by the library)."""

    code = "access_error"


class UnauthenticatedError(AccessError):
    code = "unauthenticated"


class PermissionDeniedError(AccessError):
    code = "permission_denied"


class TooManyRequestsError(AccessError):
    code = "too_many_requests"

    def __init__(
        self, message: str, *, retry_after: float, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ProviderError(EngramError):
    """A configured provider (embedder, LLM) failed."""

    code = "provider_error"


class EmbeddingError(ProviderError):
    code = "embedding_error"


class LLMError(ProviderError):
    code = "llm_error"


class LLMOutputError(LLMError):
    """The model's answer was not valid JSON for the expected schema, even after one repair."""

    code = "llm_output_error"


class AuthenticationError(ProviderError):
    code = "authentication_error"


class RateLimitError(ProviderError):
    code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class NetworkError(ProviderError):
    code = "network_error"


class StoreError(EngramError):
    """The database failed (locked beyond the timeout, corrupt, disk full, ...)."""

    code = "store_error"


# mem0's names, for callers that catch them.
MemoryNotFoundError = NotFoundError
DatabaseError = StoreError
VectorStoreError = StoreError

HTTP_STATUS: dict[type[EngramError], int] = {
    ValidationError: 400,
    FilterError: 400,
    NotFoundError: 404,
    ConflictError: 409,
    ImmutableMemoryError: 409,
    ConfigurationError: 500,
    DimensionMismatchError: 500,
    MissingDependencyError: 500,
    AccessError: 403,
    UnauthenticatedError: 401,
    PermissionDeniedError: 403,
    TooManyRequestsError: 429,
    AuthenticationError: 502,  # the server's provider key was refused: not the caller's fault
    RateLimitError: 429,
    ProviderError: 502,
    EmbeddingError: 502,
    LLMError: 502,
    LLMOutputError: 502,
    NetworkError: 502,
    StoreError: 503,
    EngramError: 500,
}


def http_status(error: EngramError) -> int:
    """The HTTP status for an error: the entry of its nearest class in `HTTP_STATUS`."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
