"""docs/integrations.md's LlamaIndex examples, run as written in a scratch directory (run in
.venv-int-llamaindex): the ```python llamaindex blocks on the library store; given a server's URL
and an API key, the ```python llamaindex-mem0 blocks against it (their placeholder host and key
replaced), and the memory they put is found there once the queued add ran."""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[3] / "docs" / "integrations.md"
PLACEHOLDERS = ('api_key="eg-..."', 'host="http://127.0.0.1:8000"')


def blocks(tag: str) -> list[str]:
    found = re.findall(rf"```python {tag}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert found, f"no ```python {tag} block in docs/integrations.md"
    return found


def run(block: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


def main() -> None:
    os.chdir(tempfile.mkdtemp())
    for block in blocks("llamaindex"):
        run(block)
    if len(sys.argv) == 3:
        url, key = sys.argv[1:]
        for example in blocks("llamaindex-mem0"):
            assert all(p in example for p in PLACEHOLDERS), example
            live = example.replace(PLACEHOLDERS[0], f"api_key={key!r}")
            namespace = run(live.replace(PLACEHOLDERS[1], f"host={url!r}"))
            client = namespace["client"]
            deadline = time.monotonic() + 30
            while not client.get_all(filters={"user_id": "alice"})["results"]:
                assert time.monotonic() < deadline, "the example's memory was never stored"
                time.sleep(0.1)
    print("ok llamaindex docs")


if __name__ == "__main__":
    main()
