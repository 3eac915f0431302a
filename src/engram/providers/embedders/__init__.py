"""Embedders: the `Embedder` protocol and its providers. `MiniLMEmbedder` (all-MiniLM-L6-v2,
local, the default), `OpenAIEmbedder` (any OpenAI-compatible endpoint), `HashingEmbedder` (no
model: for tests)."""

from engram.providers.embedders.base import Embedder
from engram.providers.embedders.hashing import HashingEmbedder
from engram.providers.embedders.minilm import MiniLMEmbedder
from engram.providers.embedders.openai import OpenAIEmbedder

__all__ = ["Embedder", "HashingEmbedder", "MiniLMEmbedder", "OpenAIEmbedder"]
