"""Images and documents in messages: described, fetched safely, or skipped with a warning."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engram import AsyncMemory, NetworkError, ValidationError
from engram.providers._http import RetryPolicy
from engram.providers.documents import DocumentFetcher
from engram.providers.embedders.hashing import HashingEmbedder
from engram.providers.llm.openai import OpenAILLM
from engram.store.sqlite.store import SQLiteStore
from tests.fakes.docs_server import DocsServer, make_pdf
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def docs() -> Iterator[DocsServer]:
    server = DocsServer()
    yield server
    server.close()


def memory_with(tmp_path: Path, *, llm: OpenAILLM | None = None, **fetch: object) -> AsyncMemory:
    return AsyncMemory(
        embedder=HashingEmbedder(128), store=SQLiteStore(tmp_path / "m.db"), llm=llm,
        documents=DocumentFetcher(**fetch),  # type: ignore[arg-type]
    )  # fmt: skip


def vision_llm(fake_openai: FakeOpenAI) -> OpenAILLM:
    return OpenAILLM(base_url=fake_openai.base_url, api_key="test-key", enable_vision=True,
                     retry=RetryPolicy(max_retries=0))  # fmt: skip


def doc(kind: str, url: str) -> dict[str, object]:
    return {"role": "user", "content": {"type": kind, kind: {"url": url}}}


@pytest.fixture
async def offline(tmp_path: Path) -> AsyncIterator[AsyncMemory]:
    memory = memory_with(tmp_path, allow_private=True, timeout=0.3, max_bytes=1000)
    yield memory
    await memory.close()


async def test_text_markdown_and_pdf_documents_enter_extraction(
    offline: AsyncMemory, docs: DocsServer
) -> None:
    await offline.add(doc("txt_url", docs.url("/notes.txt")), user_id="a")
    await offline.add(doc("mdx_url", docs.url("/redirect")), user_id="a")
    await offline.add(doc("pdf_url", docs.url("/cv.pdf")), user_id="a")
    facts = {r["memory"] for r in (await offline.get_all(user_id="a"))["results"]}
    assert facts == {
        "Is allergic to peanuts",
        "Lives in Porto",
        "Works at Nimbus",
        "Works as a data analyst",
    }
    assert "/notes.md" in docs.requests  # the redirect was followed


async def test_data_urls_and_verbatim_documents(offline: AsyncMemory) -> None:
    payload = base64.b64encode(make_pdf("I love jazz.")).decode()
    await offline.add(doc("pdf_url", f"data:application/pdf;base64,{payload}"), user_id="a")
    text = "data:text/plain,I%20own%20a%20boat."
    result = await offline.add([doc("txt_url", text)], user_id="a", infer=False)
    assert [r["memory"] for r in result["results"]] == ["I own a boat."]
    facts = {r["memory"] for r in (await offline.get_all(user_id="a"))["results"]}
    assert facts == {"Loves jazz", "I own a boat."}


async def test_fetch_guards(offline: AsyncMemory, docs: DocsServer, tmp_path: Path) -> None:
    cases = [
        ("pdf_url", docs.url("/page.html"), ValidationError, "not a pdf"),
        ("txt_url", docs.url("/huge.txt"), ValidationError, "limit"),
        ("txt_url", docs.url("/missing.txt"), NetworkError, "404"),
        ("txt_url", docs.url("/slow.txt"), NetworkError, "Timeout"),
        ("txt_url", docs.url("/trickle.txt"), NetworkError, "Timeout"),  # overall deadline
        ("txt_url", "ftp://example.org/x.txt", ValidationError, "http"),
    ]
    for kind, url, error, message in cases:
        with pytest.raises(error, match=message):
            await offline.add(doc(kind, url), user_id="a")
    guarded = memory_with(tmp_path / "guarded")
    with pytest.raises(ValidationError, match="non-public"):
        await guarded.add(doc("txt_url", docs.url("/notes.txt")), user_id="a")
    await guarded.close()
    assert (await offline.get_all(user_id="a"))["total"] == 0


async def test_bad_parts_are_rejected(offline: AsyncMemory) -> None:
    with pytest.raises(ValidationError, match="unknown type"):
        await offline.add(
            {"role": "user", "content": {"type": "audio_url", "audio_url": {"url": "x"}}},
            user_id="a",
        )
    with pytest.raises(ValidationError, match="URL"):
        await offline.add(
            {
                "role": "user",
                "content": {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}},
            },
            user_id="a",
        )


async def test_images_without_vision_are_skipped_with_a_warning(offline: AsyncMemory) -> None:
    message = {"role": "user", "content": [
        {"type": "text", "text": "I live in Oslo."},
        {"type": "image_url", "image_url": {"url": "https://example.org/me.png"}},
    ]}  # fmt: skip
    result = await offline.add(message, user_id="a")
    assert [r["memory"] for r in result["results"]] == ["Lives in Oslo"]
    assert any("image skipped" in w for w in result["warnings"])
    only_image = await offline.add(
        doc("image_url", "https://example.org/x.png"), user_id="a", infer=False
    )
    assert only_image["results"] == []
    assert only_image["warnings"]


async def test_images_are_described_by_a_vision_llm(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    memory = memory_with(tmp_path, llm=vision_llm(fake_openai))
    fake_openai.reply(
        {"description": "A golden retriever on a beach"},
        {"facts": [{"text": "Has a golden retriever", "event": "ADD"}]},
    )
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    result = await memory.add(
        {"role": "user", "content": [{"type": "text", "text": "My dog!"}, image]}, user_id="a"
    )
    await memory.close()
    assert [r["memory"] for r in result["results"]] == ["Has a golden retriever"]
    assert result["usage"]["llm_calls"] == 2
    vision_request, extract_request = fake_openai.chat_requests
    parts = vision_request["json"]["messages"][1]["content"]
    assert parts[1] == image
    assert (
        "[image: A golden retriever on a beach]"
        in extract_request["json"]["messages"][1]["content"]
    )


async def test_private_image_urls_are_not_handed_to_the_vision_model(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    memory = memory_with(tmp_path, llm=vision_llm(fake_openai))
    try:
        for url in ("http://169.254.169.254/latest/meta-data/x.png", "http://127.0.0.1/me.png"):
            image = {"type": "image_url", "image_url": {"url": url}}
            with pytest.raises(ValidationError, match="non-public"):
                await memory.add({"role": "user", "content": [image]}, user_id="a")
        assert fake_openai.chat_requests == []
        assert (await memory.get_all(user_id="a"))["total"] == 0
    finally:
        await memory.close()
