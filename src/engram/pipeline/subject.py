"""The scope's own subject in a search query.

The scope's own subject is not evidence inside the scope. Every memory of `user_id="alex"` is
about Alex, so the word "Alex" in "what should I not cook for Alex?" tells no memory from
another, yet it matched the one memory that spells it ("Name is Alex") by full text and pulled
it up by meaning. So the query is searched with the subject's names left out: its full-text
terms lose them, and it is embedded with a stand-in ("what should I not cook for the user?";
"the assistant" for an agent's names). The names are the scope's `user_id` and `agent_id` and
the names their memories state ("Name is Alex Moreno", "Hi, my name is Rosa"; the profile's
`name` with graph memory), found as words (`core.text.subject_spans`). A memory said by a named
speaker (`actor_id`) names that speaker, not the scope, and an agent's own memories are those
without a user. A query that says nothing but the name ("Who is Alex?") is searched as asked.
The speaker and graph signals still read the query as asked.

The stated names of a scope id are read once (the best full-text matches of "name" in its
memories: one `candidates` and one `get_many` call, and `profile` with graph memory) and then
remembered (`queries.ScopeNames`); a name stated later is learnt from the results of the first
search that returns its memory, and that search runs again (once) if its query uses the name.
"""

from __future__ import annotations

from dataclasses import dataclass

from engram.core.filters import And, Cond, Field, Node, Not, scope_of
from engram.core.text import (
    Name,
    names_of,
    query_terms,
    replace_spans,
    stated_name,
    subject_spans,
)
from engram.errors import FilterError
from engram.pipeline.context import Context
from engram.store.base import MemoryRecord


@dataclass(frozen=True, slots=True)
class Phrasing:
    """The query as searched: the text embedded and the full-text terms."""

    embedded: str
    terms: list[str]


STAND_IN = {"user_id": "the user", "agent_id": "the assistant"}  # for a subject's name
NAME_LOOKUP = 32  # best full-text matches of "name" read to find a scope id's stated names


def phrase(query: str, names: list[Name]) -> Phrasing:
    """The query with the subject's names left out: its terms lose them, its embedded text has
    a stand-in. As asked when it names nobody, or says nothing else."""
    spans = subject_spans(query, names) if names else []
    if spans:
        terms = query_terms(replace_spans(query, spans, dict.fromkeys(STAND_IN, " ")))
        if terms:
            return Phrasing(replace_spans(query, spans, STAND_IN), terms)
    return Phrasing(query, query_terms(query))


async def subject_names(ctx: Context, where: Node | None, *, graph: bool) -> list[Name] | None:
    """The names of the scope's user and agent: their ids and what their memories state (None
    when the filter's ids conflict: nothing matches it anyway)."""
    scope = _scope(where)
    if scope is None:
        return None
    names: list[Name] = []
    for field in STAND_IN:
        if field not in scope:
            continue
        key = (field, scope[field])
        stated = ctx.queries.names.get(key)
        if stated is None:
            stated = await _stated_names(ctx, key, graph=graph)
            ctx.queries.names.put(key, stated)
        names += names_of(scope[field], stated=False, of=field)
        for name in stated:
            names += names_of(name, stated=True, of=field)
    return names


async def _stated_names(ctx: Context, key: tuple[str, str], *, graph: bool) -> tuple[str, ...]:
    """What the id's own memories (and profile) say its name is."""
    field, value = key
    found = await ctx.store.candidates(
        None, ["name"], _own_memories(key), today=ctx.today(), n_vector=0,
        n_keyword=NAME_LOOKUP,
    )  # fmt: skip
    records = await ctx.store.get_many([c.memory_id for c in found if c.actor_id is None])
    names = {n: None for r in records.values() if _own_words(r) and (n := stated_name(r.memory))}
    if graph and field == "user_id":
        profiled = (await ctx.store.profile({field: value})).get("name", {}).get("value")
        if isinstance(profiled, str) and profiled.strip():
            names[profiled.strip()] = None
    return tuple(names)


def _scope(where: Node | None) -> dict[str, str] | None:
    try:
        return scope_of(where)
    except FilterError:  # conflicting ids: nothing can match anyway
        return None


def _own_memories(key: tuple[str, str]) -> Node:
    """A user's memories (with any agent); an agent's own, those of no user."""
    field, value = key
    own = Cond(Field("text", field), "eq", value)
    if field == "user_id":
        return own
    return And((own, Not(Cond(Field("text", "user_id"), "exists", None))))


def learn(ctx: Context, where: Node | None, query: str, records: list[MemoryRecord]) -> bool:
    """Learn the names the records state for the scope's ids; whether the query uses a new one."""
    scope = _scope(where) or {}
    learnt = False
    for record in records:
        if not _own_words(record) or "name" not in record.memory.casefold():
            continue
        name = stated_name(record.memory)
        key = _owner(record, scope)
        if name is None or key is None or not ctx.queries.names.learn(key, name):
            continue
        learnt |= bool(subject_spans(query, names_of(name, stated=True, of=key[0])))
    return learnt


def _owner(record: MemoryRecord, scope: dict[str, str]) -> tuple[str, str] | None:
    """Whose memory the record is, among the scope's user and agent."""
    if "user_id" in scope and record.user_id == scope["user_id"]:
        return ("user_id", scope["user_id"])
    if "agent_id" in scope and record.agent_id == scope["agent_id"] and record.user_id is None:
        return ("agent_id", scope["agent_id"])
    return None


def _own_words(record: MemoryRecord) -> bool:
    """A memory in the subject's own voice: not a named speaker's turn, not the assistant's
    ("Hi, my name is Rosa, your travel assistant" names the assistant, not the user)."""
    return record.actor_id is None and record.role != "assistant"
