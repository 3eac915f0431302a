"""The public surface is declared: each public package has one sorted `__all__`, every name in it
imports, and what the docs tell users to import is importable from where they say."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PUBLIC = [
    "engram", "engram.providers.embedders", "engram.providers.llm", "engram.store", "engram.types",
]  # fmt: skip
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    names = list(module.__all__)
    assert names == sorted(names), f"{name}.__all__ is not sorted"
    assert len(set(names)) == len(names)
    for item in names:
        assert hasattr(module, item), f"{name}.{item} is in __all__ but missing"
    defined = {n for n, v in vars(module).items() if not n.startswith("_") and _public(v, name)}
    assert defined <= set(names), f"{name} exposes undeclared names: {defined - set(names)}"


def _public(value: object, package: str) -> bool:
    """A class or function defined in the package's own tree (not a re-exported module)."""
    owner = getattr(value, "__module__", None)
    return isinstance(value, type | type(len)) and str(owner).startswith("engram")


def test_documented_imports_work() -> None:
    pattern = re.compile(r"^\s*from (engram[\w.]*) import ([\w, ]+)$", re.MULTILINE)
    found = [(m.group(1), m.group(2)) for doc in DOCS for m in pattern.finditer(doc.read_text())]
    assert found
    for module_name, names in found:
        defined = _defined(module_name)
        for name in (n.strip() for n in names.split(",")):
            assert name in defined, f"docs import {name} from {module_name}"


def _defined(module_name: str) -> set[str]:
    """The names a module defines. The framework integrations need their framework, which
    lives in its own virtualenv (tests/integrations): their source is read instead."""
    if not module_name.startswith("engram.integrations."):
        return set(dir(importlib.import_module(module_name)))
    path = ROOT / "src" / Path(*module_name.split(".")).with_suffix(".py")
    tree = ast.parse(path.read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef |
                                                      ast.AsyncFunctionDef)}  # fmt: skip
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names
