"""The switchyard-operator command line and the small API client, without a cluster."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import httpx
import kopf
import pytest
from switchyard_operator import cli, handlers
from switchyard_operator.kube import Kube, KubeError, _ssl_context

from .conftest import eventually  # noqa: F401  (keeps the fixture module imported)


def test_cli_requires_a_scope(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args([])
    assert "--namespace" in capsys.readouterr().err


def test_cli_runs_kopf_with_peering_and_namespaces(monkeypatch):
    seen = {}

    async def fake_operator(**kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(kopf, "operator", fake_operator)
    monkeypatch.setattr(kopf, "configure", lambda **kwargs: seen.setdefault("logging", kwargs))
    assert cli.main(["-n", "a", "--namespace", "b", "--priority", "5", "-v"]) == 0
    assert seen["namespaces"] == ["a", "b"] and seen["clusterwide"] is False
    assert seen["peering_name"] == "switchyard" and seen["standalone"] is False and seen["priority"] == 5
    assert seen["memo"].connection is None
    assert seen["logging"] == {
        "verbose": True, "debug": False, "log_format": kopf.LogFormat.FULL, "log_refkey": None
    }
    seen.clear()
    argv = ["--all-namespaces", "--standalone", "--liveness", "http://0.0.0.0:8080/healthz", "--log-format", "json"]
    assert cli.main(argv) == 0
    assert seen["clusterwide"] is True and seen["standalone"] is True
    assert seen["peering_name"] is None  # a name would make kopf wait for a peering object
    assert seen["liveness_endpoint"] == "http://0.0.0.0:8080/healthz"
    assert seen["logging"]["log_format"] is kopf.LogFormat.JSON and seen["logging"]["log_refkey"] == "k8s"
    assert seen["memo"].endpoints.allowed == ()  # official hosts only
    seen.clear()
    assert cli.main(["-A", "--allow-endpoint", "http://vllm:8000", "--allow-endpoint=https://*.corp.example"]) == 0
    assert [str(e) for e in seen["memo"].endpoints.allowed] == ["http://vllm:8000", "https://*.corp.example:443"]


def test_cli_refuses_a_bad_allow_list_entry(capsys):
    assert cli.main(["-A", "--allow-endpoint", "https://proxy.example/?token=x"]) == 2
    assert "--allow-endpoint: allow-list entry 'https://proxy.example/?token=x' must not carry a query" in (
        capsys.readouterr().err)


def test_cli_refuses_peering_with_standalone(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["-A", "--standalone", "--peering", "x"])


def test_settings_keep_kopf_out_of_the_status():
    settings = kopf.OperatorSettings()
    handlers.configure(settings)
    assert settings.persistence.finalizer == "switchyard.dev/operator"
    # the API server selects what reaches the operator: opted-in and own Secrets, own ConfigMaps
    assert list(settings.watching.label_selectors.values()) == [
        "switchyard.dev/credentials in (true,compiled)", "app.kubernetes.io/managed-by=switchyard-operator"]
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)


async def test_client_login_flavours(tmp_path: Path):
    kube = Kube.from_connection(kopf.ConnectionInfo(server="https://k8s:6443", token="t0k", insecure=True))
    assert kube.client.headers["Authorization"] == "Bearer t0k"
    await kube.close()
    kube = Kube.from_connection(kopf.ConnectionInfo(server="http://k8s", username="u", password="p"))
    assert kube.client.auth is not None
    await kube.close()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "1", "-subj", "/CN=test"], check=True, capture_output=True,
    )
    return key, crt


def test_tls_material_from_paths_and_data(tmp_path):
    try:
        key, crt = _self_signed(tmp_path)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("openssl is not available")
    assert _ssl_context(kopf.ConnectionInfo(server="https://x", insecure=True)) is False
    by_path = kopf.ConnectionInfo(server="https://x", ca_path=str(crt), certificate_path=str(crt),
                                  private_key_path=str(key))
    assert _ssl_context(by_path)
    data = kopf.ConnectionInfo(
        server="https://x",
        ca_data=base64.b64encode(crt.read_bytes()).decode(),
        certificate_data=crt.read_text(),
        private_key_data=base64.b64encode(key.read_bytes()).decode(),
    )
    assert _ssl_context(data)


async def test_client_errors():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/boom":
            return httpx.Response(403, json={"message": "forbidden: no RBAC"})
        return httpx.Response(500, text="not json")

    kube = Kube(httpx.AsyncClient(base_url="http://k8s", transport=httpx.MockTransport(answer)))
    with pytest.raises(KubeError, match="HTTP 403: forbidden: no RBAC"):
        await kube.get("/boom")
    with pytest.raises(KubeError, match="HTTP 500"):
        await kube.list("/other")
    await kube.close()


async def test_a_read_on_a_connection_the_server_dropped_is_sent_again():
    from aiohttp import web
    from switchyard_operator.kube import Kube

    calls = []

    async def handler(request: web.Request) -> web.StreamResponse:
        calls.append(request.method)
        if len(calls) == 1:
            assert request.transport is not None
            request.transport.abort()  # as an API server closing an idle keep-alive connection
            return web.Response()
        return web.json_response({"items": [{"metadata": {"name": "x"}}]})

    app = web.Application()
    app.router.add_route("*", "/api/v1/namespaces/team/configmaps", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    kube = Kube(httpx.AsyncClient(base_url=url))
    try:
        assert [i["metadata"]["name"] for i in await kube.list("/api/v1/namespaces/team/configmaps")] == ["x"]
        assert calls == ["GET", "GET"]
        calls.clear()
        with pytest.raises(httpx.RemoteProtocolError):  # a write is never sent twice
            await kube.create("/api/v1/namespaces/team/configmaps", {"metadata": {"name": "y"}})
        assert calls == ["POST"]
    finally:
        await kube.close()
        await runner.cleanup()
