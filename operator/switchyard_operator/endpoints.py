"""Endpoints are pinned: the only places a provider's key may be sent.

A baseURL is allowed when it is its type's official https host (api.openai.com for openai...) or
matches an entry of the allow-list the platform team sets (chart value `endpoints.allowed`, the
operator's `--allow-endpoint`, `switchyard compile --allow-endpoint`). Entries are URL prefixes:

    https://llm-proxy.corp.example/openai     that host, port 443, paths under /openai
    http://vllm.models.svc.cluster.local:8000 plain http only because the entry says http
    https://*.openai.azure.com                any subdomain (public addresses only, see below)
    http://127.0.0.1:*                        any port

A baseURL never carries user:password@, a query or a fragment (they would retarget the path or
smuggle credentials), nor dot segments or encoded slashes in its path.

Addresses are checked when connecting (PinnedTransport): an official host, or a wildcard entry's
host, must resolve to public addresses only (never loopback, private, link-local and so metadata
services, shared or reserved ranges, IPv6 unique-local, nor IPv4 wrapped in IPv6 as mapped, 6to4,
Teredo or NAT64 addresses), and the connection goes to the address that was checked (no second
lookup a rebinding DNS could answer differently). An entry naming its host exactly (a name or an
IP) may resolve anywhere: the platform team named it, in-cluster model servers included.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from switchyard_router.table import DEFAULT_BASE_URLS, ProviderType

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
OFFICIAL_HOSTS: dict[ProviderType, str] = {
    type_: str(urlsplit(url).hostname) for type_, url in DEFAULT_BASE_URLS.items()
}
_DNS_NAME = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_PATH_TRICKS = re.compile(r"(^|/)\.\.?(/|$)|%2e|%2f|%5c|\\", re.IGNORECASE)
DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOW_HINT = "the chart value endpoints.allowed (operator flag --allow-endpoint)"


class EndpointError(ValueError):
    """A URL or allow-list entry that cannot be used, with what to do."""


def _host(parts: SplitResult, text: str, wildcard: bool = False) -> str:
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise EndpointError(f"{text!r} has no host")
    if host.startswith("*.") and not wildcard:
        raise EndpointError(f"{text!r}: a wildcard host belongs in the allow-list, not in a baseURL")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not _DNS_NAME.match(host):
        raise EndpointError(f"{text!r}: host {host!r} is neither a DNS name nor an IP address")
    return host


def _split(text: str, what: str) -> SplitResult:
    """Parse and refuse what no endpoint may carry."""
    if any(c in text for c in "?#@") or any(c.isspace() for c in text):
        raise EndpointError(
            f"{what} {text!r} must not carry a query (?), a fragment (#) or user:password@: "
            "credentials belong in a Secret, paths in the URL's path"
        )
    parts = urlsplit(text)
    if parts.scheme not in DEFAULT_PORTS:
        raise EndpointError(f"{what} {text!r} must start with https:// (or http://)")
    if _PATH_TRICKS.search(parts.path):
        raise EndpointError(f"{what} {text!r}: dot segments and encoded slashes are not allowed in the path")
    return parts


@dataclass(frozen=True)
class AllowedEndpoint:
    """One allow-list entry: scheme, host (or *.domain), port (None: any) and path prefix."""

    scheme: str
    host: str
    port: int | None
    path: str

    @classmethod
    def parse(cls, text: str) -> AllowedEndpoint:
        raw = text.strip()
        any_port = re.search(r":\*(/|$)", raw) is not None
        parts = _split(raw.replace(":*", "", 1) if any_port else raw, "allow-list entry")
        try:
            port = None if any_port else (parts.port or DEFAULT_PORTS[parts.scheme])
        except ValueError:
            raise EndpointError(f"allow-list entry {text!r} has an invalid port") from None
        return cls(parts.scheme, _host(parts, text, wildcard=True), port, parts.path.rstrip("/"))

    @property
    def exact(self) -> bool:
        """Names one host: it may resolve to any address (an in-cluster server, loopback)."""
        return not self.host.startswith("*.")

    def matches(self, scheme: str, host: str, port: int, path: str) -> bool:
        if scheme != self.scheme or (self.port is not None and port != self.port):
            return False
        if self.exact:
            if host != self.host:
                return False
        elif not host.endswith(self.host[1:]):  # "*.x.com" covers a.x.com, not x.com
            return False
        return path == self.path or path.startswith(self.path + "/")

    def __str__(self) -> str:
        port = "*" if self.port is None else str(self.port)
        return f"{self.scheme}://{self.host}:{port}{self.path}"


@dataclass(frozen=True)
class EndpointPolicy:
    """The official hosts and the platform's allow-list."""

    allowed: tuple[AllowedEndpoint, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> EndpointPolicy:
        return cls(tuple(AllowedEndpoint.parse(e) for e in entries if e.strip()))

    def problem(self, provider_type: ProviderType, url: str) -> str | None:
        """Why a key may not be sent to `url` for a provider of this type; None when it may."""
        try:
            parts = _split(url, "baseURL")
            host = _host(parts, url)
        except EndpointError as exc:
            return str(exc)
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            return f"baseURL {url!r} has an invalid port"
        official = OFFICIAL_HOSTS.get(provider_type)
        if official == host and parts.scheme == "https" and port == 443:
            return None
        path = parts.path.rstrip("/")
        if any(entry.matches(parts.scheme, host, port, path) for entry in self.allowed):
            return None
        where = f"type {provider_type} sends keys to https://{official} only, and" if official else (
            f"type {provider_type} has no official host, so")
        listed = ", ".join(map(str, self.allowed)) or "empty"
        return (
            f"baseURL {url!r} is not an endpoint the platform allows: {where} any other endpoint "
            f"must match the allow-list in {ALLOW_HINT} (currently: {listed}). Ask the platform team to "
            f"add {parts.scheme}://{parts.netloc}{path} there"
        )

    def exempt(self, host: str) -> bool:
        """Allow-listed by exact name: its addresses are not checked."""
        return any(entry.exact and entry.host == host for entry in self.allowed)


def public_address(ip: IPAddress) -> bool:
    """An address on the public internet, looking through IPv6 wrappers of IPv4 addresses."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return public_address(inner)
    return bool(
        ip.is_global
        and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_link_local)
    )


Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal: itself)."""
    import asyncio

    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
