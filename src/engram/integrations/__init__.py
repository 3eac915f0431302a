"""Thin adapters of Engram's memory to agent frameworks, each behind its extra:
`engram.integrations.langchain` (`engram-llm[langchain]`), `.llama_index`, `.autogen`, `.crewai`.

Each takes a `Memory` / `AsyncMemory`, or a mem0 `MemoryClient` / `AsyncMemoryClient` pointed at
`engram serve` when the framework runs away from the store. Importing this package imports no
framework. See docs/integrations.md.
"""
