"""The router's own small API client (switchyard_router.kube) and the task that uses it
(reload.APIWatch), in process against the emulated API server."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from switchyard_operator.certs import generate
from switchyard_operator.kube import Kube, core_path
from switchyard_router.kube import KubeClient, KubeConfig, KubeError
from switchyard_router.reload import APIWatch
from switchyard_router.server import Router
from switchyard_router.table import TableError

from .conftest import eventually
from .emulator import Emulator
from .manifests import NS

TOKEN = "sa-token-0001"
TABLE = {
    "providers": [{"name": "oa", "type": "openai", "credentials": [{"name": "main", "key": "oa.main"}]}],
    "routes": [{"name": "chat", "targets": [{"provider": "oa", "model": "m"}]}],
}


@pytest.fixture
async def client(api: Emulator, tmp_path: Path) -> AsyncIterator[KubeClient]:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    kube = KubeClient(KubeConfig(str(api.url), NS, token))
    yield kube
    await kube.close()


def test_in_cluster_config_comes_from_the_service_account(tmp_path: Path):
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert KubeConfig.in_cluster(env, tmp_path) is None  # no token: not in a cluster
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "namespace").write_text(f"{NS}\n")
    assert KubeConfig.in_cluster({}, tmp_path) is None  # no API server address
    assert KubeConfig.in_cluster(env, tmp_path) == KubeConfig(
        "https://10.96.0.1:443", NS, tmp_path / "token", None
    )
    (tmp_path / "ca.crt").write_bytes(generate(["kubernetes.default.svc"]).ca)
    config = KubeConfig.in_cluster(env, tmp_path)
    assert config is not None and config.ca_file == tmp_path / "ca.crt"


async def test_a_cluster_ca_is_trusted_for_the_api_connection(tmp_path: Path):
    ca = tmp_path / "ca.crt"
    ca.write_bytes(generate(["kubernetes.default.svc"]).ca)
    kube = KubeClient(KubeConfig("https://10.96.0.1:443", NS, None, ca))
    try:
        context = kube._session.connector._ssl  # type: ignore[attr-defined]
        subjects = [dict(pair[0] for pair in c["subject"]) for c in context.get_ca_certs()]
        assert [s["commonName"] for s in subjects] == ["switchyard-webhook-ca"]
    finally:
        await kube.close()


async def test_reads_with_the_current_token_and_writes_nothing(
    api: Emulator, client: KubeClient, kube: Kube, tmp_path: Path
):
    assert await client.get("configmaps", "p-routes") is None
    await kube.create(core_path("configmaps", NS), {"metadata": {"name": "p-routes"}, "data": {"a": "1"}})
    (tmp_path / "token").write_text("sa-token-0002")  # the kubelet rotated the projected token
    configmap = await client.get("configmaps", "p-routes")
    assert configmap is not None and configmap["data"] == {"a": "1"}
    mine = [r for r in api if r.headers.get("Authorization")]
    assert [r.headers["Authorization"] for r in mine] == [f"Bearer {TOKEN}", "Bearer sa-token-0002"]
    assert {r.method.value for r in mine} == {"GET"}


async def test_api_errors_name_the_request_and_never_the_token(api: Emulator, client: KubeClient):
    cm = core_path("configmaps", NS)
    api[f"get {cm}/forbidden"] << 403 << {"kind": "Status", "message": "configmaps is forbidden"}
    api[f"get {cm}/listed"] << ["not", "an", "object"]
    api[f"get {core_path('secrets', NS)}"] << 403
    with pytest.raises(KubeError, match=rf"GET {cm}/forbidden: HTTP 403: .*configmaps is forbidden") as err:
        await client.get("configmaps", "forbidden")
    assert TOKEN not in str(err.value)
    with pytest.raises(KubeError, match=rf"GET {cm}/listed: not a JSON object"):
        await client.get("configmaps", "listed")
    with pytest.raises(KubeError, match="watch secrets/creds: HTTP 403"):
        async for _ in client.watch("secrets", "creds", None):
            pass


async def test_a_watch_yields_only_the_named_object(api: Emulator, client: KubeClient):
    # An API server may ignore the field selector: other objects' events, and blank keep-alive
    # lines, are dropped here.
    def added(name: str) -> dict[str, object]:
        return {"type": "ADDED", "object": {"metadata": {"name": name, "resourceVersion": "7"}}}

    api[f"get {core_path('configmaps', NS)}"] << (b"\n", added("someone-else"), added("p-routes"))
    events = [event async for event in client.watch("configmaps", "p-routes", "6")]
    assert events == [added("p-routes")]
    watch = list(api)[-1]
    assert watch.params == {
        "watch": "true",
        "fieldSelector": "metadata.name=p-routes",
        "timeoutSeconds": "300",
        "resourceVersion": "6",
    }


async def test_the_policy_objects_are_followed_and_a_deletion_keeps_the_table(
    kube: Kube, client: KubeClient, caplog: pytest.LogCaptureFixture
):
    router = Router()
    watch = APIWatch(router, client, "p", credentials_from_api=True)
    tasks = [
        asyncio.ensure_future(watch.follow(kind, retry_delay=0.05)) for kind in ("configmaps", "secrets")
    ]
    try:
        secret = {
            "metadata": {"name": "p-credentials"},
            "data": {"oa.main": base64.b64encode(b"sk-api-0001").decode()},
        }
        await kube.create(core_path("secrets", NS), secret)
        await asyncio.sleep(0.2)
        assert router.table is None  # keys alone make no table
        routes = {"metadata": {"name": "p-routes"}, "data": {"table.yaml": yaml.safe_dump(TABLE)}}
        await kube.create(core_path("configmaps", NS), routes)
        table = await eventually(lambda: _async(router.table))
        assert list(table.routes) == ["chat"]
        assert table.key_values() == ["sk-api-0001"]
        await kube.client.delete(core_path("configmaps", NS, "p-routes"))
        await eventually(lambda: _async("configmaps/p-routes was deleted" in caplog.text or None))
        assert router.table is table  # still serving the last good one
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_table_the_pod_may_not_read_leaves_the_mounted_one(
    api: Emulator, client: KubeClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    # No routerAccess grant for this pod: the API says 403, and the router serves the mounted
    # table and the mounted keys, without retrying the API forever.
    api[f"get {core_path('configmaps', NS)}/p-routes"] << 403 << {"message": "configmaps is forbidden"}
    caplog.set_level(logging.INFO, "switchyard.router")
    config = tmp_path / "table.yaml"
    config.write_text(yaml.safe_dump(TABLE))
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "oa.main").write_text("sk-mounted-0001")
    router = Router()
    watch = APIWatch(router, client, "p", config=config, credentials_dir=creds)
    await asyncio.wait_for(watch.run(), 5)  # returns: nothing left to follow
    assert "may not read configmaps/p-routes: following the mounted table only" in caplog.text
    table, keys = watch.load()
    assert [r.name for r in table.routes] == ["chat"] and keys.get("oa.main") == "sk-mounted-0001"
    with pytest.raises(TableError, match="no routing table yet: p-routes has not arrived"):
        APIWatch(router, client, "p").load()


async def test_following_backs_off_while_the_api_fails(
    api: Emulator, client: KubeClient, caplog: pytest.LogCaptureFixture
):
    api[f"get {core_path('configmaps', NS)}/p-routes"] << 500 << {"message": "etcd is down"}
    caplog.set_level(logging.WARNING, "switchyard.router")
    task = asyncio.ensure_future(APIWatch(Router(), client, "p").follow("configmaps", retry_delay=0.01))
    try:
        await eventually(lambda: _async(len(caplog.records) >= 3 or None))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    messages = [r.getMessage() for r in caplog.records]
    assert "HTTP 500" in messages[0] and "etcd is down" in messages[0]
    assert [m.rsplit(" ", 1)[1] for m in messages[:3]] == ["0.01s", "0.02s", "0.04s"]


async def _async(value: object) -> object:
    return value


async def test_no_request_fails_between_the_routes_and_the_keys(
    kube: Kube, client: KubeClient, caplog: pytest.LogCaptureFixture
):
    """Routes arrive before the credentials (APIWatch): /readyz says which provider lacks its
    keys, and an SDK request in that window waits for them instead of getting a 503."""
    from aiohttp import ClientSession, web
    from openai import AsyncOpenAI
    from switchyard_sim import Simulator

    sim = Simulator()
    await sim.start()
    table = {
        "providers": [
            {"name": "oa", "type": "openai-compatible", "baseURL": sim.base_url("oa"),
             "credentials": [{"name": "main", "key": "oa.main"}]},
            {"name": "spare", "type": "openai-compatible", "baseURL": sim.base_url("spare"),
             "credentials": [{"name": "main", "key": "spare.main"}]},
        ],
        "routes": [{"name": "chat", "targets": [{"provider": "oa", "model": "m"}]}],
    }
    caplog.set_level(logging.WARNING, "switchyard.router")
    router = Router()
    runner = router.runner()
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    sdk = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    watch = APIWatch(router, client, "p", credentials_from_api=True)
    tasks = [asyncio.ensure_future(watch.follow(kind, retry_delay=0.05)) for kind in ("configmaps", "secrets")]
    try:
        routes = {"metadata": {"name": "p-routes"}, "data": {"table.yaml": yaml.safe_dump(table)}}
        await kube.create(core_path("configmaps", NS), routes)
        await eventually(lambda: _async(router.table))
        async with ClientSession() as http, http.get(f"{url}/readyz") as resp:
            assert resp.status == 503
            assert "credentials missing for providers: oa, spare" in await resp.text()
        assert "provider oa has none of its keys (oa.main)" in caplog.text
        # In the window: requests wait for the keys rather than fail.
        early = [
            asyncio.ensure_future(sdk.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}]))
            for _ in range(3)
        ]
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in early)
        secret = {"metadata": {"name": "p-credentials"}, "data": {"oa.main": base64.b64encode(b"sk-api-0001").decode()}}
        await kube.create(core_path("secrets", NS), secret)
        answers = await asyncio.wait_for(asyncio.gather(*early), 10)
        assert all(a.choices[0].message.content for a in answers)
        # Every route can be served: ready, the provider still without keys named all the same.
        async with ClientSession() as http, http.get(f"{url}/readyz") as resp:
            assert resp.status == 200
            assert (await resp.text()).endswith("credentials missing for providers: spare")
        assert sim.stats("oa")["requests"] == 3
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sdk.close()
        await runner.cleanup()
        await sim.stop()
