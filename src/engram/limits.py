"""The sizes one call may bring, each with a clear error past it (`ValidationError`: a 400 on the
server). They bound the work one request can cause, so that a caller cannot hold the process (or
another tenant of a server) with a single huge input; every bound is far above what a
conversation, a memory or a query needs. Set them in the config under `limits`, as
`{"limits": {"message_chars": 200000}}`. docs/security.md lists them beside the server's own
(the request body's size and nesting).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from engram.errors import ConfigurationError, ValidationError


@dataclass(frozen=True, slots=True)
class Limits:
    message_chars: int = 100_000  # the text of one message (an add's message, an update's text)
    messages: int = 1_000  # messages of one add
    parts: int = 100  # documents and images of one add (each fetched, read or described)
    categories: int = 1_000  # categories (or custom categories) one call gives
    query_chars: int = 20_000  # a search's query
    metadata_bytes: int = 65_536  # a memory's metadata, as JSON
    filter_conditions: int = 1_000  # conditions (leaves) of one filter tree
    filter_values: int = 10_000  # values of one filter's `in` / `nin` lists together

    @classmethod
    def from_dict(cls, settings: Any) -> Limits:
        if settings is None:
            return cls()
        if not isinstance(settings, Mapping):
            raise ConfigurationError("limits must be a dict like {'message_chars': 100000}")
        known = {f.name for f in fields(cls)}
        unknown = set(settings) - known
        if unknown:
            raise ConfigurationError(
                f"unknown limits: {', '.join(sorted(map(str, unknown)))}; "
                f"known: {', '.join(sorted(known))}"
            )
        for name, value in settings.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"limits.{name} must be a positive integer")
        return cls(**settings)

    def text(self, text: str, what: str) -> None:
        if len(text) > self.message_chars:
            raise ValidationError(
                f"{what} has {len(text):,} characters; the most is {self.message_chars:,} "
                "(limits.message_chars)"
            )

    def query(self, query: str) -> None:
        if len(query) > self.query_chars:
            raise ValidationError(
                f"the query has {len(query):,} characters; the most is {self.query_chars:,} "
                "(limits.query_chars)"
            )

    def message_count(self, count: int) -> None:
        if count > self.messages:
            raise ValidationError(
                f"an add takes at most {self.messages:,} messages, got {count:,} (limits.messages)"
            )

    def count(self, what: str, given: int) -> None:
        """At most the limit named `what` (`parts`, `categories`) of them."""
        most = getattr(self, what)
        if given > most:
            raise ValidationError(
                f"{given:,} {what} in one call; the most is {most:,} (limits.{what})"
            )

    def metadata(self, encoded: str) -> None:
        size = len(encoded.encode("utf-8", "surrogatepass"))
        if size > self.metadata_bytes:
            raise ValidationError(
                f"metadata is {size:,} bytes as JSON; the most is {self.metadata_bytes:,} "
                "(limits.metadata_bytes)"
            )


DEFAULT_LIMITS = Limits()
