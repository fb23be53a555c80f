"""The reconcile loop end to end: kopf against the emulated API server."""

from __future__ import annotations

import base64
import logging

import yaml
from switchyard_operator.kube import core_path, custom_path
from switchyard_operator.outputs import HASH_ANNOTATION, TABLE_KEY

from .conftest import cm_path, creds_path, eventually, policy_path, provider_path
from .manifests import NS, policy, provider, secret


def condition(body, type_):
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return cond
    return None


async def test_create_compiles_configmap_secret_and_status(api, kube, operator):
    await kube.create(core_path("secrets", NS), secret(OPENAI_API_KEY="sk-live-1"))
    await kube.create(custom_path("llmproviders", NS), provider())
    await kube.create(custom_path("routingpolicies", NS), policy())

    cm = await eventually(lambda: kube.get(cm_path("chat")))
    table = yaml.safe_load(cm["data"][TABLE_KEY])
    cred = table["providers"][0]["credentials"][0]
    assert (cred["name"], cred["key"]) == ("primary", "openai.primary")
    pol = await kube.get(policy_path("chat"))
    assert cm["metadata"]["annotations"][HASH_ANNOTATION]
    owner = cm["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("RoutingPolicy", pol["metadata"]["uid"], True)
    creds = await kube.get(creds_path("chat"))
    assert base64.b64decode(creds["data"]["openai.primary"]).decode() == "sk-live-1"

    async def compiled():
        body = await kube.get(policy_path("chat"))
        c = condition(body, "Compiled")
        return c and c["status"] == "True" and body

    body = await eventually(compiled)
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"] == 1
    assert body["status"]["tableHash"] == cm["metadata"]["annotations"][HASH_ANNOTATION]
    assert body["status"]["routes"] == [{"name": "chat", "strategy": "Priority", "targets": ["openai/m1"]}]
    assert condition(body, "Ready")["reason"] == "TableWritten"

    async def provider_ready():
        c = condition(await kube.get(provider_path("openai")), "Ready")
        return c and c["status"] == "True"

    await eventually(provider_ready)


async def setup_two_policies(kube):
    """Policy `one` routes to provider `a` (Secret keys-a), policy `two` to `b` (Secret keys-b)."""
    await kube.create(core_path("secrets", NS), secret("keys-a", K="sk-a-1", grant="a"))
    await kube.create(core_path("secrets", NS), secret("keys-b", K="sk-b-1", grant="b"))
    await kube.create(custom_path("llmproviders", NS), provider("a", secret="keys-a", key="K"))
    await kube.create(custom_path("llmproviders", NS), provider("b", secret="keys-b", key="K"))
    await kube.create(custom_path("routingpolicies", NS), policy("one", targets=[("a", "m1")]))
    await kube.create(custom_path("routingpolicies", NS), policy("two", targets=[("b", "m1")]))
    for name in ("one", "two"):
        await eventually(lambda name=name: kube.get(cm_path(name)))
        await eventually(lambda name=name: compiled_status(kube, name, "True"))


async def compiled_status(kube, name, status, reason=None):
    body = await kube.get(policy_path(name))
    c = condition(body, "Compiled")
    ok = c is not None and c["status"] == status and (reason is None or c["reason"] == reason)
    return body if ok else None


def rv(obj):
    return obj["metadata"]["resourceVersion"]


async def test_update_recompiles_and_bumps_observed_generation(api, kube, operator):
    await setup_two_policies(kube)
    before = await kube.get(cm_path("one"))
    await kube.patch(policy_path("one"), {"spec": {"routes": [
        {"name": "chat", "targets": [{"provider": "a", "model": "m1"}, {"provider": "b", "model": "m1"}]}]}})

    async def updated():
        cm = await kube.get(cm_path("one"))
        return cm if "name: b" in cm["data"][TABLE_KEY] else None

    cm = await eventually(updated)
    assert cm["metadata"]["annotations"][HASH_ANNOTATION] != before["metadata"]["annotations"][HASH_ANNOTATION]
    body = await eventually(lambda: compiled_status(kube, "one", "True"))
    await eventually(lambda: _observed(kube, "one", 2))
    creds = await kube.get(creds_path("one"))
    assert set(creds["data"]) == {"a.primary", "b.primary"}
    assert body["status"]["routes"][0]["targets"] == ["a/m1", "b/m1"]


async def _observed(kube, name, generation):
    body = await kube.get(policy_path(name))
    return body["metadata"]["generation"] == generation and body["status"].get("observedGeneration") == generation


async def test_secret_rotation_touches_only_the_affected_policy(api, kube, operator):
    await setup_two_policies(kube)
    cm_one, cm_two = await kube.get(cm_path("one")), await kube.get(cm_path("two"))
    creds_two = await kube.get(creds_path("two"))
    await kube.patch(core_path("secrets", NS, "keys-a"), {"data": {"K": base64.b64encode(b"sk-a-2").decode()}})

    async def rotated():
        creds = await kube.get(creds_path("one"))
        return base64.b64decode(creds["data"]["a.primary"]) == b"sk-a-2"

    await eventually(rotated)
    # the table does not change with a key value; the other policy is not touched at all
    assert rv(await kube.get(cm_path("one"))) == rv(cm_one)
    assert rv(await kube.get(cm_path("two"))) == rv(cm_two)
    assert rv(await kube.get(creds_path("two"))) == rv(creds_two)


async def test_removed_provider_keeps_the_last_good_table(api, kube, operator):
    await setup_two_policies(kube)
    good = await kube.get(cm_path("one"))
    await api.delete(provider_path("a"))  # through the API, as kubectl would

    body = await eventually(lambda: compiled_status(kube, "one", "False", "UnknownProvider"), timeout=8)
    compiled = condition(body, "Compiled")
    assert "LLMProvider 'a' not found in namespace 'team'" in compiled["message"]
    assert "spec.routes[0].targets[0].provider" in compiled["message"]
    ready = condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "LastGoodTable")
    assert good["metadata"]["annotations"][HASH_ANNOTATION] in ready["message"]
    cm = await kube.get(cm_path("one"))
    assert cm["data"] == good["data"]
    # the other policy is unaffected
    assert condition(await kube.get(policy_path("two")), "Compiled")["status"] == "True"
    events = [e for e in await kube.list(core_path("events", NS)) if e.get("reason") == "UnknownProvider"]
    assert events and events[0]["type"] == "Warning" and events[0]["involvedObject"]["name"] == "one"


async def test_invalid_spec_and_missing_secret_are_reported_and_heal(api, kube, operator):
    bad = policy("bad", targets=[("x", "m1"), ("x", "m1")])
    await kube.create(custom_path("routingpolicies", NS), bad)
    body = await eventually(lambda: compiled_status(kube, "bad", "False", "InvalidSpec"))
    assert "appears twice" in condition(body, "Compiled")["message"]
    assert condition(body, "Ready")["status"] == "False"
    assert await kube.get(cm_path("bad")) is None

    await kube.create(custom_path("llmproviders", NS), provider("x", secret="late", key="K"))
    await kube.patch(policy_path("bad"), {"spec": {"routes": [{"name": "chat", "targets": [{"provider": "x", "model": "m1"}]}]}})
    body = await eventually(lambda: compiled_status(kube, "bad", "False", "SecretNotGranted"))
    assert "kubectl -n team create secret generic late" in condition(body, "Compiled")["message"]

    async def provider_not_ready():
        c = condition(await kube.get(provider_path("x")), "Ready")
        return c and c["reason"] == "SecretNotGranted"

    await eventually(provider_not_ready)
    await kube.create(core_path("secrets", NS), secret("late", OTHER="v", grant="x"))
    await eventually(lambda: compiled_status(kube, "bad", "False", "KeyMissing"))
    await kube.patch(core_path("secrets", NS, "late"), {"data": {"K": base64.b64encode(b"sk-late").decode()}})
    await eventually(lambda: compiled_status(kube, "bad", "True"))
    assert await kube.get(cm_path("bad"))


async def test_delete_policy_collects_its_outputs(api, kube, operator):
    await setup_two_policies(kube)
    await api.delete(policy_path("one"))

    async def gone():
        return await kube.get(cm_path("one")) is None and await kube.get(creds_path("one")) is None

    await eventually(gone)
    assert await kube.get(cm_path("two"))


async def test_deleted_output_is_rewritten(api, kube, operator):
    await setup_two_policies(kube)
    await api.delete(cm_path("one"))
    await api.delete(creds_path("one"))

    async def back():
        return await kube.get(cm_path("one")) and await kube.get(creds_path("one"))

    await eventually(back)


def writes(api, since=0):
    """Writes to ConfigMaps, Secrets and policy status after request number `since`."""
    out = []
    for request in list(api)[since:]:
        path = request.url.path
        if request.method in ("POST", "PATCH", "PUT") and (
            "/configmaps" in path or ("/secrets" in path and "keys" not in path) or "routingpolicies/" in path
        ):
            out.append(f"{request.method.value} {path}")
    return out


async def test_an_unchanged_result_writes_nothing(api, kube, operator):
    from switchyard_operator.reconcile import on_secret_changed, reconcile_policy, reconcile_provider

    await setup_two_policies(kube)
    await eventually(lambda: _observed(kube, "one", 1))
    rt = operator.runtime
    log = logging.getLogger("test")
    since = len(list(api))
    result = await reconcile_policy(rt, NS, "one", log)
    assert result.ok
    assert await reconcile_provider(rt, NS, "a", log) is True
    assert await on_secret_changed(rt, NS, "keys-a", log) == ["one"]
    assert writes(api, since) == []
    assert "POST /api/v1/namespaces/team/configmaps" in writes(api)  # the probe sees writes
    assert await reconcile_policy(rt, NS, "absent", log) is None
    assert await reconcile_provider(rt, NS, "absent", log) is None
