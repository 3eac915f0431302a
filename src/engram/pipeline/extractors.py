"""Where facts come from: an LLM (one structured call per add) or the offline rules.

Both implement `Extractor`, so the add pipeline does not know which one it talks to."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from engram.core.messages import Message
from engram.pipeline.offline import offline_extract
from engram.prompts import extract, procedural, vision
from engram.prompts.extract import ExtractInput, ExtractOutput
from engram.providers.llm.base import LLM, Usage

logger = logging.getLogger("engram.pipeline")


class Extractor(Protocol):
    name: str
    supports_vision: bool

    async def extract(self, data: ExtractInput, usage: Usage) -> ExtractOutput: ...

    async def summarize_procedure(self, messages: list[Message], usage: Usage) -> str: ...

    async def describe_image(self, url: str, usage: Usage) -> str: ...

    async def aclose(self) -> None: ...


class LLMExtractor:
    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.name = f"llm:{llm.model}"
        self.supports_vision = llm.supports_vision

    async def extract(self, data: ExtractInput, usage: Usage) -> ExtractOutput:
        return await self.llm.generate(extract.render(data), usage=usage)

    async def summarize_procedure(self, messages: list[Message], usage: Usage) -> str:
        return (await self.llm.generate(procedural.render(messages), usage=usage)).summary

    async def describe_image(self, url: str, usage: Usage) -> str:
        return (await self.llm.generate(vision.render(url), usage=usage)).description

    async def aclose(self) -> None:
        await self.llm.aclose()


class OfflineExtractor:
    """Deterministic rules, no model: see `pipeline/offline.py` for what they recognise."""

    name = "offline"
    supports_vision = False

    _announced = False

    def __init__(self) -> None:
        if not OfflineExtractor._announced:  # once per process
            OfflineExtractor._announced = True
            logger.info(
                "no LLM configured (nor OPENAI_API_KEY / ANTHROPIC_API_KEY): "
                "add(infer=True) uses the offline rule-based extractor"
            )

    async def extract(self, data: ExtractInput, usage: Usage) -> ExtractOutput:
        # Pure Python over the whole conversation: off the event loop, which serves others.
        return await asyncio.to_thread(offline_extract, data)

    async def summarize_procedure(self, messages: list[Message], usage: Usage) -> str:
        steps = [m for m in messages if m.role != "system" and m.content.strip()]
        lines = [f"{i}. {m.role}: {m.content.strip()}" for i, m in enumerate(steps, start=1)]
        return "Procedure (verbatim steps):\n" + "\n".join(lines)

    async def describe_image(self, url: str, usage: Usage) -> str:
        raise AssertionError("the offline extractor has no vision; callers check supports_vision")

    async def aclose(self) -> None:
        return None
