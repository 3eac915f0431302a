"""Run inside a virtualenv with the official `mem0ai` package: the documented filter examples
(2.x) or the 1.x narrowing parameters, through MemoryClient against a live Engram server whose
project holds the seeded memories. Usage: filters.py URL API_KEY CASES_JSON. Prints one JSON
object: case name -> {"search": labels, "get_all": labels}."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mem0 import MemoryClient

URL, KEY, CASES = sys.argv[1], sys.argv[2], sys.argv[3]
QUERY = "invoice budget hotels pizza flight dinner note"


def labels(answer: Any) -> list[str]:
    results = answer["results"] if isinstance(answer, dict) else answer
    return sorted(r["metadata"]["label"] for r in results)


def main() -> None:
    client = MemoryClient(api_key=KEY, host=URL)
    out = {}
    for case in json.loads(Path(CASES).read_text()):
        search = dict(case.get("search", {}))
        listing = dict(case.get("get_all", {}))
        found = client.search(QUERY, top_k=100, **search)
        listed = client.get_all(page=1, page_size=100, **listing)
        out[case["name"]] = {"search": labels(found), "get_all": labels(listed)}
    print(json.dumps(out))


main()
