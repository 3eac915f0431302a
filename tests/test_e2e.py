"""End to end on the defaults: `Memory()` with the real MiniLM model under $ENGRAM_HOME."""

from __future__ import annotations

import os
from pathlib import Path

from engram import Memory


def test_default_memory_recalls_by_meaning() -> None:
    home = Path(os.environ["ENGRAM_HOME"])
    with Memory() as memory:
        memory.add(
            [
                {"role": "user", "content": "I'm a robotics engineer at Nimbus."},
                {"role": "user", "content": "I'm allergic to peanuts."},
                {"role": "user", "content": "My daughter Emma started violin lessons."},
                {"role": "user", "content": "We moved to Lisbon in March."},
            ],
            user_id="alex",
            infer=False,
        )
        memory.add("I love hiking", user_id="sam", infer=False)

        def top(question: str) -> str:
            return str(memory.search(question, user_id="alex", top_k=1)["results"][0]["memory"])

        assert "Nimbus" in top("What is their profession?")
        assert "peanuts" in top("Which foods should be avoided when cooking for Alex?")
        assert "violin" in top("Does anyone in the family play an instrument?")
        assert "Lisbon" in top("Which city does Alex live in?")
        assert all(
            r["user_id"] == "alex" for r in memory.search("hiking", user_id="alex")["results"]
        )
    assert (home / "engram.db").exists()
    cache = Path(os.environ["ENGRAM_CACHE_DIR"])  # once per user, not per data directory
    assert list(cache.glob("minilm-*.onnx")) and not (home / "models").exists()
    with Memory() as reopened:  # persisted across instances
        assert reopened.get_all(user_id="alex")["total"] == 4
