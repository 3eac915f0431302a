"""The offline extractor's rules: facts from the user's statements, reconciled by text.

Splits user messages into statements; skips questions, greetings and filler; rewrites common
first-person openings into self-contained facts. A fact already stored (same text) is NONE.
"""

from __future__ import annotations

from engram.pipeline.offline_rules import extract_facts
from engram.prompts.extract import ExtractInput, ExtractOutput, Fact


def offline_extract(data: ExtractInput) -> ExtractOutput:
    known = {text.lower(): i for i, text in enumerate(data.existing)}
    facts = []
    for text in extract_facts(data.messages):
        index = known.get(text.lower())
        if index is not None:
            facts.append(Fact(text=text, event="NONE", id=index))
        else:
            facts.append(Fact(text=text, event="ADD"))
    return ExtractOutput(facts=facts)
