"""What a rendered prompt is: everything an LLM provider needs for one structured call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Prompt(Generic[M]):
    name: str
    version: str
    system: str
    user: str | list[dict[str, Any]]  # text, or OpenAI-style content parts (text and images)
    output: type[M]

    @property
    def schema(self) -> dict[str, Any]:
        return self.output.model_json_schema()

    def text(self) -> str:
        """The whole prompt as text (for golden files and token estimates)."""
        user = (
            self.user
            if isinstance(self.user, str)
            else "\n".join(
                str(p.get("text") or p.get("image_url", {}).get("url", "")) for p in self.user
            )
        )
        return f"[system]\n{self.system}\n[user]\n{user}\n"
