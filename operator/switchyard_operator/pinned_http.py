"""The probes' HTTP transport: every connection goes to an address that was checked.

httpx resolves names itself, so a check made before a request could be answered differently
when httpx connects (DNS rebinding). This transport resolves once, checks every address (see
endpoints.py), and sends the request to the checked address with the original Host header and
TLS server name, so certificates are still verified against the name. Through an egress proxy
(HTTPS_PROXY and friends, read as the router reads them) the proxy resolves the name: the
operator then relies on the name checks and the proxy's own policy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import httpx
from switchyard_router.egress import Egress, Proxy

from .endpoints import EndpointPolicy, IPAddress, Resolver, public_address, resolve


class EndpointRefused(httpx.ConnectError):
    """The name resolves to an address keys must never reach."""


class PinnedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        policy: EndpointPolicy,
        env: Mapping[str, str] | None = None,
        resolver: Resolver = resolve,
        is_public: Callable[[IPAddress], bool] = public_address,
    ) -> None:
        self.policy = policy
        self.egress = Egress(os.environ if env is None else env)
        self.resolver = resolver
        self.is_public = is_public
        self.direct = httpx.AsyncHTTPTransport(trust_env=True)
        self.proxied: dict[str, httpx.AsyncHTTPTransport] = {}

    def _via(self, proxy: Proxy) -> httpx.AsyncHTTPTransport:
        key = str(proxy.url)
        if key not in self.proxied:
            self.proxied[key] = httpx.AsyncHTTPTransport(
                proxy=httpx.Proxy(key, headers=proxy.headers), trust_env=True
            )
        return self.proxied[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        proxy = self.egress.proxy_for(str(url))
        if proxy is not None:
            return await self._via(proxy).handle_async_request(request)
        host = url.host
        if self.policy.exempt(host):
            return await self.direct.handle_async_request(request)
        try:
            addresses = await self.resolver(host, url.port or (443 if url.scheme == "https" else 80))
        except OSError as exc:
            message = f"cannot resolve {host}: {exc.strerror or exc}"
            raise httpx.ConnectError(message, request=request) from None
        refused = [ip for ip in addresses if not self.is_public(ip)]
        if not addresses or refused:
            shown = refused[0] if refused else "no address"
            raise EndpointRefused(f"{host} resolves to {shown}, not a public address", request=request)
        request.url = url.copy_with(host=str(addresses[0]))  # Host header: still the name
        request.extensions = {**request.extensions, "sni_hostname": host}
        return await self.direct.handle_async_request(request)

    async def aclose(self) -> None:
        await self.direct.aclose()
        for transport in self.proxied.values():
            await transport.aclose()


def pinned_client(policy: EndpointPolicy) -> httpx.AsyncClient:
    """The probes' client: no redirects, connections only to checked addresses."""
    return httpx.AsyncClient(transport=PinnedTransport(policy), follow_redirects=False)
