"""Run by the CrewAI virtualenv (tests/integrations/test_crewai.py): the ```python crewai
example of the docs, as written (the test saved it to FILE), in a scratch directory (where its
`scratch/...` data directory goes). Usage: crewai_docs.py FILE. Prints "ok crewai docs"."""

from __future__ import annotations

import os
import runpy
import sys
import tempfile

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        runpy.run_path(sys.argv[1], run_name="__main__")
    print("ok crewai docs")
