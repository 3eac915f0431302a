"""HTTP calls to providers, with the retry policy written once.

Retried, with exponential backoff: 429 (honouring `Retry-After`), 5xx, timeouts, connection errors.
Never retried: other 4xx. Errors come out typed: `AuthenticationError` (401/403), `RateLimitError`
(429 after the last try), `NetworkError` (connection/timeout), or the caller's `error_cls`.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from engram.errors import AuthenticationError, NetworkError, ProviderError, RateLimitError

MAX_BACKOFF = 20.0
MAX_RETRY_AFTER = 60.0  # the longest a provider's Retry-After holds a call


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    backoff: float = 0.5  # first delay in seconds; doubles each try, with jitter

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and math.isfinite(retry_after):
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
        base = self.backoff * (2**attempt)
        return float(min(base * (0.5 + random.random()), MAX_BACKOFF))


def _retry_after(response: httpx.Response) -> float | None:
    """The `Retry-After` header in seconds (a number, or an HTTP date); None when absent or not
    a finite time (`nan`, `inf`, garbage: the usual backoff applies). Negative is 0; the delay
    is capped at MAX_RETRY_AFTER."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return seconds if math.isfinite(seconds) else None


def _detail(response: httpx.Response) -> str:
    text = response.text[:500]
    try:
        body = response.json()
    except ValueError:
        return text
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if "detail" in body:
            return str(body["detail"])
    return text


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    payload: dict[str, Any],
    *,
    policy: RetryPolicy,
    what: str,
    error_cls: type[ProviderError] = ProviderError,
) -> Any:
    """POST `payload` as JSON and return the decoded JSON answer, retrying what is retryable."""
    for attempt in range(policy.max_retries + 1):
        last = attempt == policy.max_retries
        try:
            response = await client.post(url, json=payload)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            if last:
                raise NetworkError(f"{what}: {type(exc).__name__}: {exc}") from exc
            await asyncio.sleep(policy.delay(attempt, None))
            continue
        status = response.status_code
        if status < 400:
            try:
                return response.json()
            except ValueError as exc:
                raise error_cls(f"{what}: the answer is not JSON: {response.text[:200]!r}") from exc
        if status in (401, 403):
            raise AuthenticationError(f"{what}: {status} {_detail(response)}")
        if status == 429 or status >= 500:
            if last:
                if status == 429:
                    raise RateLimitError(
                        f"{what}: rate limited: {_detail(response)}",
                        retry_after=_retry_after(response),
                    )
                raise error_cls(f"{what}: {status} {_detail(response)}")
            await asyncio.sleep(policy.delay(attempt, _retry_after(response)))
            continue
        raise error_cls(f"{what}: {status} {_detail(response)}")
    raise AssertionError("unreachable")  # pragma: no cover
