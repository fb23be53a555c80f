"""Pinned endpoints: the allow-list's grammar, the address rules, and the transport that connects
only to checked addresses (loopback servers stand in for the hosts)."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from aiohttp import web
from switchyard_operator.endpoints import (
    AllowedEndpoint,
    EndpointError,
    EndpointPolicy,
    public_address,
    resolve,
)
from switchyard_operator.models import HealthCheckSpec
from switchyard_operator.pinned_http import EndpointRefused, PinnedTransport
from switchyard_operator.probe import probe
from switchyard_router.table import Provider, ProviderType

from ..hostile import HostileUpstream

OPENAI, COMPATIBLE, ANTHROPIC = ProviderType.OPENAI, ProviderType.OPENAI_COMPATIBLE, ProviderType.ANTHROPIC


@pytest.mark.parametrize("url", [
    "https://api.openai.com/v1", "https://api.openai.com", "https://API.openai.com./v1", "https://api.openai.com:443/v1",
])
def test_the_official_host_needs_no_entry(url):
    assert EndpointPolicy().problem(OPENAI, url) is None


@pytest.mark.parametrize(("type_", "url", "words"), [
    (OPENAI, "http://api.openai.com/v1", "not an endpoint the platform allows"),
    (OPENAI, "https://api.openai.com:8443/v1", "not an endpoint"),
    (OPENAI, "https://api.anthropic.com", "sends keys to https://api.openai.com only"),  # another type's host
    (ANTHROPIC, "https://api.openai.com/v1", "https://api.anthropic.com only"),
    (COMPATIBLE, "http://vllm:8000/v1", "has no official host"),
    (OPENAI, "https://api.openai.com/v1?x=1", "must not carry a query"),
    (OPENAI, "https://api.openai.com/v1#frag", "must not carry a query"),
    (OPENAI, "https://key@api.openai.com/v1", "user:password@"),
    (OPENAI, "https://api.openai.com/v1/../admin", "dot segments"),
    (OPENAI, "https://api.openai.com/v1/%2e%2e/admin", "dot segments"),
    (OPENAI, "https://api.openai.com/v1%2Fadmin", "encoded slashes"),
    (OPENAI, "https://api.openai.com\\@evil/v1", "user:password@"),
    (OPENAI, "https://ap\u0456.openai.com/v1", "neither a DNS name nor an IP"),  # a Cyrillic i
    (OPENAI, "https://*.openai.com/v1", "wildcard host belongs in the allow-list"),
    (OPENAI, "ftp://api.openai.com/v1", "must start with https://"),
    (OPENAI, "https:///v1", "has no host"),
    (OPENAI, "https://api.openai.com:99999/v1", "invalid"),
])
def test_anything_else_is_refused_with_the_reason(type_, url, words):
    problem = EndpointPolicy().problem(type_, url)
    assert problem is not None and words in problem


def test_allow_list_entries_are_url_prefixes():
    policy = EndpointPolicy.parse([
        "https://llm-proxy.corp.example/openai", "http://vllm.models.svc.cluster.local:8000",
        "https://*.openai.azure.com", "http://127.0.0.1:*", "  ",
    ])
    allowed = [
        "https://llm-proxy.corp.example/openai", "https://llm-proxy.corp.example/openai/v1",
        "http://vllm.models.svc.cluster.local:8000/v1", "https://team-a.openai.azure.com/openai",
        "http://127.0.0.1:9100/v1", "http://127.0.0.1/v1",
    ]
    refused = [
        "http://llm-proxy.corp.example/openai/v1",  # the entry says https
        "https://llm-proxy.corp.example/openaix/v1",  # a prefix ends at a segment
        "https://llm-proxy.corp.example:8443/openai",  # the entry's port is 443
        "http://vllm.models.svc.cluster.local/v1",
        "https://openai.azure.com/v1",  # *.x covers subdomains only
        "https://evil-openai.azure.com.example/v1",
        "https://127.0.0.1:9100/v1",
    ]
    assert [u for u in allowed if policy.problem(COMPATIBLE, u) is not None] == []
    assert [u for u in refused if policy.problem(COMPATIBLE, u) is None] == []
    assert policy.exempt("vllm.models.svc.cluster.local") and policy.exempt("127.0.0.1")
    assert not policy.exempt("team-a.openai.azure.com"), "a wildcard's hosts get their addresses checked"
    assert "currently: https://llm-proxy.corp.example:443/openai, http://vllm" in policy.problem(COMPATIBLE, refused[0])
    assert str(AllowedEndpoint.parse("http://127.0.0.1:*")) == "http://127.0.0.1:*"


@pytest.mark.parametrize("entry", ["ftp://x", "https://x/?a", "https://u@x", "https://", "https://x:bad", "x.com"])
def test_bad_entries_are_refused(entry):
    with pytest.raises(EndpointError):
        EndpointPolicy.parse([entry])


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("::ffff:8.8.8.8", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False),  # cloud metadata
    ("100.64.0.1", False),  # shared address space (many clusters' pods)
    ("0.0.0.0", False), ("224.0.0.1", False), ("240.0.0.1", False), ("255.255.255.255", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fd00:ec2::254", False), ("ff02::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:169.254.169.254", False),  # IPv4-mapped
    ("2002:a9fe:a9fe::1", False),  # 6to4 around 169.254.169.254
    ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::808:808", True),  # NAT64
    ("2001:0:4136:e378:8000:63bf:f5fe:fefe", False),  # Teredo, client 10.1.1.1
])
def test_public_addresses(address, public):
    assert public_address(ipaddress.ip_address(address)) is public


# --------------------------------------------------------------------------- the transport


@pytest.fixture
async def server():
    upstream = await HostileUpstream().start()
    upstream.behaviour = lambda request: _ok(request)
    yield upstream
    await upstream.stop()


async def _ok(request):
    return web.json_response({"data": []})


def resolver(table):
    calls = []

    async def resolve(host, port):
        calls.append(host)
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return [ipaddress.ip_address(a) for a in table[host]]

    resolve.calls = calls
    return resolve


async def test_a_name_resolving_to_an_internal_address_gets_no_connection(server):
    # DNS (poisoned, split-horizon, or a rebinding name) answers loopback for the official host.
    transport = PinnedTransport(EndpointPolicy(), env={}, resolver=resolver({"api.openai.com": ["127.0.0.1"]}))
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(EndpointRefused, match=r"api\.openai\.com resolves to 127\.0\.0\.1"):
            await http.get(f"http://api.openai.com:{server.port}/v1/models", headers={"Authorization": "Bearer k"})
        mixed = PinnedTransport(EndpointPolicy(), env={}, resolver=resolver({"x.test": ["8.8.8.8", "::1"]}))
        http._transport = mixed
        with pytest.raises(EndpointRefused, match="::1"):
            await http.get("https://x.test/v1")
        http._transport = PinnedTransport(EndpointPolicy(), env={}, resolver=resolver({}))
        with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.test"):
            await http.get("https://nowhere.test/v1")
    assert server.seen == []


async def test_the_connection_goes_to_the_address_that_was_checked(server):
    # Pretend loopback is public to watch the mechanics: one lookup, the checked address dialled,
    # the name kept in the Host header (and as the TLS server name).
    resolve = resolver({"provider.test": ["127.0.0.1"]})
    transport = PinnedTransport(EndpointPolicy(), env={}, resolver=resolve, is_public=lambda ip: True)
    async with httpx.AsyncClient(transport=transport) as http:
        response = await http.get(f"http://provider.test:{server.port}/v1/models")
    assert response.status_code == 200 and resolve.calls == ["provider.test"]
    assert server.seen[0].headers["Host"] == f"provider.test:{server.port}"


async def test_exact_entries_and_proxies_skip_the_address_check(server):
    policy = EndpointPolicy.parse(["http://127.0.0.1:*"])
    transport = PinnedTransport(policy, env={}, resolver=resolver({}))
    async with httpx.AsyncClient(transport=transport) as http:
        assert (await http.get(f"{server.url}/v1/models")).status_code == 200
    # Through an egress proxy the proxy resolves the name: nothing is looked up here.
    proxied = PinnedTransport(EndpointPolicy(), env={"HTTP_PROXY": server.url}, resolver=resolver({}))
    async with httpx.AsyncClient(transport=proxied) as http:
        assert (await http.get("http://api.openai.com/v1/models")).status_code == 200
    assert server.seen[-1].headers["Host"] == "api.openai.com"  # reached through the "proxy" only


async def test_names_resolve_through_the_system_and_ip_literals_stand_for_themselves():
    assert await resolve("127.0.0.1", 80) == [ipaddress.ip_address("127.0.0.1")]
    assert ipaddress.ip_address("127.0.0.1") in await resolve("localhost", 80)


async def test_the_probe_sends_nothing_to_an_internal_address_and_says_why(server):
    provider = Provider(name="o", type="openai")  # the official host, which "DNS" points home
    transport = PinnedTransport(EndpointPolicy(), env={}, resolver=resolver({"api.openai.com": ["169.254.169.254"]}))
    async with httpx.AsyncClient(transport=transport) as http:
        outcome = await probe(http, provider, "sk-x", HealthCheckSpec())
    assert outcome.error == "EndpointNotAllowed: api.openai.com resolves to 169.254.169.254, not a public address"


async def test_a_non_http_answer_is_classified_without_quoting_it():
    async def garbage(reader, writer):
        await reader.read(100)
        writer.write(b"SSH-2.0-OpenSSH secret-banner\r\n\r\n")
        await writer.drain()
        writer.close()

    import asyncio

    listener = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    provider = Provider(name="o", type="openai-compatible", base_url=f"http://127.0.0.1:{port}/v1")
    try:
        async with httpx.AsyncClient() as http:
            outcome = await probe(http, provider, "sk-x", HealthCheckSpec(), EndpointPolicy.parse(["http://127.0.0.1:*"]))
    finally:
        listener.close()
    assert outcome.error == "ConnectionError: the endpoint did not answer in HTTP"
