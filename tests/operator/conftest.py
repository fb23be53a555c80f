"""kopf running for real against the emulated API server (tests/operator/emulator.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import kopf
import pytest
from kmock import ResourceInfo, Server
from switchyard_operator import handlers  # noqa: F401  registers the handlers
from switchyard_operator.endpoints import EndpointPolicy
from switchyard_operator.kube import Kube, core_path, custom_path

from .emulator import Emulator
from .fleet import Fleet
from .manifests import LOOPBACK, NS

OPERATOR_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A hung operator test fails in 30 s instead of stalling the suite."""
    for item in items:
        if OPERATOR_TESTS in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.timeout(30))
            item.add_marker(pytest.mark.filterwarnings("ignore:read_binary is deprecated"))


VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


@pytest.fixture
async def api() -> AsyncIterator[Emulator]:
    emulator = Emulator()
    emulator.resources.load_bundled()
    for plural, kind in (("llmproviders", "LLMProvider"), ("routingpolicies", "RoutingPolicy")):
        emulator.resources[f"switchyard.dev/v1alpha1/{plural}"] = ResourceInfo(
            kind=kind, singular=kind.lower(), namespaced=True, verbs=VERBS, subresources={"status"},
        )
    async with emulator, Server(emulator):
        yield emulator


@pytest.fixture
async def kube(api: Emulator) -> AsyncIterator[Kube]:
    client = Kube.from_connection(kopf.ConnectionInfo(server=str(api.url)))
    yield client
    await client.close()


@pytest.fixture
async def fleet(kube: Kube) -> AsyncIterator[Fleet]:
    """Router pods whose health ports the operator pulls (tests/operator/fleet.py)."""
    routers = Fleet(kube)
    yield routers
    await routers.close()


def fast_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.process.ultimate_exiting_timeout = None
    settings.peering.standalone = True
    settings.scanning.disabled = True
    settings.execution.default_backoff = 0.2
    settings.persistence.consistency_timeout = 0.5
    settings.queueing.idle_timeout = 0.5
    settings.queueing.exit_timeout = 0.5
    settings.watching.reconnect_backoff = 0.05
    settings.networking.error_backoffs = [0.1, 0.2]
    return settings


@contextlib.asynccontextmanager
async def running_operator(api: Emulator, endpoints: EndpointPolicy) -> AsyncIterator[kopf.Memo]:
    """kopf with Switchyard's handlers against `api`, allowing keys to go to `endpoints`."""
    memo = kopf.Memo(connection=kopf.ConnectionInfo(server=str(api.url)), endpoints=endpoints)
    ready = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=kopf.get_default_registry(),
            settings=fast_settings(),
            namespaces=[NS],
            standalone=True,
            memo=memo,
            ready_flag=ready,
        )
    )
    await asyncio.wait([task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
    assert not task.done(), task.exception()
    try:
        yield memo
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)


@pytest.fixture
async def operator(api: Emulator) -> AsyncIterator[kopf.Memo]:
    async with running_operator(api, LOOPBACK) as memo:
        yield memo


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll until `check` returns a truthy value (its last AssertionError otherwise)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
            error: Exception = AssertionError(f"still {result!r}")
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise error
        await asyncio.sleep(0.05)


def provider_path(name: str) -> str:
    return custom_path("llmproviders", NS, name)


def policy_path(name: str) -> str:
    return custom_path("routingpolicies", NS, name)


def cm_path(policy: str) -> str:
    return core_path("configmaps", NS, f"{policy}-routes")


def creds_path(policy: str) -> str:
    return core_path("secrets", NS, f"{policy}-credentials")
