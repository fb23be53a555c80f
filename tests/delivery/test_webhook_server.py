"""The injection webhook served by kopf for real, and the self-managed certificates.

kopf runs with only the webhook's handlers (a registry of its own, so the operator tests never
see a mutating handler) against the emulated API (tests/operator/emulator.py). The test plays
the API server: it POSTs an AdmissionReview over HTTPS to /inject_router, verifying the
serving certificate against the CA that the operator stored in its Secret and patched into
the MutatingWebhookConfiguration.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import ssl
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import kopf
import pytest
from kmock import Server
from switchyard_operator import certs
from switchyard_operator.kube import Kube, core_path
from switchyard_operator.webhook import (
    HANDLER_ID,
    POLICY_ANNOTATION,
    SelfManagedCerts,
    ServerSettings,
    WebhookConfig,
    register,
)

from tests.operator.conftest import fast_settings
from tests.operator.emulator import Emulator

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("ignore:read_binary is deprecated")]

NS = "switchyard"
SERVICE = "switchyard-webhook"
MWC = "switchyard-sidecar-injector"
MWC_PATH = f"{certs.WEBHOOK_CONFIGURATIONS}/{MWC}"
SELF_MANAGED = SelfManagedCerts(
    secretName="switchyard-webhook-tls", namespace=NS, serviceName=SERVICE, webhookConfiguration=MWC
)


@pytest.fixture
async def api() -> AsyncIterator[Emulator]:
    emulator = Emulator()
    emulator.resources.load_bundled()
    async with emulator, Server(emulator):
        yield emulator


@pytest.fixture
async def kube(api: Emulator) -> AsyncIterator[Kube]:
    client = Kube.from_connection(kopf.ConnectionInfo(server=str(api.url)))
    yield client
    await client.close()


async def create_webhook_configuration(kube: Kube) -> None:
    await kube.create(certs.WEBHOOK_CONFIGURATIONS, {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": MWC},
        "webhooks": [{
            "name": "inject.switchyard.dev",
            "clientConfig": {"service": {"name": SERVICE, "namespace": NS, "path": f"/{HANDLER_ID}", "port": 443}},
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Ignore",
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
        }],
    })


def review(
    annotations: dict[str, str], *, account: str | None = None, operation: str = "CREATE", **spec: Any
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"containers": [{"name": "app", "image": "chatbot:1"}], **spec}
    if account is not None:
        pod_spec["serviceAccountName"] = account
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team",
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            # As the API server sends it: the namespace is the request's, not yet in the body.
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"generateName": "chatbot-", "annotations": annotations},
                "spec": pod_spec,
            },
            "dryRun": False,
        },
    }


async def grant_use(kube: Kube, namespace: str, account: str, policies: list[str]) -> None:
    """What the chart's routerAccess gives a ServiceAccount: `use` on its policies, by name."""
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/" + namespace
    await kube.create(f"{rbac}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": f"router-{account}", "namespace": namespace},
        "rules": [{"apiGroups": ["switchyard.dev"], "resources": ["routingpolicies"],
                   "resourceNames": policies, "verbs": ["use"]}],
    })
    await kube.create(f"{rbac}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": f"router-{account}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"router-{account}"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    })


@pytest.fixture
async def webhook(api: Emulator, kube: Kube, tmp_path: Path, unused_tcp_port: int) -> AsyncIterator[int]:
    """kopf with the webhook (self-managed certificates); yields the port it serves on."""
    await create_webhook_configuration(kube)
    config = WebhookConfig(
        sidecar={"image": "registry.example/switchyard:1.2.3"},
        server=ServerSettings(port=unused_tcp_port, selfManaged=SELF_MANAGED, workDir=str(tmp_path / "tls")),
    )
    registry = kopf.OperatorRegistry()
    register(registry, config)
    info = kopf.ConnectionInfo(server=str(api.url))
    kopf.on.login(registry=registry)(lambda **_: info)
    memo = kopf.Memo(runtime=types.SimpleNamespace(kube=kube))
    task = asyncio.create_task(kopf.operator(
        registry=registry, settings=fast_settings(), clusterwide=True, standalone=True, memo=memo,
    ))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            assert not task.done(), task.exception()
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
                writer.close()
                break
            assert asyncio.get_running_loop().time() < deadline, "the webhook server did not start"
            await asyncio.sleep(0.05)
        yield unused_tcp_port
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)


async def post_review(port: int, ca: bytes, body: dict[str, Any]) -> dict[str, Any]:
    context = ssl.create_default_context(cadata=ca.decode())
    async with aiohttp.ClientSession() as session, session.post(
        f"https://127.0.0.1:{port}/{HANDLER_ID}",
        json=body,
        ssl=context,
        server_hostname=f"{SERVICE}.{NS}.svc",  # what the API server checks the certificate against
    ) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


async def test_admission_review_over_https(webhook: int, kube: Kube) -> None:
    secret = await kube.get(core_path("secrets", NS, SELF_MANAGED.secret_name))
    assert secret is not None and secret["type"] == "kubernetes.io/tls"
    ca = base64.b64decode(secret["data"]["ca.crt"])
    configuration = await kube.get(MWC_PATH)
    assert configuration is not None
    assert configuration["webhooks"][0]["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]

    await grant_use(kube, "team", "default", ["chatbot"])
    request = review({POLICY_ANNOTATION: "chatbot"})
    answer = await post_review(webhook, ca, request)
    response = answer["response"]
    assert response["uid"] == request["request"]["uid"] and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    pod = jsonpatch.apply_patch(request["request"]["object"], ops)
    router = pod["spec"]["initContainers"][0]
    assert router["restartPolicy"] == "Always" and router["image"] == "registry.example/switchyard:1.2.3"
    assert "--policy" in router["args"] and "chatbot" in router["args"]
    assert pod["spec"]["containers"][0]["env"][0]["name"] == "OPENAI_BASE_URL"

    # Not annotated: allowed, untouched.
    plain = (await post_review(webhook, ca, review({})))["response"]
    assert plain["allowed"] is True and "patch" not in plain

    # A bad policy name: refused with the reason, for the person applying the manifest.
    bad = (await post_review(webhook, ca, review({POLICY_ANNOTATION: "Not_A_Name"})))["response"]
    assert bad["allowed"] is False and bad["status"]["code"] == 400
    assert "not a RoutingPolicy name" in bad["status"]["message"]


# --------------------------------------------------------------------------- certs.py


async def test_replicas_share_one_certificate(kube: Kube) -> None:
    first, second = await asyncio.gather(
        certs.ensure_secret(kube, SELF_MANAGED), certs.ensure_secret(kube, SELF_MANAGED)
    )
    again = await certs.ensure_secret(kube, SELF_MANAGED)
    assert first == second == again, "the loser of the create race takes the winner's certificate"
    stored = await kube.get(core_path("secrets", NS, SELF_MANAGED.secret_name))
    assert stored is not None and certs.CertBundle.from_secret(stored) == again


async def test_expiring_certificate_is_replaced(kube: Kube) -> None:
    names = certs.service_names(SERVICE, NS)
    old = certs.generate(names, validity_days=10)
    assert not certs.is_usable(old, names)
    await kube.create(core_path("secrets", NS), {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": SELF_MANAGED.secret_name, "namespace": NS}, "data": old.secret_data(),
    })
    fresh = await certs.ensure_secret(kube, SELF_MANAGED)
    assert fresh != old and certs.is_usable(fresh, names)


async def test_ca_bundle_patch(kube: Kube) -> None:
    assert await certs.patch_ca_bundle(kube, MWC, b"ca") is False  # absent: nothing to patch
    await create_webhook_configuration(kube)
    assert await certs.patch_ca_bundle(kube, MWC, b"ca") is True
    stored = await kube.get(MWC_PATH)
    assert stored is not None
    assert stored["webhooks"][0]["clientConfig"]["caBundle"] == base64.b64encode(b"ca").decode()
    assert stored["webhooks"][0]["clientConfig"]["service"]["name"] == SERVICE


def test_generated_certificate_verifies_for_the_service_names(tmp_path: Path) -> None:
    from cryptography import x509

    names = certs.service_names(SERVICE, NS)
    bundle = certs.generate(names)
    assert certs.is_usable(bundle, names)
    assert not certs.is_usable(bundle, [*names, "other.example"])
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3640)
    assert not certs.is_usable(bundle, names, now=later)
    cert = x509.load_pem_x509_certificate(bundle.cert)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(bundle.ca))
    bundle.write(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    assert (tmp_path / "tls.key").stat().st_mode & 0o077 == 0


def test_server_by_certificate_source(tmp_path: Path) -> None:
    memo = kopf.Memo()
    managed = certs.webhook_server(ServerSettings(selfManaged=SELF_MANAGED, workDir=str(tmp_path)), memo)
    assert isinstance(managed, certs.SelfManagedWebhookServer) and managed.port == 9443
    mounted = certs.webhook_server(ServerSettings(certDir="/certs"), memo)
    assert str(mounted.certfile) == "/certs/tls.crt" and str(mounted.cafile) == "/certs/ca.crt"
    with pytest.raises(ValueError, match="certDir"):
        certs.webhook_server(ServerSettings(), memo)
