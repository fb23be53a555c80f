"""Which way requests leave for a provider: HTTPS_PROXY, HTTP_PROXY and NO_PROXY.

The operator's probes (httpx) and the official SDKs honour these variables, so the router does
too: otherwise its requests would leave another way than the probes that vouch for a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Not in typeshed, but in urllib.request since Python 2: the NO_PROXY rules requests and aiohttp use.
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

from aiohttp import BasicAuth
from yarl import URL

from .envconfig import EnvConfigError

_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Proxy:
    url: URL  # without credentials: safe to log
    headers: dict[str, str] | None  # Proxy-Authorization, when the URL named a user


class Egress:
    """The proxy variables of one environment, read and checked once at start-up."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.no_proxy: dict[str, str] = {}
        # As urllib: a lower-case name wins over its upper-case twin.
        for name in sorted(env, key=str.islower):
            value = env[name].strip()
            scheme = name.lower().removesuffix("_proxy")
            if not value or scheme == name.lower():
                continue
            if scheme == "no":
                self.no_proxy = {"no": value}
            elif scheme in _SCHEMES:
                self.proxies[scheme] = _parse(name, value)

    def proxy_for(self, base_url: str) -> Proxy | None:
        url = URL(base_url)
        proxy = self.proxies.get(url.scheme)
        if proxy is None or proxy_bypass_environment(f"{url.host}:{url.port}", self.no_proxy):
            return None
        return proxy


def _parse(name: str, value: str) -> Proxy:
    url = URL(value if "://" in value else f"http://{value}")
    if url.scheme not in _SCHEMES or not url.host:
        shown = url.with_user(None) if url.host else "(not a URL)"
        raise EnvConfigError(
            f"{name}={str(shown)!r} is invalid: give an http:// or https:// proxy URL "
            "(SOCKS proxies are not supported)"
        )
    auth = BasicAuth.from_url(url)
    return Proxy(url.with_user(None), {"Proxy-Authorization": auth.encode()} if auth else None)
