"""The router behind an egress proxy: HTTP_PROXY / HTTPS_PROXY / NO_PROXY, as the probes see them."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from openai import AsyncOpenAI
from switchyard_router.egress import Egress
from switchyard_sim import Simulator

from .conftest import KEYS, StartRouter, table_for
from .test_cli import run_router


@dataclass
class ForwardProxy:
    """A plain forward proxy on loopback: takes absolute-form requests and relays them."""

    url: str = ""
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (target URL, Proxy-Authorization)


@pytest.fixture
async def forward_proxy() -> AsyncIterator[ForwardProxy]:
    proxy = ForwardProxy()
    async with aiohttp.ClientSession(auto_decompress=False) as upstream:

        async def relay(request: web.BaseRequest) -> web.StreamResponse:
            proxy.seen.append((str(request.url), request.headers.get("Proxy-Authorization")))
            headers = {k: v for k, v in request.headers.items() if not k.lower().startswith("proxy-")}
            async with upstream.request(
                request.method, request.url, headers=headers, data=await request.read()
            ) as answer:
                response = web.StreamResponse(status=answer.status, headers=answer.headers)
                await response.prepare(request)
                async for chunk in answer.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response

        runner = web.ServerRunner(web.Server(relay))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        proxy.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield proxy
        await runner.cleanup()


async def test_every_provider_family_goes_through_the_proxy_with_its_credentials(
    sim: Simulator, start_router: StartRouter, forward_proxy: ForwardProxy, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, "switchyard.router")
    proxy_url = forward_proxy.url.replace("http://", "http://egress:hunter2@")
    egress = Egress({"HTTP_PROXY": proxy_url, "NO_PROXY": "example.com"})
    _, url = await start_router(table_for(sim.url), egress=egress)
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hello"}]
        )
        assert answer.choices[0].message.content
        for provider in ("primary", "claude", "gem"):
            chunks = [
                chunk
                async for chunk in await client.chat.completions.create(
                    model=f"{provider}/{ {'primary': 'gpt', 'claude': 'claude', 'gem': 'gemini'}[provider] }-sim",
                    messages=[{"role": "user", "content": "hello"}],
                    stream=True,
                )
            ]
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    targets = [target for target, _ in forward_proxy.seen]
    assert targets[0] == f"{sim.url}/primary/v1/chat/completions"
    assert any(t.startswith(f"{sim.url}/claude/") for t in targets)
    assert any(t.startswith(f"{sim.url}/gem/") for t in targets)
    expected = "Basic " + base64.b64encode(b"egress:hunter2").decode()
    assert {auth for _, auth in forward_proxy.seen} == {expected}
    # The log says which way requests leave, and never the proxy's password.
    assert f"requests go through the proxy {forward_proxy.url}" in caplog.text
    assert "hunter2" not in caplog.text


@pytest.fixture
async def connect_proxy() -> AsyncIterator[ForwardProxy]:
    """A proxy that records each CONNECT and refuses it: enough to see what a tunnel would carry."""
    proxy = ForwardProxy()

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        line, *fields = head.strip().split("\r\n")
        headers = dict(field.split(": ", 1) for field in fields)
        proxy.seen.append((line, headers.get("Proxy-Authorization")))
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    proxy.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    yield proxy
    server.close()
    await server.wait_closed()


async def test_an_https_provider_is_reached_through_a_connect_tunnel_with_the_credentials_on_it(
    sim: Simulator, start_router: StartRouter, connect_proxy: ForwardProxy, caplog: pytest.LogCaptureFixture
):
    table = table_for(
        sim.url,
        targets=[{"provider": "remote", "model": "gpt-x"}, {"provider": "primary", "model": "gpt-sim"}],
    )
    table["providers"].append(
        {
            "name": "remote",
            "type": "openai-compatible",
            "baseURL": "https://api.openai.example/v1",
            "credentials": [{"name": "main", "key": "remote.key"}],
            "models": [{"name": "gpt-x"}],
        }
    )
    proxy_url = connect_proxy.url.replace("http://", "http://egress:hunter2@")
    egress = Egress({"HTTPS_PROXY": proxy_url, "NO_PROXY": "127.0.0.1"})
    _, url = await start_router(table, keys={**KEYS, "remote.key": "sk-remote-secret-0004"}, egress=egress)
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        answer = await client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
    # The proxy refused the tunnel: the request fell back to the provider it reaches directly.
    assert answer.headers["x-switchyard-provider"] == "primary"
    expected = "Basic " + base64.b64encode(b"egress:hunter2").decode()
    assert connect_proxy.seen[0] == ("CONNECT api.openai.example:443 HTTP/1.1", expected)
    assert "attempt failed: route=chat provider=remote" in caplog.text
    assert "hunter2" not in caplog.text


async def test_no_proxy_hosts_go_direct(
    sim: Simulator, start_router: StartRouter, forward_proxy: ForwardProxy
):
    egress = Egress({"HTTP_PROXY": forward_proxy.url, "NO_PROXY": "localhost,127.0.0.1"})
    _, url = await start_router(table_for(sim.url), egress=egress)
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    assert forward_proxy.seen == []


async def test_an_unusable_proxy_stops_the_router_with_one_message():
    process = await run_router(
        "--env-file",
        "/nonexistent",
        env={
            "HTTPS_PROXY": "socks5://svc:hunter2@proxy:1080",
            "PRIMARY_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-x",
        },
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"HTTPS_PROXY='socks5://proxy:1080' is invalid: give an http:// or https:// proxy URL" in err
    assert b"hunter2" not in err
