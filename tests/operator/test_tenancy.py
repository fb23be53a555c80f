"""Attacks of a namespace user (may write LLMProviders, RoutingPolicies and ConfigMaps, may not
read Secrets) against the real operator on the emulated API: each is refused, reported, harmless.

Finding 1: an LLMProvider naming a Secret the author cannot read. Finding 3: a RoutingPolicy
named so that its outputs would overwrite (and adopt) someone else's Secret and ConfigMap.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from switchyard_operator.endpoints import EndpointPolicy
from switchyard_operator.kube import Kube, core_path, custom_path

from ..hostile import HostileUpstream
from .conftest import cm_path, creds_path, eventually, policy_path, provider_path, running_operator
from .manifests import NS, policy, provider, secret
from .test_lifecycle import compiled_status, condition

PASSWORD = "hunter2-database-password"
ACTOR = "X-Test-Actor"  # marks the test's own requests, to tell the operator's apart


@pytest.fixture
async def kube(api):
    """The namespace user (and the other teams): the test's requests, marked."""
    client = Kube(httpx.AsyncClient(base_url=str(api.url), headers={"Accept": "application/json", ACTOR: "user"}))
    yield client
    await client.close()


async def delete(kube, path):
    response = await kube.client.request("DELETE", path)
    assert response.status_code < 400, response.text


def secret_requests(api) -> list[str]:
    """Every request the operator made for Secrets, as `METHOD path?query`."""
    return [
        f"{r.method.value} {r.url.path}?{r.url.query_string}"
        for r in list(api)
        if "/secrets" in r.url.path and r.headers.get(ACTOR) != "user"
    ]


async def events_text(kube) -> str:
    return json.dumps(await kube.list(core_path("events", NS)))


async def ready_reason(kube, name):
    c = condition(await kube.get(provider_path(name)), "Ready")
    return c and c["reason"]


async def test_a_provider_cannot_borrow_a_secret_that_did_not_opt_in(api, kube, operator):
    # The victim's Secret: another team's database password, no opt-in.
    await kube.create(core_path("secrets", NS), secret("db", grant=None, password=PASSWORD, user="admin"))
    await kube.create(custom_path("llmproviders", NS), provider("thief", secret="db", key="password"))
    await kube.create(custom_path("routingpolicies", NS), policy("steal", targets=[("thief", "m1")]))

    body = await eventually(lambda: compiled_status(kube, "steal", "False", "SecretNotGranted"))
    message = condition(body, "Compiled")["message"]
    assert "kubectl -n team label secret db switchyard.dev/credentials=true" in message
    assert "switchyard.dev/allowed-providers=thief" in message
    await eventually(lambda: _is(ready_reason(kube, "thief"), "SecretNotGranted"))
    # refused: nothing written for the policy
    assert await kube.get(creds_path("steal")) is None and await kube.get(cm_path("steal")) is None
    # reported without the value or the Secret's key names, in status and Events
    for text in (json.dumps(await kube.get(provider_path("thief"))), json.dumps(body), await events_text(kube)):
        assert PASSWORD not in text and "user" not in text.replace("user-", "")
    # harmless: the operator never asked for that Secret, and the API server never sent it
    requests = secret_requests(api)
    assert requests and not any("/secrets/db" in r for r in requests)
    assert all("labelSelector=" in r for r in requests if r.startswith("GET"))
    assert not any(r.startswith(("DELETE", "PUT")) for r in requests)


async def test_a_grant_names_its_providers_and_can_be_withdrawn(api, kube, operator):
    await kube.create(core_path("secrets", NS), secret("keys", grant="openai", OPENAI_API_KEY="sk-team-a"))
    await kube.create(custom_path("llmproviders", NS), provider("openai"))
    await kube.create(custom_path("llmproviders", NS), provider("copycat"))  # same Secret, not named
    await kube.create(custom_path("routingpolicies", NS), policy("mine", targets=[("openai", "m1")]))
    await kube.create(custom_path("routingpolicies", NS), policy("theirs", targets=[("copycat", "m1")]))

    await eventually(lambda: compiled_status(kube, "mine", "True"))
    body = await eventually(lambda: compiled_status(kube, "theirs", "False", "SecretNotGranted"))
    assert "opted in for LLMProviders openai, not 'copycat'" in condition(body, "Compiled")["message"]
    assert "switchyard.dev/allowed-providers=copycat,openai" in condition(body, "Compiled")["message"]
    assert await kube.get(creds_path("theirs")) is None
    assert "sk-team-a" not in await events_text(kube)

    # The Secret's owner withdraws the grant: the key leaves the routers' Secret at once.
    await kube.patch(core_path("secrets", NS, "keys"), {"metadata": {"labels": {"switchyard.dev/credentials": None}}})
    await eventually(lambda: compiled_status(kube, "mine", "False", "SecretNotGranted"))

    async def revoked():
        creds = await kube.get(creds_path("mine"))
        return creds is not None and "openai.primary" not in (creds.get("data") or {})

    await eventually(revoked)
    events = [e for e in await kube.list(core_path("events", NS)) if e.get("reason") == "KeysRevoked"]
    assert events and events[0]["involvedObject"]["name"] == "mine"

    # ... and granted again, it comes back.
    await kube.patch(core_path("secrets", NS, "keys"), {"metadata": {"labels": {"switchyard.dev/credentials": "true"}}})

    async def restored():
        creds = await kube.get(creds_path("mine"))
        return base64.b64decode((creds.get("data") or {}).get("openai.primary", "")) == b"sk-team-a"

    await eventually(restored)


async def test_a_policy_named_after_someone_elses_objects_adopts_nothing(api, kube, operator):
    # The payments team's own Secret and ConfigMap, named as a policy `payments` would write them.
    foreign_secret = secret("payments-credentials", grant=None, DB=PASSWORD, TOKEN="t")
    foreign_cm = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "payments-routes", "namespace": NS}, "data": {"table.yaml": "theirs"}}
    await kube.create(core_path("secrets", NS), foreign_secret)
    await kube.create(core_path("configmaps", NS), foreign_cm)
    before = {p: (await kube.get(p)) for p in (creds_path("payments"), cm_path("payments"))}

    await kube.create(core_path("secrets", NS), secret("keys", grant="openai", OPENAI_API_KEY="sk-1"))
    await kube.create(custom_path("llmproviders", NS), provider("openai"))
    await kube.create(custom_path("routingpolicies", NS), policy("payments"))

    async def conflicted():
        ready = condition(await kube.get(policy_path("payments")), "Ready")
        return ready if ready and ready["reason"] == "NameConflict" else None

    ready = await eventually(conflicted)
    assert ready["status"] == "False"
    assert "ConfigMap team/payments-routes already exists and was not created by Switchyard" in ready["message"]
    assert "kubectl -n team delete configmap payments-routes" in ready["message"]
    events = [e for e in await kube.list(core_path("events", NS)) if e.get("reason") == "NameConflict"]
    assert events and events[0]["type"] == "Warning"

    # The ConfigMap is freed; the Secret still clashes (the operator learns it only from a 409).
    await delete(kube, cm_path("payments"))

    async def secret_conflict():
        c = await conflicted()
        return c if c and "Secret team/payments-credentials" in c["message"] else None

    await eventually(secret_conflict)
    assert await kube.get(cm_path("payments")) is None, "no table without its keys"
    after = await kube.get(creds_path("payments"))
    assert after == before[creds_path("payments")], "the foreign Secret is untouched"
    assert not any(r.endswith("/secrets/payments-credentials?") or "payments-credentials" in r
                   for r in secret_requests(api) if not r.startswith("POST"))

    # Deleting the policy leaves the foreign Secret alone (nothing made it an owner).
    await delete(kube, policy_path("payments"))
    await eventually(lambda: _gone(kube, policy_path("payments")))
    assert await kube.get(creds_path("payments")) == before[creds_path("payments")]


async def test_a_look_alike_with_switchyard_labels_is_not_adopted(api, kube, operator):
    # Someone labels their ConfigMap as if Switchyard wrote it; without our ownerReference it is not ours.
    fake = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"},
            "metadata": {"name": "chat-routes", "namespace": NS,
                         "labels": {"app.kubernetes.io/managed-by": "switchyard-operator", "switchyard.dev/policy": "chat"}}}
    await kube.create(core_path("configmaps", NS), fake)
    fake_secret = secret("chat-credentials", grant=None, OTHER="v")
    fake_secret["metadata"]["labels"] = dict(fake["metadata"]["labels"])
    await kube.create(core_path("secrets", NS), fake_secret)
    await kube.create(core_path("secrets", NS), secret("keys", grant="openai", OPENAI_API_KEY="sk-1"))
    await kube.create(custom_path("llmproviders", NS), provider("openai"))
    await kube.create(custom_path("routingpolicies", NS), policy("chat"))

    async def conflicted():
        ready = condition(await kube.get(policy_path("chat")), "Ready")
        return ready and ready["reason"] == "NameConflict"

    await eventually(conflicted)
    cm = await kube.get(cm_path("chat"))
    assert cm["data"] == {"k": "v"} and "ownerReferences" not in cm["metadata"]
    # The ConfigMap freed, the labelled look-alike Secret is refused as well.
    await delete(kube, cm_path("chat"))

    async def secret_conflict():
        ready = condition(await kube.get(policy_path("chat")), "Ready")
        return ready and ready["reason"] == "NameConflict" and "Secret team/chat-credentials" in ready["message"]

    await eventually(secret_conflict)
    creds = await kube.get(creds_path("chat"))
    assert "ownerReferences" not in creds["metadata"] and set(creds["data"]) == {"OTHER"}


async def _is(awaitable, value):
    return await awaitable == value


async def _gone(kube, path):
    return await kube.get(path) is None


# --------------------------------------------------------------------------- endpoints (finding 1)

KEY = "sk-team-key-0123456789"


@pytest.fixture
async def upstream():
    server = await HostileUpstream().start()
    yield server
    await server.stop()


async def test_a_provider_cannot_aim_the_probe_and_its_key_anywhere(api, kube, upstream):
    """The namespace user points the provider the Secret serves at their own server, at the
    cloud metadata address and at a look-alike host: no probe leaves, the key stays put."""
    allowed = f"http://127.0.0.1:{upstream.port}/allowed"  # the platform allows one path there
    async with running_operator(api, EndpointPolicy.parse([allowed])):
        await kube.create(core_path("secrets", NS), secret("keys", grant="openai", OPENAI_API_KEY=KEY))
        await kube.create(custom_path("llmproviders", NS), provider(
            "openai", baseURL=f"{upstream.url}/steal/v1", healthCheck={"interval": "300ms"}))
        await kube.create(custom_path("routingpolicies", NS), policy("chat"))
        refused = await eventually(lambda: _ready_with(kube, "openai", "EndpointNotAllowed"))
        assert f"baseURL '{upstream.url}/steal/v1' is not an endpoint the platform allows" in refused["message"]
        assert "endpoints.allowed" in refused["message"]
        await eventually(lambda: compiled_status(kube, "chat", "False", "EndpointNotAllowed"))
        for url in ("http://169.254.169.254/latest/v1", "https://api.openai.com.evil.example/v1",
                    "http://[::ffff:127.0.0.1]:9/v1", f"{upstream.url}/allowed/../steal/v1",
                    f"{upstream.url}/allowedx/v1", "http://api.openai.com/v1"):
            await kube.patch(provider_path("openai"), {"spec": {"baseURL": url}})
            await eventually(lambda url=url: _ready_with(kube, "openai", "EndpointNotAllowed", url))
        # The one allow-listed prefix works, and its failed answer's body never reaches status.
        upstream.behaviour = _unauthorized_with_a_body
        await kube.patch(provider_path("openai"), {"spec": {"baseURL": f"{upstream.url}/allowed/v1"}})
        health = await eventually(lambda: _probed(kube, "openai"))
        assert health["lastError"] == "Unauthorized: HTTP 401"
        text = json.dumps(await kube.get(provider_path("openai"))) + await events_text(kube)
    assert "BODY-FROM-THE-ENDPOINT" not in text and KEY not in text
    assert [s.path_qs for s in upstream.seen] and all(s.path_qs.startswith("/allowed/v1/") for s in upstream.seen)


async def _unauthorized_with_a_body(request):
    from aiohttp import web

    return web.json_response({"error": {"message": "BODY-FROM-THE-ENDPOINT " + "x" * 300}}, status=401)


async def _ready_with(kube, name, reason, url=None):
    body = await kube.get(provider_path(name))
    ready = condition(body, "Ready")
    if not ready or ready["reason"] != reason:
        return None
    return ready if url is None or url in ready["message"] else None


async def _probed(kube, name):
    health = ((await kube.get(provider_path(name))).get("status") or {}).get("health") or {}
    return health if health.get("lastError") else None


# --------------------------------------------------------------------------- the operator's reach (finding 6)


async def test_the_operator_reads_no_secret_but_granted_ones_and_writes_only_its_own(api, kube, operator):
    """Secrets everywhere (another namespace's included), a team using Switchyard, outputs deleted
    and rewritten, a key rotated, a policy deleted: the operator never receives a Secret that did
    not opt in, never deletes or replaces anything, and writes only the objects it created."""
    await kube.create("/api/v1/namespaces/kube-system/secrets", secret("bootstrap", "kube-system", grant=None, token=PASSWORD))
    await kube.create(core_path("secrets", NS), secret("db", grant=None, password=PASSWORD))
    await kube.create(core_path("configmaps", NS), {"apiVersion": "v1", "kind": "ConfigMap",
                                                    "metadata": {"name": "app-settings", "namespace": NS}, "data": {"a": "b"}})
    await kube.create(core_path("secrets", NS), secret("keys", grant="openai", OPENAI_API_KEY="sk-1"))
    await kube.create(custom_path("llmproviders", NS), provider("openai"))
    await kube.create(custom_path("routingpolicies", NS), policy("chat"))
    await eventually(lambda: compiled_status(kube, "chat", "True"))
    await delete(kube, creds_path("chat"))
    await eventually(lambda: kube.get(creds_path("chat")))
    await kube.patch(core_path("secrets", NS, "keys"), {"data": {"OPENAI_API_KEY": base64.b64encode(b"sk-2").decode()}})

    async def rotated():
        creds = await kube.get(creds_path("chat"))
        return base64.b64decode(creds["data"]["openai.primary"]) == b"sk-2"

    await eventually(rotated)
    await delete(kube, policy_path("chat"))
    await eventually(lambda: _gone(kube, policy_path("chat")))

    mine = [r for r in list(api) if r.headers.get(ACTOR) != "user"]
    on_core = [r for r in mine if r.url.path.startswith("/api/v1/")]
    # reads of Secrets: only label-selected lists and watches, in the namespace it serves
    for r in (r for r in on_core if "/secrets" in r.url.path and r.method.value == "GET"):
        assert r.url.path == core_path("secrets", NS), r.url
        assert "switchyard.dev/credentials" in r.url.query.get("labelSelector", "") or (
            "app.kubernetes.io/managed-by=switchyard-operator" in r.url.query.get("labelSelector", "")), r.url
    # nothing deleted or replaced; writes only to its own chat-routes and chat-credentials
    assert not [r for r in on_core if r.method.value in ("DELETE", "PUT")]
    written = {r.url.path.rsplit("/", 1)[-1] if r.method.value == "PATCH" else r.data["metadata"]["name"]
               for r in on_core if r.method.value in ("POST", "PATCH") and "/events" not in r.url.path}
    assert written == {"chat-routes", "chat-credentials"}
    assert PASSWORD not in await events_text(kube)
    assert (await kube.get(core_path("configmaps", NS, "app-settings")))["data"] == {"a": "b"}
