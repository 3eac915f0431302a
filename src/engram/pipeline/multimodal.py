"""Turn the non-text parts of messages into text before extraction.

Images: described by the LLM when it supports vision (one call per image), else skipped with a
warning; an image URL whose host is not public is refused rather than handed to the model (its
provider would fetch it from wherever it runs). Documents (mdx, txt, pdf): fetched and read as
text. The parts are then gone; what remains is text, as if the user had typed it.
"""

from __future__ import annotations

import dataclasses

from engram.core.messages import Message
from engram.pipeline.extractors import Extractor
from engram.providers.documents import DocumentFetcher
from engram.providers.llm.base import Usage


async def expand_parts(
    messages: list[Message], extractor: Extractor, fetcher: DocumentFetcher, usage: Usage
) -> tuple[list[Message], list[str]]:
    warnings: list[str] = []
    out: list[Message] = []
    for message in messages:
        if not message.parts:
            out.append(message)
            continue
        texts = [message.content] if message.content.strip() else []
        for part in message.parts:
            if part.kind == "image":
                if not extractor.supports_vision:
                    warnings.append(
                        f"image skipped ({part.url[:60]}): no vision-capable LLM "
                        "(configure one with enable_vision)"
                    )
                    continue
                await fetcher.check_public(part.url, "image")  # the model fetches it
                description = await extractor.describe_image(part.url, usage)
                texts.append(f"[image: {description.strip()}]")
            else:
                text, warning = await fetcher.text(part.url, part.kind)
                texts.append(text)
                if warning:
                    warnings.append(warning)
        out.append(dataclasses.replace(message, content="\n".join(texts), parts=()))
    return out, warnings
