"""The QA harness's two LLM tasks: answer from memories, and judge the answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from engram.prompts.base import Prompt

ANSWER_VERSION = "locomo-answer-v1"
JUDGE_VERSION = "locomo-judge-v1"


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    answer: str


class Verdict(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: Literal["CORRECT", "WRONG"]


_ANSWER = """\
You answer questions about a long conversation between two people, using only the memories \
given (each with the date it was said). Resolve relative dates ("last year") against the \
memory's date. Answer in a few words. If the memories do not say, answer "unknown". \
Answer with JSON only: {"answer": "..."}."""

_JUDGE = """\
You grade an answer against the gold answer to a question. Be generous: the answer is CORRECT \
if it has the same meaning or refers to the same thing/date/time period as the gold answer, \
even if worded differently or longer; otherwise WRONG. Answer with JSON only: \
{"label": "CORRECT"} or {"label": "WRONG"}."""


def answer(question: str, memories: list[str]) -> Prompt[Answer]:
    context = "\n".join(f"- {m}" for m in memories) or "(no memories)"
    return Prompt(
        "locomo-answer",
        ANSWER_VERSION,
        _ANSWER,
        f"Memories:\n{context}\n\nQuestion: {question}",
        Answer,
    )


def judge(question: str, gold: str, generated: str) -> Prompt[Verdict]:
    user = f"Question: {question}\nGold answer: {gold}\nGenerated answer: {generated}"
    return Prompt("locomo-judge", JUDGE_VERSION, _JUDGE, user, Verdict)
