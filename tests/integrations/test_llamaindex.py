"""engram.integrations.llama_index against the real llama-index-core, in its own virtualenv
(`.venv-int-llamaindex`): over the library store; over `engram serve` through mem0's official
client, with llama-index-memory-mem0's `Mem0Memory` pointed at it (and its `from_client`
defect); and docs/integrations.md's LlamaIndex example as written."""

from __future__ import annotations

from pathlib import Path

from tests.integrations.venv import mem0_env, run_in
from tests.server.live import ADMIN_KEY, LiveServer


def test_library_store(tmp_path: Path) -> None:
    done = run_in("llamaindex", "llamaindex_adapters.py", env=mem0_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok llamaindex library")


def test_remote_through_mem0_client(server: LiveServer, tmp_path: Path) -> None:
    done = run_in("llamaindex", "llamaindex_adapters.py", server.url, ADMIN_KEY,
                  env=mem0_env(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok llamaindex remote")


def test_docs_examples(server: LiveServer, tmp_path: Path) -> None:
    done = run_in("llamaindex", "llamaindex_docs.py", server.url, ADMIN_KEY,
                  env=mem0_env(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok llamaindex docs")
