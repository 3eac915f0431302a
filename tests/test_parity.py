"""Memory mirrors AsyncMemory exactly; the public namespace is sorted and complete."""

from __future__ import annotations

import inspect

import engram
from engram import AsyncMemory, Memory

PUBLIC = [
    "add", "search", "get", "get_all", "update", "delete", "delete_all", "history", "reset",
    "batch_update", "batch_delete", "close", "from_config",
]  # fmt: skip


def _public_methods(cls: type) -> set[str]:
    return {
        name
        for name, value in vars(cls).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, classmethod))
    }


def test_sync_and_async_have_the_same_methods() -> None:
    assert _public_methods(Memory) == _public_methods(AsyncMemory)
    assert set(PUBLIC) <= _public_methods(Memory)


def test_sync_and_async_signatures_match() -> None:
    for name in _public_methods(AsyncMemory):
        sync_sig = inspect.signature(getattr(Memory, name))
        async_sig = inspect.signature(getattr(AsyncMemory, name))
        assert list(sync_sig.parameters.values()) == list(async_sig.parameters.values()), name
        assert inspect.iscoroutinefunction(getattr(AsyncMemory, name)) != (name == "from_config")


def test_context_managers() -> None:
    assert hasattr(Memory, "__enter__") and hasattr(Memory, "__exit__")
    assert hasattr(AsyncMemory, "__aenter__") and hasattr(AsyncMemory, "__aexit__")


def test_all_is_sorted_and_importable() -> None:
    assert engram.__all__ == sorted(engram.__all__)
    for name in engram.__all__:
        assert hasattr(engram, name)
