"""A small hostile upstream on loopback: whatever a test (or the hostile bench) tells it to answer.

Every request, whatever its path, goes to `behaviour`; each one is recorded (path, headers, body)
so a test can show what reached it, and what did not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Behaviour = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# The three wire families and where each sends a chat request under a base URL.
FAMILIES = {
    "openai-compatible": "/v1",
    "anthropic": "",
    "gemini": "",
}


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


async def _unset(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(status=500, text="no behaviour set")


@dataclass
class HostileUpstream:
    behaviour: Behaviour = _unset
    seen: list[Seen] = field(default_factory=list)
    host: str = "127.0.0.1"
    _runner: web.BaseRunner | None = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers), await request.read()))
        return await self.behaviour(request)

    async def start(self) -> HostileUpstream:
        self._runner = web.ServerRunner(web.Server(self._handle, access_log=None))
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        return self

    @property
    def port(self) -> int:
        assert self._runner is not None
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


KEYS = {
    "openai.key": "sk-hostile-test-openai-0001",
    "anthropic.key": "sk-ant-hostile-test-0002",
    "gemini.key": "AIzaHostileTestGeminiKey00000003",
    "good.key": "sk-good-fallback-key-0004",
}
KEY_OF = {"openai-compatible": "openai.key", "anthropic": "anthropic.key", "gemini": "gemini.key"}


def hostile_table(url: str, family: str, *, fallback_url: str | None = None, **route: object) -> dict:
    """One route `chat`: the hostile upstream as `up` (of the given family), then optionally a
    healthy fallback `good` (OpenAI-compatible, e.g. the simulator's primary)."""
    providers: list[dict] = [
        {
            "name": "up",
            "type": family,
            "baseURL": url + FAMILIES[family],
            "credentials": [{"name": "main", "key": KEY_OF[family]}],
            "models": [{"name": "m"}],
        }
    ]
    targets = [{"provider": "up", "model": "m"}]
    if fallback_url is not None:
        providers.append({
                "name": "good",
                "type": "openai-compatible",
                "baseURL": fallback_url,
                "credentials": [{"name": "main", "key": "good.key"}],
                "models": [{"name": "gpt-sim"}],
            })
        targets.append({"provider": "good", "model": "gpt-sim"})
    return {
        "providers": providers,
        "routes": [
            {
                "name": "chat",
                "targets": targets,
                "retry": {"attempts": 2, "backoff": {"base": "10ms", "max": "50ms"}},
                "timeout": "5s",
                **route,
            }
        ],
    }
