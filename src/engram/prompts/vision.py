"""Describe an image from a conversation, so that its content can enter fact extraction."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engram.prompts.base import Prompt

NAME = "vision"
VERSION = "vision-v1"


class VisionOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    description: str = Field(description="what the image shows, with any readable text")


_SYSTEM = """\
Describe the image for someone who cannot see it, in one short paragraph: what it shows, any \
people, places, objects and readable text. Answer with JSON only: {"description": "..."}."""


def render(image_url: str, caption: str | None = None) -> Prompt[VisionOutput]:
    parts: list[dict[str, Any]] = [
        {"type": "text", "text": caption or "Describe this image."},
        {"type": "image_url", "image_url": {"url": image_url}},
    ]
    return Prompt(NAME, VERSION, _SYSTEM, parts, VisionOutput)
