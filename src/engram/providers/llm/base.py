"""The LLM interface, and the base class that owns what every provider shares.

Written once here: the call's timeout and retries (through `providers._http`), structured output
(the output model's JSON schema is sent where the endpoint takes it), tolerant parsing of the answer
(`core.jsonparse`), one repair retry that shows the model its own answer and the error, token
accounting, and a log line per call with prompt name and version, model, latency and tokens.
A provider implements `_chat()` only.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel
from pydantic import ValidationError as SchemaError

from engram.core.jsonparse import JSONNotFoundError, extract_json
from engram.errors import LLMError, LLMOutputError, ProviderError
from engram.prompts.base import Prompt
from engram.providers._http import RetryPolicy

logger = logging.getLogger("engram.llm")
M = TypeVar("M", bound=BaseModel)
Messages = list[dict[str, Any]]


@dataclass(slots=True)
class Usage:
    """LLM calls and tokens, accumulated over one operation (an `add`, say)."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    embedding_calls: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)

    def record(self, prompt: Prompt[Any], model: str, reply: Reply, seconds: float) -> None:
        self.llm_calls += 1
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        self.calls.append(
            {
                "prompt": prompt.name,
                "prompt_version": prompt.version,
                "model": model,
                "latency_ms": round(seconds * 1000, 1),
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
            }
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "llm_calls": self.llm_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "embedding_calls": self.embedding_calls,
            "calls": list(self.calls),
        }


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @classmethod
    def checked(cls, text: object, usage: object, names: tuple[str, str], what: str) -> Reply:
        """A provider's answer as it came: the text must be a string (or null: empty), the
        usage an object whose two counts (named `names`) are absent or whole numbers >= 0.
        Anything else is an `LLMOutputError` naming what was wrong."""
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise LLMOutputError(f"{what}: the answer's text is a {type(text).__name__}, not text")
        if usage is None:
            usage = {}
        if not isinstance(usage, dict):
            raise LLMOutputError(f"{what}: `usage` is a {type(usage).__name__}, not an object")
        counts = []
        for name in names:
            value = usage.get(name)
            if value is None:
                value = 0
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LLMOutputError(f"{what}: usage `{name}` is {str(value)[:50]!r}, not a count")
            counts.append(value)
        return cls(text, counts[0], counts[1])


DEADLINE = 180.0  # seconds: every LLM call of one add (or of one call outside an add)
_operation_start: ContextVar[float | None] = ContextVar("engram_llm_operation", default=None)


@contextmanager
def one_operation() -> Iterator[None]:
    """The LLM calls made within this block (one add: its extraction, its images) share one
    deadline, counted from the block's start; outside one, each call has its own."""
    token = _operation_start.set(time.monotonic())
    try:
        yield
    finally:
        _operation_start.reset(token)


class LLM(Protocol):
    """A language model that answers prompts with validated structured output."""

    model: str
    supports_vision: bool

    async def generate(self, prompt: Prompt[M], *, usage: Usage | None = None) -> M: ...

    async def aclose(self) -> None: ...


_REPAIR = (
    "Your answer could not be used: {error}. Answer again with only the JSON object that "
    "matches the requested format."
)


class BaseLLM(abc.ABC):
    """Shared behaviour; subclasses implement `_chat(messages, schema)`."""

    supports_vision = False

    def __init__(
        self,
        *,
        model: str,
        temperature: float | None = 0.1,
        max_tokens: int = 2000,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        enable_vision: bool = False,
        headers: dict[str, str] | None = None,
        deadline: float = DEADLINE,
    ) -> None:
        self.model = model
        self.deadline = deadline
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.retry = retry or RetryPolicy()
        self.supports_vision = enable_vision
        self._client = httpx.AsyncClient(timeout=timeout, headers=headers or {})

    async def generate(self, prompt: Prompt[M], *, usage: Usage | None = None) -> M:
        """One structured answer, validated against `prompt.output`; at most one repair retry."""
        messages: Messages = [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": prompt.user},
        ]
        start = _operation_start.get() or time.monotonic()
        try:
            async with asyncio.timeout(max(0.0, start + self.deadline - time.monotonic())):
                return await self._generate(prompt, messages, usage)
        except TimeoutError as exc:
            raise LLMError(
                f"{self.model}: no answer within the deadline of {self.deadline:g} s (llm "
                "config `deadline`: the time all LLM calls of one add may take, retries "
                "included); nothing was written",
                details={"deadline": self.deadline},
            ) from exc

    async def _generate(self, prompt: Prompt[M], messages: Messages, usage: Usage | None) -> M:
        for attempt in (1, 2):
            reply = await self._timed_chat(prompt, messages, usage)
            try:
                return prompt.output.model_validate(extract_json(reply.text))
            except (JSONNotFoundError, SchemaError) as exc:
                error = _describe(exc)
                if attempt == 2:
                    raise LLMOutputError(
                        f"{self.model} gave no valid answer for '{prompt.name}' after a repair "
                        f"retry: {error}",
                        details={"prompt": prompt.name, "answer": reply.text[:500]},
                    ) from exc
                logger.warning("repairing the answer to %s: %s", prompt.name, error)
                messages = [
                    *messages,
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": _REPAIR.format(error=error)},
                ]
        raise AssertionError("unreachable")  # pragma: no cover

    async def _timed_chat(
        self, prompt: Prompt[Any], messages: Messages, usage: Usage | None
    ) -> Reply:
        start = time.perf_counter()
        try:
            reply = await self._chat(messages, prompt)
        except LLMError:
            raise
        except ProviderError as exc:  # network, rate limit, auth: still an LLM failure to callers
            raise LLMError(f"{self.model}: {exc}", details={"cause": exc.code}) from exc
        seconds = time.perf_counter() - start
        if usage is not None:
            usage.record(prompt, self.model, reply, seconds)
        logger.info(
            "llm call prompt=%s version=%s model=%s latency_ms=%.0f prompt_tokens=%d "
            "completion_tokens=%d",
            prompt.name, prompt.version, self.model, seconds * 1000, reply.prompt_tokens,
            reply.completion_tokens,
        )  # fmt: skip
        return reply

    @abc.abstractmethod
    async def _chat(self, messages: Messages, prompt: Prompt[Any]) -> Reply:
        """Send the messages in the provider's wire format; return the answer's text and tokens."""

    async def aclose(self) -> None:
        await self._client.aclose()


def _describe(exc: Exception) -> str:
    if isinstance(exc, SchemaError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the answer"
        return f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
    return str(exc)
