"""One pooled HTTP client session per provider, kept across table reloads."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.client import _RequestContextManager

from . import tracing
from .adapters.base import UpstreamRequest
from .egress import Egress
from .table import Provider

log = logging.getLogger("switchyard.router")


class Upstreams:
    def __init__(self, egress: Egress | None = None) -> None:
        self._sessions: dict[tuple[str, str], _Session] = {}
        self.egress = egress or Egress({})

    def send(self, provider: Provider, request: UpstreamRequest) -> _RequestContextManager:
        """The request on the provider's pooled session: await it, or use it with `async with`."""
        upstream = self._sessions.get((provider.name, provider.base_url)) or self._open(provider)
        if upstream.proxy_auth_plain:
            request.headers.update(upstream.proxy_auth_plain)
        if tracing.ENABLED:  # the attempt's span is current: the provider may join the trace
            tracing.inject(request.headers)
        return upstream.session.request(
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            proxy_headers=upstream.proxy_auth_connect,
            # A redirect would carry the key (aiohttp strips only Authorization) and the prompt
            # to another host: a 3xx is an error of its own (Redirected) instead.
            allow_redirects=False,
        )

    def _open(self, provider: Provider) -> _Session:
        # The proxy is chosen here, once: aiohttp's trust_env would look again, in a thread, for
        # every request.
        proxy = self.egress.proxy_for(provider.base_url)
        if proxy is not None:
            log.info("provider %s: requests go through the proxy %s", provider.name, proxy.url)
        # Timeouts are ours (per attempt, first token, deadline), not the session's.
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            # Answers come uncompressed: a few KB of gzip can unpack to gigabytes.
            headers={"Accept-Encoding": "identity"},
            auto_decompress=False,
            proxy=proxy.url if proxy else None,
        )
        # Proxy credentials go on the CONNECT of an https tunnel, never inside it; a plain http
        # request goes to the proxy itself, which takes them from its headers.
        auth = proxy.headers if proxy else None
        https = provider.base_url.startswith("https:")
        upstream = _Session(session, auth if https else None, None if https else auth)
        self._sessions[(provider.name, provider.base_url)] = upstream
        return upstream

    async def retire(self, keep: set[tuple[str, str]]) -> None:
        """Close the sessions of providers no longer in the table."""
        for ident in [i for i in self._sessions if i not in keep]:
            await self._sessions.pop(ident).session.close()

    async def close(self) -> None:
        await self.retire(set())


@dataclass(frozen=True, slots=True)
class _Session:
    session: aiohttp.ClientSession
    proxy_auth_connect: Mapping[str, str] | None
    proxy_auth_plain: Mapping[str, str] | None
