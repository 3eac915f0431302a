"""LLMs: the `LLM` protocol, `BaseLLM` (retries, parsing with one repair, token accounting) and
its providers: `OpenAILLM` (OpenAI and every OpenAI-compatible endpoint) and `AnthropicLLM`."""

from engram.providers.llm.anthropic import AnthropicLLM
from engram.providers.llm.base import LLM, BaseLLM, Usage
from engram.providers.llm.openai import OpenAILLM

__all__ = ["AnthropicLLM", "BaseLLM", "LLM", "OpenAILLM", "Usage"]
