"""docs/integrations.md's LangChain example (its ```python langchain blocks), run as written in a
scratch directory (run in .venv-int-langchain)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "integrations.md"


def main() -> None:
    blocks = re.findall(r"```python langchain\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks, "no ```python langchain block in docs/integrations.md"
    os.chdir(tempfile.mkdtemp())
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
    print("ok langchain docs")


if __name__ == "__main__":
    main()
