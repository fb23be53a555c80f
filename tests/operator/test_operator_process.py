"""`switchyard-operator` started as its users start it: a process, the console script, the
flags of the README (--standalone) and of the chart (--peering with its KopfPeering), against
the emulated API, reconciling a provider and a policy end to end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import kopf
import pytest
from kmock import ResourceInfo
from switchyard_operator.kube import Kube
from switchyard_operator.outputs import TABLE_KEY

from .. import console_script
from .conftest import VERBS, cm_path, eventually, provider_path
from .emulator import Emulator
from .manifests import LOOPBACK_ENDPOINTS, NS, policy, provider, secret

SCRIPT = console_script("switchyard-operator")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def peerings(api: Emulator) -> Emulator:
    api.resources["kopf.dev/v1/kopfpeerings"] = ResourceInfo(
        kind="KopfPeering", singular="kopfpeering", namespaced=True, verbs=VERBS
    )
    return api


@contextlib.asynccontextmanager
async def operator_process(api: Emulator, tmp_path: Path, *args: str) -> AsyncIterator[int]:
    """The console script with `args`, logged in through a kubeconfig file as in a terminal;
    yields its liveness port once it answers there, stops it with SIGTERM as a kubelet does."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulated",
        "clusters": [{"name": "emulated", "cluster": {"server": str(api.url)}}],
        "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "tests"}}],
        "users": [{"name": "tests", "user": {"token": "tests"}}],
    }))
    kube = Kube.from_connection(kopf.ConnectionInfo(server=str(api.url)))
    # kopf lists Namespaces to find the ones it serves, as on a cluster: the namespace exists
    await kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    await kube.close()
    port = free_port()
    log = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            SCRIPT, *args, f"--liveness=http://127.0.0.1:{port}/healthz",
            *(f"--allow-endpoint={e}" for e in LOOPBACK_ENDPOINTS),
            env=env, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with aiohttp.ClientSession() as http:

                async def alive() -> bool:
                    assert process.returncode is None, log.read_text()
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                            return resp.status == 200
                    except aiohttp.ClientConnectionError:
                        return False

                await eventually(alive, timeout=20)
            yield port
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), timeout=15)
                except TimeoutError:
                    process.kill()
                    await process.wait()
                    pytest.fail(f"the operator did not stop on SIGTERM:\n{log.read_text()}")
    assert process.returncode == 0, log.read_text()


async def reconciles(kube: Kube) -> None:
    """A provider and a policy applied after start are compiled and reported within seconds."""
    await kube.create("/api/v1/namespaces/team/secrets", secret(OPENAI_API_KEY="sk-test-process"))
    await kube.create(f"/apis/switchyard.dev/v1alpha1/namespaces/{NS}/llmproviders", provider())
    await kube.create(f"/apis/switchyard.dev/v1alpha1/namespaces/{NS}/routingpolicies", policy())

    async def compiled() -> bool:
        table = await kube.get(cm_path("chat"))
        return table is not None and "name: chat" in table["data"][TABLE_KEY]

    async def ready() -> bool:
        body = await kube.get(provider_path("openai"))
        conditions = (body or {}).get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    await eventually(compiled, timeout=15)
    await eventually(ready, timeout=15)


@pytest.mark.timeout(60)
async def test_standalone_reconciles(api: Emulator, kube: Kube, tmp_path: Path):
    async with operator_process(api, tmp_path, "--standalone", "-n", NS):
        await reconciles(kube)


@pytest.mark.timeout(60)
async def test_peering_reconciles_with_the_chart_peering_object(peerings: Emulator, kube: Kube, tmp_path: Path):
    # What the chart's peering.yaml creates for a namespaced install (watchNamespaces: [team]).
    await kube.create(
        f"/apis/kopf.dev/v1/namespaces/{NS}/kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "switchyard", "namespace": NS}},
    )
    async with operator_process(peerings, tmp_path, f"--namespace={NS}", "--peering=switchyard", "--priority=7"):
        await reconciles(kube)
        peering = await kube.get(f"/apis/kopf.dev/v1/namespaces/{NS}/kopfpeerings/switchyard")
        assert peering is not None
        peers = peering.get("status") or {}
        assert any(p.get("priority") == 7 for p in peers.values() if isinstance(p, dict)), peering


async def test_a_flag_combination_that_cannot_work_is_refused_in_one_line():
    process = await asyncio.create_subprocess_exec(
        SCRIPT, "-n", NS, "--standalone", "--priority", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 2 and not out
    last = err.decode().strip().splitlines()[-1]
    assert "--priority" in last and "--standalone" in last
