"""Providers over TLS: the router verifies their certificates, and trusts a private CA only when
SSL_CERT_FILE names it (an in-cluster model server, a TLS-inspecting egress)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import certifi
import pytest
import yaml
from switchyard_operator.certs import generate
from switchyard_sim import Simulator

from .conftest import KEYS
from .test_cli import free_port, run_router, stop, wait_listening


@pytest.fixture
async def tls_sim(tmp_path: Path) -> AsyncIterator[tuple[Simulator, Path]]:
    bundle = generate(["localhost"])
    bundle.write(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "tls" / "tls.crt", tmp_path / "tls" / "tls.key")
    simulator = Simulator()
    await simulator.start(ssl_context=context)
    try:
        yield simulator, tmp_path / "tls" / "ca.crt"
    finally:
        await simulator.stop()


async def ask_through_router(sim: Simulator, tmp_path: Path, env: dict[str, str]) -> tuple[int, bytes, bytes]:
    port = sim.url.rsplit(":", 1)[1]
    table = {
        "providers": [
            {
                "name": "primary",
                "type": "openai-compatible",
                "baseURL": f"https://localhost:{port}/primary/v1",  # the name the certificate holds
                "credentials": [{"name": "main", "key": "primary.key"}],
                "models": [{"name": "gpt-sim"}],
            }
        ],
        "routes": [
            {
                "name": "chat",
                "targets": [{"provider": "primary", "model": "gpt-sim"}],
                "retry": {"attempts": 1},
            }
        ],
    }
    config = tmp_path / "table.yaml"
    config.write_text(yaml.safe_dump(table))
    router_port = free_port()
    process = await run_router("--port", str(router_port), "--config", str(config), env={**KEYS, **env})
    await wait_listening(process)
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    url = f"http://127.0.0.1:{router_port}/v1/chat/completions"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        status, answer = resp.status, await resp.read()
    return status, answer, await stop(process)


async def test_a_provider_behind_a_private_ca_is_trusted_through_ssl_cert_file(tls_sim, tmp_path: Path):
    sim, ca = tls_sim
    status, answer, _ = await ask_through_router(sim, tmp_path, {"SSL_CERT_FILE": str(ca)})
    assert status == 200, answer
    assert b"Hello from primary" in answer
    assert sim.stats()["primary"]["requests"] == 1


async def test_a_certificate_no_trusted_root_signed_is_refused(tls_sim, tmp_path: Path):
    sim, _ = tls_sim
    # The public web roots (certifi's bundle) know nothing of the private CA.
    status, answer, log = await ask_through_router(sim, tmp_path, {"SSL_CERT_FILE": certifi.where()})
    assert status == 502 and b"api_connection_error" in answer
    assert b"certificate verify failed" in log
    assert sim.stats().get("primary", {}).get("requests", 0) == 0  # no request left the handshake
