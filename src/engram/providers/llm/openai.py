"""OpenAI-compatible chat completions: OpenAI, Azure OpenAI, Ollama, vLLM, LM Studio, Groq,
Together, DeepSeek, xAI, OpenRouter and anything else that speaks `/chat/completions`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from engram.errors import LLMError
from engram.prompts.base import Prompt
from engram.providers._http import RetryPolicy, post_json
from engram.providers.llm.base import DEADLINE, BaseLLM, Messages, Reply

StructuredMode = Literal["json_schema", "json_object", "none"]


@dataclass(frozen=True, slots=True)
class Preset:
    base_url: str
    api_key_env: str | None
    model: str
    structured: StructuredMode = "json_schema"


PRESETS: dict[str, Preset] = {
    "openai": Preset("https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4.1-mini"),
    "ollama": Preset("http://localhost:11434/v1", None, "llama3.1"),
    "vllm": Preset("http://localhost:8000/v1", "VLLM_API_KEY", "default"),
    "lmstudio": Preset("http://localhost:1234/v1", None, "local-model"),
    "groq": Preset("https://api.groq.com/openai/v1", "GROQ_API_KEY", "llama-3.3-70b-versatile",
                   "json_object"),
    "together": Preset("https://api.together.xyz/v1", "TOGETHER_API_KEY",
                       "meta-llama/Llama-3.3-70B-Instruct-Turbo", "json_object"),
    "deepseek": Preset("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "deepseek-chat",
                       "json_object"),
    "xai": Preset("https://api.x.ai/v1", "XAI_API_KEY", "grok-3-mini"),
    "openrouter": Preset("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY",
                         "openai/gpt-4.1-mini"),
}  # fmt: skip


class OpenAILLM(BaseLLM):
    """Structured output as `response_format` json_schema, json_object, or plain text (`none`).

    An endpoint that refuses json_schema with a 400 is asked again once with json_object, and
    keeps that mode afterwards."""

    def __init__(
        self,
        *,
        model: str = "gpt-4.1-mini",
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        structured: StructuredMode = "json_schema",
        temperature: float | None = 0.1,
        max_tokens: int = 2000,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        enable_vision: bool = False,
        azure_api_version: str | None = None,
        headers: dict[str, str] | None = None,
        deadline: float = DEADLINE,
    ) -> None:
        auth: dict[str, str] = {}
        if api_key and azure_api_version:
            auth = {"api-key": api_key}
        elif api_key:
            auth = {"Authorization": f"Bearer {api_key}"}
        super().__init__(
            model=model, temperature=temperature, max_tokens=max_tokens, timeout=timeout,
            retry=retry, enable_vision=enable_vision, headers={**auth, **(headers or {})},
            deadline=deadline,
        )  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.structured: StructuredMode = structured
        self._azure_api_version = azure_api_version

    def openai_endpoint(self) -> tuple[str, dict[str, str]] | None:
        """The base URL (`.../v1`) of this OpenAI-compatible API and the headers that authorize
        a request (what the chat proxy forwards to); None for Azure's deployment URLs, which
        take no client's `model`."""
        if self._azure_api_version:
            return None
        auth = {k: v for k, v in self._client.headers.items()
                if k.lower() in ("authorization", "api-key")}  # fmt: skip
        return self.base_url, auth

    @property
    def _url(self) -> str:
        if self._azure_api_version:
            return f"{self.base_url}/chat/completions?api-version={self._azure_api_version}"
        return f"{self.base_url}/chat/completions"

    def _payload(self, messages: Messages, prompt: Prompt[Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
        }
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if self.structured == "json_schema":
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": prompt.name, "schema": prompt.schema, "strict": False},
            }
        elif self.structured == "json_object":
            payload["response_format"] = {"type": "json_object"}
        return payload

    async def _chat(self, messages: Messages, prompt: Prompt[Any]) -> Reply:
        try:
            body = await self._post(messages, prompt)
        except LLMError as exc:
            if self.structured != "json_schema" or "400" not in str(exc):
                raise
            self.structured = "json_object"  # an older server: fall back once, for good
            body = await self._post(messages, prompt)
        what = f"chat completion ({self.model})"
        try:
            choice = body["choices"][0]
            reply = Reply.checked(
                choice["message"].get("content"), body.get("usage"),
                ("prompt_tokens", "completion_tokens"), what,
            )  # fmt: skip
            truncated = choice.get("finish_reason") == "length"
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMError(f"unexpected chat completion answer: {str(body)[:200]}") from exc
        if truncated and not reply.text.rstrip().endswith("}"):
            text = reply.text + "\n(truncated: max_tokens reached)"
            return Reply(text, reply.prompt_tokens, reply.completion_tokens)
        return reply

    async def _post(self, messages: Messages, prompt: Prompt[Any]) -> Any:
        return await post_json(
            self._client, self._url, self._payload(messages, prompt), policy=self.retry,
            what=f"chat completion ({self.model})", error_cls=LLMError,
        )  # fmt: skip
