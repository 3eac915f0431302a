"""Outbound HTTP to URLs that users give (webhooks, documents): only to public addresses unless
the operator allows private ones, and to the very address that was checked.

A host is checked by resolving it: every address must be global and not multicast (no loopback,
private, link-local such as 169.254.169.254, shared, reserved). The request then goes to the
first checked address, with the URL's host in `Host` and as the TLS server name (certificates are
still verified for it), so a DNS answer that changes between the check and the connection (DNS
rebinding) cannot send it elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from engram.errors import NetworkError, ValidationError


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send a request for a checked URL: `url` (its host replaced by the address when
    pinned), and the `headers` and httpx `extensions` that keep the original host."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def _parts(url: str, what: str) -> tuple[Any, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{what} must be an http:// or https:// URL, not {url[:80]!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError(f"{what}: invalid port in {url[:80]!r}") from None
    return parts, parts.hostname, port


def _first(host: str, infos: list[Any], what: str, allow_private: bool) -> str:
    """The address to connect to: the first one (IPv4 first), after checking them all (unless
    private ones are allowed)."""
    ordered = sorted(infos, key=lambda info: info[0] != socket.AF_INET)
    addresses = [str(info[4][0]).split("%", 1)[0] for info in ordered]
    if not addresses:
        raise NetworkError(f"{what}: {host} has no address")
    if not allow_private:
        for text in addresses:
            address = ipaddress.ip_address(text)
            if not address.is_global or address.is_multicast:
                raise ValidationError(
                    f"{what}: {host} resolves to {address}, a non-public address (private, "
                    "loopback, link-local, reserved and multicast targets need "
                    "allow_private_urls)"
                )
    return addresses[0]


def _pinned(url: str, parts: Any, host: str, address: str) -> Target:
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    header = host if not parts.port else f"{host}:{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return Target(pinned, {"Host": header}, extensions)


def check_url(url: str, *, allow_private: bool, what: str = "url") -> None:
    """At creation (a webhook's URL): refused unless it is http(s) to public addresses. Blocks
    on DNS: call it off the event loop."""
    _, host, port = _parts(url, what)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValidationError(f"{what}: cannot resolve {host}: {exc}") from None
    _first(host, infos, what, allow_private=False)


async def target(url: str, *, allow_private: bool, what: str = "url") -> Target:
    """At sending time: resolved, checked again (DNS can change since creation) unless private
    addresses are allowed, and pinned to the address found (allowed or not)."""
    parts, host, port = _parts(url, what)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise NetworkError(f"{what}: cannot resolve {host}: {exc}") from exc
    return _pinned(url, parts, host, _first(host, infos, what, allow_private))
