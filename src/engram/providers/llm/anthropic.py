"""Anthropic's Messages API. Structured output goes through a forced tool call whose input schema
is the prompt's output model."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from engram.errors import LLMError
from engram.prompts.base import Prompt
from engram.providers._http import RetryPolicy, post_json
from engram.providers.llm.base import DEADLINE, BaseLLM, Messages, Reply

API_VERSION = "2023-06-01"
_DATA_URL = re.compile(r"^data:(image/[\w.+-]+);base64,(.+)$", re.DOTALL)


class AnthropicLLM(BaseLLM):
    def __init__(
        self,
        *,
        model: str = "claude-sonnet-4-5",
        base_url: str = "https://api.anthropic.com",
        api_key: str | None = None,
        temperature: float | None = 0.1,
        max_tokens: int = 2000,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        enable_vision: bool = False,
        deadline: float = DEADLINE,
    ) -> None:
        headers = {"anthropic-version": API_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        super().__init__(
            model=model, temperature=temperature, max_tokens=max_tokens, timeout=timeout,
            retry=retry, enable_vision=enable_vision, headers=headers, deadline=deadline,
        )  # fmt: skip
        self.base_url = base_url.rstrip("/")

    def _payload(self, messages: Messages, prompt: Prompt[Any]) -> dict[str, Any]:
        system = "\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [
            {"role": m["role"], "content": _content(m["content"])}
            for m in messages
            if m["role"] != "system"
        ]
        payload: dict[str, Any] = {
            "model": self.model,
            "system": system,
            "messages": turns,
            "max_tokens": self.max_tokens,
            "tools": [
                {
                    "name": prompt.name,
                    "description": f"Record the {prompt.name} result.",
                    "input_schema": prompt.schema,
                }
            ],
            "tool_choice": {"type": "tool", "name": prompt.name},
        }
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        return payload

    async def _chat(self, messages: Messages, prompt: Prompt[Any]) -> Reply:
        body = await post_json(
            self._client, f"{self.base_url}/v1/messages", self._payload(messages, prompt),
            policy=self.retry, what=f"messages ({self.model})", error_cls=LLMError,
        )  # fmt: skip
        try:
            blocks = body["content"]
            tool = next((b for b in blocks if b.get("type") == "tool_use"), None)
            if tool is not None:
                text: object = json.dumps(tool.get("input"))
            else:
                parts = [b.get("text") for b in blocks if b.get("type") == "text"]
                text = "".join(parts) if all(isinstance(t, str) for t in parts) else parts
            usage = body.get("usage")
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise LLMError(f"unexpected Anthropic answer: {str(body)[:200]}") from exc
        return Reply.checked(
            text, usage, ("input_tokens", "output_tokens"), f"messages ({self.model})"
        )


def _content(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """OpenAI-style content parts to Anthropic blocks (text and images)."""
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "image_url":
            url = part["image_url"]["url"]
            match = _DATA_URL.match(url)
            if match:
                base64.b64decode(match.group(2), validate=True)
                source = {"type": "base64", "media_type": match.group(1), "data": match.group(2)}
            else:
                source = {"type": "url", "url": url}
            blocks.append({"type": "image", "source": source})
        else:
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
    return blocks
