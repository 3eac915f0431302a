"""Procedural memory: one summary of what an agent did, step by step, to reuse later."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from engram.core.messages import Message
from engram.prompts.base import Prompt

NAME = "procedural"
VERSION = "procedural-v1"


class ProceduralOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: str = Field(description="the task, then numbered steps with their key results")


_SYSTEM = """\
Summarize the agent's work in this conversation as a procedure it can reuse: first the task and \
its goal, then numbered steps, each with the action taken and its key result (exact values, \
names, errors). Keep the conversation's language. Answer with JSON only: {"summary": "..."}."""


def render(messages: list[Message]) -> Prompt[ProceduralOutput]:
    transcript = "\n".join(f"{m.name or m.role}: {m.content.strip()}" for m in messages)
    return Prompt(NAME, VERSION, _SYSTEM, f"Conversation:\n{transcript}", ProceduralOutput)
