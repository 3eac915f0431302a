"""MiniLM's two graphs side by side: the int8 one against fp32, on real sentences.

    .venv/bin/python -m bench.embedding [--texts 3000] [--rounds 3]

The sentences are the turns of the LoCoMo conversations in ../shared/locomo/dev.json (read in
place, never copied). Printed: the cosine of each int8 vector with its fp32 vector (mean, 1st
percentile, min); CPU time per text at one thread, one text per call as a query is embedded
(process time, median of `--rounds` alternating passes over every text); and, to show that
short texts pay for no padding, the time per text by token count. The retrieval side of the
choice is `python -m bench.locomo.retrieval --recipes hybrid,vector --precision fp32|int8`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np

from bench.locomo.data import load
from engram.config import default_cache_dir
from engram.providers.embedders.minilm import MiniLMEmbedder


def sentences(limit: int) -> list[str]:
    texts = [turn.text for conv in load() for turn in conv.turns if turn.text.strip()]
    return texts[:limit]


def cpu_per_text(embedder: MiniLMEmbedder, texts: Sequence[str]) -> float:
    """Milliseconds of this process's CPU per text, one text per call."""
    start = time.process_time()
    for text in texts:
        embedder.embed_sync([text])
    return (time.process_time() - start) * 1000 / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts = sentences(args.texts)
    graphs = {
        name: MiniLMEmbedder(cache_dir=default_cache_dir(), threads=1, precision=name)
        for name in ("fp32", "int8")
    }
    vectors = {name: e.embed_sync(texts) for name, e in graphs.items()}
    cosines = (vectors["fp32"] * vectors["int8"]).sum(axis=1)
    print(f"{len(texts):,} LoCoMo turns (dev); int8 against fp32, cosine of each text's vectors:")
    print(f"  mean {cosines.mean():.4f}, 1st percentile {np.percentile(cosines, 1):.4f}, "
          f"min {cosines.min():.4f}")  # fmt: skip
    cpu: dict[str, list[float]] = {name: [] for name in graphs}
    for _ in range(args.rounds):
        for name, embedder in graphs.items():
            cpu[name].append(cpu_per_text(embedder, texts))
    fp32, int8 = (statistics.median(cpu[n]) for n in ("fp32", "int8"))
    print(f"CPU per text, one thread, one text per call (median of {args.rounds} passes):")
    print(f"  fp32 {fp32:.2f} ms, int8 {int8:.2f} ms: {fp32 / int8:.2f}x less with int8")
    tokenizer = graphs["int8"]._tokenizer
    lengths = [len(tokenizer.encode(t).ids) for t in texts]
    print("by tokens per text (int8, ms of CPU per text; no padding: cost follows length):")
    for low, high in ((0, 16), (16, 32), (32, 64), (64, 257)):
        group = [t for t, n in zip(texts, lengths, strict=True) if low <= n < high]
        if len(group) >= 20:
            ms = cpu_per_text(graphs["int8"], group[:300])
            print(f"  {low:>3}-{high - 1:<3} tokens: {ms:5.2f} ms ({len(group):,} texts)")


if __name__ == "__main__":
    main()
