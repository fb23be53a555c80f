"""End to end: a policy changed through the API reaches a running router under steady load.

The operator (kopf, for real) compiles the policy into its ConfigMap; a real router process
follows that ConfigMap through the API with a watch. We count failed requests (none allowed) and
measure the time from the change to the first request served by the new table. The operator
pulls the router's usage from its health port, and on SIGTERM the router's final report: every
request served is in the providers' spend.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import aiohttp
import pytest
from switchyard_operator.kube import core_path, custom_path
from switchyard_sim.server import Simulator

from .. import console_script
from .conftest import cm_path, eventually, policy_path, provider_path
from .fleet import Fleet, free_port, router_pod_body
from .manifests import NS, policy, provider, secret
from .test_spend_operator import fast_reports

__all__ = ["fast_reports"]

KEY = "sk-reload-secret-5678"


@pytest.fixture
async def sim():
    simulator = Simulator(seed=2)
    await simulator.start()
    yield simulator
    await simulator.stop()


def sim_provider(sim, name):
    return provider(name, type_="openai-compatible", secret="keys", key="K", baseURL=sim.base_url(name),
                    healthCheck={"interval": "60s", "timeout": "1s", "failureThreshold": 3})


async def start_router(api_url: str, port: int, health_port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "POD_NAME": "chatbot-0", "POD_NAMESPACE": NS}
    process = await asyncio.create_subprocess_exec(
        console_script("switchyard-router"), "--port", str(port), "--policy", "chat",
        "--kube-api", api_url, "--kube-namespace", NS, "--report-interval", "0.5", "--env-file", "/nonexistent",
        "--credentials-from-api",
        "--health-port", str(health_port), "--health-host", "127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    assert process.stdout is not None
    assert b"listening" in await asyncio.wait_for(process.stdout.readline(), 10)
    return process


@pytest.mark.timeout(60)
async def test_a_policy_change_reaches_a_router_under_load_without_a_failed_request(api, kube, operator, sim, unused_tcp_port):
    await kube.create(core_path("secrets", NS), secret("keys", K=KEY, grant="primary,backup"))
    for name in ("primary", "backup"):
        await kube.create(custom_path("llmproviders", NS), sim_provider(sim, name))
    await kube.create(custom_path("routingpolicies", NS), policy("chat", targets=[("primary", "m1"), ("backup", "m1")]))
    await eventually(lambda: kube.get(cm_path("chat")))

    health_port = free_port()
    await Fleet(kube).grant("chatbot", "chat")
    await kube.create(core_path("pods", NS), router_pod_body("chatbot-0", "chat", health_port))
    await kube.patch(core_path("pods", NS, "chatbot-0") + "/status", {"status": {"phase": "Running", "podIP": "127.0.0.1"}})
    router = await start_router(str(api.url), unused_tcp_port, health_port)
    try:
        await drive(router, api, kube, unused_tcp_port)
    finally:
        if router.returncode is None:  # a failed assertion must not leave the process behind
            router.kill()
            await router.wait()


async def drive(router: asyncio.subprocess.Process, api, kube, port: int) -> None:
    url = f"http://127.0.0.1:{port}"
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    served: list[tuple[float, str]] = []
    failures = 0
    stop = asyncio.Event()

    async with aiohttp.ClientSession() as http:

        async def ready() -> bool:
            async with http.get(f"{url}/readyz") as resp:
                return resp.status == 200

        await eventually(ready)

        async def load() -> None:
            nonlocal failures
            while not stop.is_set():
                async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        failures += 1
                    served.append((time.monotonic(), resp.headers.get("x-switchyard-provider", "-")))
                await asyncio.sleep(0.005)

        workers = [asyncio.create_task(load()) for _ in range(4)]
        await asyncio.sleep(0.5)
        assert served and {p for _, p in served} == {"primary"}

        # The change: backup first.
        changed_at = time.monotonic()
        await kube.patch(policy_path("chat"), {"spec": policy("chat", targets=[("backup", "m1"), ("primary", "m1")])["spec"]})

        async def switched() -> float | None:
            first = next((t for t, p in served if t > changed_at and p == "backup"), None)
            return first - changed_at if first is not None else None

        took = await eventually(switched, timeout=10)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*workers)

        # The operator pulls the router's cumulative usage from its health port (the load, in
        # this same event loop, may have kept it from pulling meanwhile: let it catch up).
        async def pulled() -> bool:
            body = await kube.get(provider_path("primary"))
            requests = ((body.get("status") or {}).get("spend") or {}).get("requests")
            return requests == sum(1 for _, p in served if p == "primary")

        await eventually(pulled, timeout=20)

    router.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(router.communicate(), 15)

    async def spend() -> dict[str, int]:  # the final report folded: every request is counted
        counted = {}
        for name in ("primary", "backup"):
            status = (await kube.get(provider_path(name))).get("status") or {}
            counted[name] = (status.get("spend") or {}).get("requests", 0)
            assert not (status.get("spend") or {}).get("ledger", {}).get("live"), status["spend"]
        return counted

    counted = await eventually(spend, timeout=20)
    print(f"\nhot reload under load: {len(served)} requests, {failures} failed; "
          f"change to first request on the new table: {took * 1000:.0f} ms")
    assert failures == 0
    assert took < 2.0
    assert sum(counted.values()) == len(served)
    assert counted == {p: sum(1 for _, q in served if q == p) for p in ("primary", "backup")}
    assert b"did not pull the final usage report" not in err
    assert KEY.encode() not in err
