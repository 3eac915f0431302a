"""engram.integrations.langchain against the real langchain-core, in its own virtualenv
(`.venv-int-langchain`): over the library store, over `engram serve` through mem0's official
client, and docs/integrations.md's LangChain example as written."""

from __future__ import annotations

from pathlib import Path

from tests.integrations.venv import mem0_env, run_in
from tests.server.live import ADMIN_KEY, LiveServer


def test_library_store() -> None:
    done = run_in("langchain", "langchain_adapters.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok langchain library")


def test_remote_through_mem0_client(server: LiveServer, tmp_path: Path) -> None:
    done = run_in("langchain", "langchain_adapters.py", server.url, ADMIN_KEY,
                  env=mem0_env(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok langchain remote")


def test_docs_example() -> None:
    done = run_in("langchain", "langchain_docs.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok langchain docs")
