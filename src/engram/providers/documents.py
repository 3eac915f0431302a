"""Fetch documents named in messages (mdx/txt/pdf URLs, or data: URLs) and return their text.

Guarded: http(s) only; every hop's host must resolve to public addresses unless
`allow_private=True` (no loopback, private, link-local, reserved or multicast targets), and the
request goes to the address checked (`providers/_net.py`); redirects are followed by hand (at
most 3), each one checked; `timeout` is the whole download's deadline; a size cap read as a
stream; the content type must fit the kind of document. PDFs need the `pdf` extra
(pypdf).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
from collections.abc import Iterator
from contextvars import ContextVar
from urllib.parse import unquote_to_bytes, urljoin

import httpx

from engram.errors import MissingDependencyError, NetworkError, ValidationError
from engram.providers._net import target

MAX_REDIRECTS = 3
_TYPES = {
    "pdf": ("application/pdf", "application/octet-stream"),
    "mdx": ("text/", "application/octet-stream", "application/x-mdx", "application/markdown"),
    "txt": ("text/", "application/octet-stream"),
}


# Set by whoever runs an add for someone allowed private addresses (a server's project that
# opted in): the documents of that add may come from them too.
PRIVATE_ALLOWED: ContextVar[bool] = ContextVar("engram_private_urls_allowed", default=False)


@contextlib.contextmanager
def private_urls_allowed(allowed: bool) -> Iterator[None]:
    """Within the block, documents and images may come from private addresses if `allowed`."""
    token = PRIVATE_ALLOWED.set(allowed)
    try:
        yield
    finally:
        PRIVATE_ALLOWED.reset(token)


class DocumentFetcher:
    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_bytes: int = 10_000_000,
        max_chars: int = 50_000,
        allow_private: bool = False,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_chars = max_chars
        self.allow_private = allow_private

    async def text(self, url: str, kind: str) -> tuple[str, str | None]:
        """The document's text, and a warning when it was cut at `max_chars`."""
        if url.startswith("data:"):
            media, data = _data_url(url)
        else:
            media, data = await self._download(url)
        if not any(media.startswith(t) for t in _TYPES[kind]):
            raise ValidationError(f"{url[:80]}: content type {media!r} is not a {kind} document")
        if kind == "pdf":  # parsing takes CPU time: not on the event loop
            text = await asyncio.to_thread(_pdf_text, data)
        else:
            text = data.decode("utf-8", errors="replace")
        if len(text) > self.max_chars:
            return text[: self.max_chars], f"document {url[:80]} cut to {self.max_chars} characters"
        return text, None

    @property
    def private_allowed(self) -> bool:
        return self.allow_private or PRIVATE_ALLOWED.get()

    async def check_public(self, url: str, what: str) -> None:
        """An http(s) URL that something else will fetch (an image the vision model reads):
        refused when its host resolves to a non-public address, unless private ones are
        allowed. data: URLs carry their content and are not checked."""
        if not url.startswith("data:"):
            await target(url, allow_private=self.private_allowed, what=what)

    async def _download(self, url: str) -> tuple[str, bytes]:
        """The document, within `timeout` seconds in all (redirects and a slow trickle
        included), from checked hosts only, each hop connected to the address it checked."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(url)
        except TimeoutError:
            raise NetworkError(
                f"{url[:80]}: Timeout: not downloaded within {self.timeout:g} s"
            ) from None

    async def _follow(self, url: str) -> tuple[str, bytes]:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                where = await target(url, allow_private=self.private_allowed, what="document")
                try:
                    async with client.stream(
                        "GET", where.url, headers=where.headers, extensions=where.extensions
                    ) as response:
                        if response.is_redirect:
                            url = urljoin(url, response.headers.get("location", ""))
                            continue
                        if response.status_code >= 400:
                            raise NetworkError(f"{url[:80]}: HTTP {response.status_code}")
                        media = response.headers.get("content-type", "").split(";")[0].strip()
                        return media.lower(), await self._read(response, url)
                except httpx.HTTPError as exc:
                    raise NetworkError(f"{url[:80]}: {type(exc).__name__}: {exc}") from exc
        raise NetworkError(f"{url[:80]}: more than {MAX_REDIRECTS} redirects")

    async def _read(self, response: httpx.Response, url: str) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdecimal() and int(declared) > self.max_bytes:
            raise ValidationError(
                f"{url[:80]}: {declared} bytes is over the {self.max_bytes} limit"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise ValidationError(f"{url[:80]}: over the {self.max_bytes} byte limit")
            chunks.append(chunk)
        return b"".join(chunks)


def _data_url(url: str) -> tuple[str, bytes]:
    header, _, payload = url[5:].partition(",")
    media = header.split(";")[0].strip().lower() or "text/plain"
    try:
        data = (
            base64.b64decode(payload, validate=True)
            if header.endswith(";base64")
            else (unquote_to_bytes(payload))
        )
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"invalid data: URL: {exc}") from exc
    return media, data


def _pdf_text(data: bytes) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:
        raise MissingDependencyError(
            "pdf_url documents need: pip install 'engram-llm[pdf]'"
        ) from exc
    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    except (PdfReadError, ValueError, KeyError) as exc:
        raise ValidationError(f"the PDF could not be read: {exc}") from exc
