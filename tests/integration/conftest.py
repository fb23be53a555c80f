"""Real HTTP on loopback: the simulator as the providers, the router in front, official SDKs as clients."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from openai import AsyncOpenAI
from switchyard_router.credentials import CredentialStore
from switchyard_router.egress import Egress
from switchyard_router.server import Router
from switchyard_router.table import load_table
from switchyard_sim import Simulator

KEYS = {
    "primary.key": "sk-primary-secret-0001",
    "claude.key": "sk-ant-claude-secret-0002",
    "gem.key": "AIzaGeminiSecretKey000000000003",
}


def table_for(sim_url: str, **route_overrides: Any) -> dict[str, Any]:
    route = {
        "name": "chat",
        "targets": [
            {"provider": "primary", "model": "gpt-sim"},
            {"provider": "claude", "model": "claude-sim"},
            {"provider": "gem", "model": "gemini-sim"},
        ],
        "retry": {"attempts": 2, "backoff": {"base": "10ms", "max": "100ms"}},
        "timeout": "2s",
    }
    route.update(route_overrides)
    return {
        "providers": [
            {
                "name": "primary",
                "type": "openai-compatible",
                "baseURL": f"{sim_url}/primary/v1",
                "credentials": [{"name": "main", "key": "primary.key"}],
                "models": [{"name": "gpt-sim"}, {"name": "embed-sim"}],
            },
            {
                "name": "claude",
                "type": "anthropic",
                "baseURL": f"{sim_url}/claude",
                "credentials": [{"name": "main", "key": "claude.key"}],
                "models": [{"name": "claude-sim"}],
            },
            {
                "name": "gem",
                "type": "gemini",
                "baseURL": f"{sim_url}/gem",
                "credentials": [{"name": "main", "key": "gem.key"}],
                "models": [{"name": "gemini-sim"}, {"name": "embed-sim"}],
            },
        ],
        "routes": [route],
    }


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator()
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


StartRouter = Callable[..., Awaitable[tuple[Router, str]]]


@pytest.fixture
async def start_router() -> AsyncIterator[StartRouter]:
    runners: list[web.BaseRunner] = []

    async def start(
        table: dict[str, Any], keys: dict[str, str] | None = None, egress: Egress | None = None
    ) -> tuple[Router, str]:
        router = Router(egress=egress)
        router.load(load_table(copy.deepcopy(table)), CredentialStore(KEYS if keys is None else keys))
        runner = router.runner()
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return router, f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def gateway(sim: Simulator, start_router: StartRouter) -> AsyncIterator[tuple[Router, AsyncOpenAI]]:
    router, url = await start_router(table_for(sim.url))
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused-by-sidecar", max_retries=0)
    yield router, client
    await client.close()


async def settle(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    """Wait until `condition()` holds (what the router does after the client left), or time out;
    the caller asserts it."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


async def client_gone_settles(router: Any) -> None:
    """After a client hung up on route "chat": its target's request is over, and it was counted
    as ClientGone."""
    target = router.table.routes["chat"].targets[0]
    await settle(lambda: target.in_flight == 0)
    assert target.in_flight == 0
    assert (
        'switchyard_requests_total{outcome="ClientGone",route="chat"} 1.0' in router.metrics.render().decode()
    )
