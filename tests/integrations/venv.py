"""Running a script inside an integration's own virtualenv (`.venv-int-<name>`, made by
`make integrations` from tests/integrations/requirements-<name>.txt): the framework is real and
its dependencies stay out of Engram's virtualenv."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.server.live import installed

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).parent / "scripts"
DOCS = ROOT / "docs" / "integrations.md"


def run_in(name: str, script: str, *args: str, env: dict[str, str] | None = None,
           timeout: float = 600) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """`tests/integrations/scripts/<script>` run by the virtualenv of integration `name`; skipped
    with a printed reason on a developer machine without it, failed in CI."""
    python = installed(ROOT / f".venv-int-{name}" / "bin" / "python", name, "integrations")
    return subprocess.run(
        [str(python), str(SCRIPTS / script), *args], capture_output=True, text=True,
        timeout=timeout, cwd=ROOT, check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip


def mem0_env(home: Path) -> dict[str, str]:
    """mem0's client without telemetry, its ~/.mem0 under the test's directory."""
    return {"MEM0_TELEMETRY": "False", "HOME": str(home)}


def ok(done: subprocess.CompletedProcess[str], line: str) -> None:
    """The script succeeded and its last line is `line`."""
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == line, done.stdout + done.stderr


def docs_blocks(tag: str) -> list[str]:
    """The ```python <tag> blocks of docs/integrations.md."""
    found = re.findall(rf"```python {tag}\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert found, f"no ```python {tag} block in {DOCS}"
    return found
