"""Add-pipeline benchmark: the LoCoMo dev sessions through add(infer=True) against a fake LLM.

    .venv/bin/python bench/add_pipeline.py [--conversations 5] [--batch 2]

mem0's LoCoMo protocol: each session is added in batches of `--batch` turns, once for each
speaker (their turns as `user`, the other's as `assistant`, under their own user_id), with the
session date as `timestamp`. The LLM is the in-process fake OpenAI-compatible server over real
HTTP; it answers one fact per user turn (so memories accumulate as with a real model) and counts
tokens with the MiniLM WordPiece tokenizer (GPT tokenizers give similar counts for English). The
embedder is the default local MiniLM. Printed per add: LLM calls, prompt and completion tokens,
embedding calls, and pipeline time excluding the LLM's own time.

Reads ../shared/locomo/dev.json (CC BY-NC 4.0; never copied into the repo).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes

from tests.fakes.openai_server import ChatReply, FakeOpenAI  # noqa: E402

from engram import Memory  # noqa: E402
from engram.prompts import extract  # noqa: E402
from engram.providers.embedders.minilm import model_dir  # noqa: E402
from engram.providers.llm.openai import OpenAILLM  # noqa: E402

DATA = ROOT.parent / "shared" / "locomo" / "dev.json"


def session_date(text: str) -> str:
    """LoCoMo's "1:56 pm on 8 May, 2023" as ISO 8601."""
    return datetime.strptime(text, "%I:%M %p on %d %B, %Y").isoformat() + "+00:00"


class Responder:
    """One fact per NEW user turn; token counts from a real tokenizer."""

    def __init__(self) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def __call__(self, body: dict[str, Any]) -> ChatReply:
        system, user = (m["content"] for m in body["messages"][:2])
        new = user.split("NEW messages:\n", 1)[-1]
        facts = [
            {"text": " ".join(line.split(": ", 1)[1].split()[:20]), "event": "ADD"}
            for line in new.splitlines()
            if line.startswith("user: ") and len(line.split()) > 4
        ]
        text = json.dumps({"facts": facts})
        return ChatReply(text, self.count(system) + self.count(user), self.count(text))


def sessions(conversation: dict[str, Any]) -> list[tuple[str, list[dict[str, str]]]]:
    keys = [k for k in conversation if re.fullmatch(r"session_\d+", k)]
    keys.sort(key=lambda k: int(k.split("_")[1]))
    return [(conversation[f"{k}_date_time"], conversation[k]) for k in keys]


def run(conversations: int, batch: int, out_dir: Path) -> dict[str, list[float]]:
    data = json.loads(DATA.read_text())[:conversations]
    fake = FakeOpenAI()
    responder = Responder()
    fake.responder = responder
    llm = OpenAILLM(model="fake-gpt", base_url=fake.base_url, api_key="test-key")
    stats: dict[str, list[float]] = {
        k: [] for k in ("llm", "prompt", "completion", "embed", "overhead")
    }
    with Memory({"data_dir": str(out_dir)}, llm=llm) as memory:
        memory.add("warm up the model", user_id="warmup", infer=False)
        for index, item in enumerate(data):
            conv = item["conversation"]
            speakers = (conv["speaker_a"], conv["speaker_b"])
            for when, turns in sessions(conv):
                for me in speakers:
                    user_id = f"c{index}-{me}"
                    for start in range(0, len(turns), batch):
                        messages = [
                            {
                                "role": "user" if t["speaker"] == me else "assistant",
                                "content": t["text"],
                            }
                            for t in turns[start : start + batch]
                        ]
                        began = time.perf_counter()
                        result = memory.add(messages, user_id=user_id, timestamp=session_date(when))
                        elapsed = (time.perf_counter() - began) * 1000
                        usage = result["usage"]
                        llm_ms = sum(call["latency_ms"] for call in usage["calls"])
                        stats["llm"].append(usage["llm_calls"])
                        stats["prompt"].append(usage["prompt_tokens"])
                        stats["completion"].append(usage["completion_tokens"])
                        stats["embed"].append(usage["embedding_calls"])
                        stats["overhead"].append(elapsed - llm_ms)
    fake.close()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "out" / "add")
    args = parser.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    stats = run(args.conversations, args.batch, args.data_dir)

    def q(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    adds = len(stats["llm"])
    system = extract.render(extract.ExtractInput(messages=[], today="2023-05-08")).system
    setup = f"{args.conversations} conversations, {args.batch} turns per add, both speakers"
    print(f"adds: {adds} ({setup})")
    print(f"fixed system prompt: {len(system)} characters")
    print("per add              |   mean |    p50 |    p95 |    max")
    for label, key in (("LLM calls", "llm"), ("prompt tokens", "prompt"),
                       ("completion tokens", "completion"), ("embedding calls", "embed"),
                       ("pipeline ms (no LLM)", "overhead")):  # fmt: skip
        values = stats[key]
        print(f"{label:<21}| {statistics.mean(values):>6.1f} | {q(values, 0.5):>6.1f} | "
              f"{q(values, 0.95):>6.1f} | {max(values):>6.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
