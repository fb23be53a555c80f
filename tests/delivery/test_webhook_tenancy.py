"""The webhook under attack (issue 18, finding 5), served by kopf for real over HTTPS.

A pod annotated with another team's policy, a pod that arrives with the router's container or
marker already in it, reviews that are not a pod CREATE, and thousands of forged UPDATE reviews:
each is refused (with the reason and the fix), and the operator's memory does not grow.
"""

from __future__ import annotations

import base64
import gc
import json
import tracemalloc
import uuid
from typing import Any

import aiohttp
import jsonpatch
import pytest
from kmock import ResourceInfo
from switchyard_operator.kube import Kube, core_path, custom_path
from switchyard_operator.webhook import HANDLER_ID, INJECTED_ANNOTATION, POLICY_ANNOTATION

from tests.operator.emulator import Emulator

from .test_webhook_server import NS, SELF_MANAGED, SERVICE, api, grant_use, kube, post_review, review, webhook

__all__ = ["api", "kube", "webhook"]
pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore:read_binary is deprecated")]


async def ca_of(kube: Kube) -> bytes:
    secret = await kube.get(core_path("secrets", NS, SELF_MANAGED.secret_name))
    assert secret is not None
    return base64.b64decode(secret["data"]["ca.crt"])


def reviewed_pod(answer: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    ops = json.loads(base64.b64decode(answer["response"]["patch"]))
    pod: dict[str, Any] = jsonpatch.apply_patch(request["request"]["object"], ops)
    return pod


async def test_a_pod_gets_only_a_policy_its_service_account_may_use(webhook: int, kube: Kube, api: Emulator) -> None:
    ca = await ca_of(kube)
    await grant_use(kube, "team", "team-a", ["team-a"])

    # Team A's pod asks for team B's policy (and so its keys): refused, with the fix.
    stolen = (await post_review(webhook, ca, review({POLICY_ANNOTATION: "team-b"}, account="team-a")))["response"]
    assert stolen["allowed"] is False and stolen["status"]["code"] == 403
    assert stolen["status"]["message"].startswith(
        "ServiceAccount team/team-a may not use RoutingPolicy team-b: grant it the verb 'use' on "
        "routingpolicies/team-b (the chart's routerAccess does)")
    # A pod with no ServiceAccount named runs as `default`, which has no grant either.
    assert (await post_review(webhook, ca, review({POLICY_ANNOTATION: "team-a"})))["response"]["allowed"] is False

    request = review({POLICY_ANNOTATION: "team-a"}, account="team-a")
    answer = await post_review(webhook, ca, request)
    assert answer["response"]["allowed"] is True
    pod = reviewed_pod(answer, request)
    assert pod["metadata"]["annotations"][INJECTED_ANNOTATION] == "team-a"
    asked = [q.data for q in api if q.url.path.endswith("/subjectaccessreviews")]
    assert asked[-1]["spec"]["user"] == "system:serviceaccount:team:team-a"
    assert asked[-1]["spec"]["resourceAttributes"] == {
        "namespace": "team", "verb": "use", "group": "switchyard.dev", "resource": "routingpolicies", "name": "team-a"}


async def test_a_policy_that_delivers_keys_through_the_api_mounts_none(webhook: int, kube: Kube, api: Emulator) -> None:
    ca = await ca_of(kube)
    api.resources["switchyard.dev/v1alpha1/routingpolicies"] = ResourceInfo(
        kind="RoutingPolicy", singular="routingpolicy", namespaced=True, verbs={"get", "list", "create"})
    await kube.create(custom_path("routingpolicies", "team"), {
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "RoutingPolicy", "metadata": {"name": "watcher"},
        "spec": {"routes": [], "credentialsDelivery": "APIWatch"}})
    await grant_use(kube, "team", "team-a", ["watcher"])
    request = review({POLICY_ANNOTATION: "watcher"}, account="team-a")
    pod = reviewed_pod(await post_review(webhook, ca, request), request)
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["switchyard-table"]
    assert "--credentials-from-api" in pod["spec"]["initContainers"][0]["args"]
    # Without a ServiceAccount token the router could not read them: refused, saying why.
    no_token = review({POLICY_ANNOTATION: "watcher"}, account="team-a", automountServiceAccountToken=False)
    refused = (await post_review(webhook, ca, no_token))["response"]
    assert refused["allowed"] is False and "automountServiceAccountToken is false" in refused["status"]["message"]


async def test_a_pod_that_comes_with_the_injection_is_refused(webhook: int, kube: Kube) -> None:
    ca = await ca_of(kube)
    await grant_use(kube, "team", "team-a", ["team-a"])
    forged = review({POLICY_ANNOTATION: "team-a", INJECTED_ANNOTATION: "team-b"}, account="team-a")
    answer = (await post_review(webhook, ca, forged))["response"]
    assert answer["allowed"] is False and answer["status"]["code"] == 400
    assert f"the pod already carries the annotation {INJECTED_ANNOTATION}" in answer["status"]["message"]
    lookalike = review({POLICY_ANNOTATION: "team-a"}, account="team-a", initContainers=[{
        "name": "switchyard-router", "image": "evil:1", "args": ["--policy", "team-b"]}])
    answer = (await post_review(webhook, ca, lookalike))["response"]
    assert answer["allowed"] is False and "a container named switchyard-router" in answer["status"]["message"]


async def test_reviews_other_than_a_pod_create_are_refused_at_once(webhook: int, kube: Kube) -> None:
    ca = await ca_of(kube)
    for operation in ("UPDATE", "DELETE", "CONNECT"):
        answer = (await post_review(webhook, ca, review({POLICY_ANNOTATION: "team-a"}, operation=operation)))
        assert answer["response"] == {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": False,
            "status": {"code": 400, "message": "this webhook reviews pod CREATE requests only"}}
    configmap = review({})
    configmap["request"]["resource"] = {"group": "", "version": "v1", "resource": "configmaps"}
    assert (await post_review(webhook, ca, configmap))["response"]["allowed"] is False
    assert (await post_review(webhook, ca, {"request": "nonsense"}))["response"] == {
        "uid": "", "allowed": False, "status": {"code": 400, "message": "not an AdmissionReview"}}


async def test_forged_update_reviews_do_not_grow_memory(webhook: int, kube: Kube) -> None:
    """kopf would keep ~1 KB per object named in an UPDATE review, for ever."""
    import ssl

    ca = await ca_of(kube)
    context = ssl.create_default_context(cadata=ca.decode())

    def forged() -> dict[str, Any]:
        body = review({POLICY_ANNOTATION: "team-a"}, operation="UPDATE")
        body["request"]["uid"] = str(uuid.uuid4())
        body["request"]["object"]["metadata"].update(name=f"pod-{uuid.uuid4().hex}", uid=str(uuid.uuid4()))
        body["request"]["oldObject"] = body["request"]["object"]
        return body

    async with aiohttp.ClientSession() as session:
        async def send(n: int) -> None:
            for _ in range(n):
                async with session.post(f"https://127.0.0.1:{webhook}/{HANDLER_ID}", json=forged(), ssl=context,
                                        server_hostname=f"{SERVICE}.{NS}.svc") as response:
                    assert response.status == 200
                    assert (await response.json())["response"]["allowed"] is False

        await send(50)  # warm up: connections, caches
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            await send(1500)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    print(f"\n1500 forged UPDATE reviews: {grown} bytes more")
    assert grown < 200_000, f"{grown} bytes more after 1500 forged reviews"
