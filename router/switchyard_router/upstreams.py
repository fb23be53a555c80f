"""One pooled HTTP client session per provider, kept across table reloads."""

from __future__ import annotations

import aiohttp

from .table import Provider


class Upstreams:
    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str], aiohttp.ClientSession] = {}

    def session(self, provider: Provider) -> aiohttp.ClientSession:
        ident = (provider.name, provider.base_url)
        session = self._sessions.get(ident)
        if session is None:
            # Timeouts are ours (per attempt, first token, deadline), not the session's.
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
            session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None), auto_decompress=True
            )
            self._sessions[ident] = session
        return session

    async def retire(self, keep: set[tuple[str, str]]) -> None:
        """Close the sessions of providers no longer in the table."""
        for ident in [i for i in self._sessions if i not in keep]:
            await self._sessions.pop(ident).close()

    async def close(self) -> None:
        await self.retire(set())
