"""The reconcile steps behind the kopf handlers: read, compile, write only what changed, report.

Each step reads fresh state through the API (no cache to go stale), holds a per-object lock
so concurrent triggers of the same policy serialize, and writes status through the status
subresource. A policy that fails to compile keeps its last good ConfigMap and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import httpx
import kopf
from switchyard_router import clock

from . import conditions as cond
from .compile import (
    CompileResult,
    compile_policy,
    resolve_provider,
    summarize,
)
from .endpoints import EndpointPolicy
from .grants import GRANTED_SELECTOR, GrantedSecret, granted_secret
from .kube import Kube, KubeError, core_path, custom_path
from .outputs import (
    HASH_ANNOTATION,
    MANAGED_BY,
    POLICY_LABEL,
    TABLE_KEY,
    config_map,
    credentials_name,
    credentials_secret,
    owned_by,
    routes_name,
)
from .pinned_http import pinned_client
from .propagation import routers_status
from .replicas import live_per_policy, replicas_per_provider
from .usage_reports import Routers, UsageSettings

JSON = dict[str, Any]
EventSink = Callable[[Mapping[str, Any], str, str, str], None]
PROVIDERS = "llmproviders"
POLICIES = "routingpolicies"
NAME_CONFLICT = "NameConflict"


def kopf_events(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event through kopf (a no-op outside a running operator)."""
    with contextlib.suppress(LookupError):  # not inside a running operator
        kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message[:1024])


@dataclass
class Runtime:
    """What the handlers share: the API client, the probe HTTP client, per-object locks."""

    kube: Kube
    # Where keys may go (endpoints.py); the probes' client connects only to checked addresses.
    endpoints: EndpointPolicy = field(default_factory=EndpointPolicy)
    http: httpx.AsyncClient = field(init=False)
    events: EventSink = kopf_events
    locks: dict[tuple[str, str, str], asyncio.Lock] = field(default_factory=dict)
    usage: UsageSettings = field(default_factory=UsageSettings.from_env)
    # Router pods and their last pulled reports (usage_reports.py), and the clients pulling them:
    # pod addresses go direct, never through an egress proxy.
    routers: Routers = field(default_factory=Routers)
    pull_http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(trust_env=False))
    # Final pulls of terminating router pods, by pod uid.
    finals: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    started_at: datetime = field(default_factory=clock.now)

    def __post_init__(self) -> None:
        self.http = pinned_client(self.endpoints)

    def lock(self, kind: str, namespace: str, name: str) -> asyncio.Lock:
        return self.locks.setdefault((kind, namespace, name), asyncio.Lock())

    async def close(self) -> None:
        for task in self.finals.values():
            task.cancel()
        await asyncio.gather(*self.finals.values(), return_exceptions=True)
        await self.kube.close()
        await self.http.aclose()
        await self.pull_http.aclose()


# --------------------------------------------------------------------------- references


def referenced_providers(policy: Mapping[str, Any]) -> set[str]:
    """Provider names in a policy body, tolerant of an invalid spec."""
    names: set[str] = set()
    for route in (policy.get("spec") or {}).get("routes") or []:
        for target in (route.get("targets") or []) if isinstance(route, dict) else []:
            if isinstance(target, dict) and isinstance(target.get("provider"), str):
                names.add(target["provider"])
    return names


def referenced_secrets(provider: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for cred in (provider.get("spec") or {}).get("credentials") or []:
        ref = cred.get("secretKeyRef") if isinstance(cred, dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("name"), str):
            names.add(ref["name"])
    return names


async def read_secrets(kube: Kube, namespace: str, names: set[str]) -> dict[str, GrantedSecret]:
    """The named Secrets that opted in. The API server filters by label: a Secret that did not
    opt in never reaches the operator (no `get` by name, which would return any Secret)."""
    if not names:
        return {}
    items = await kube.list(core_path("secrets", namespace), GRANTED_SELECTOR)
    found: dict[str, GrantedSecret] = {}
    for body in items:
        name = (body.get("metadata") or {}).get("name")
        grant = granted_secret(body)
        if name in names and grant is not None:  # the label checked again: trust no filter blindly
            found[name] = grant
    return found


async def policies_using(kube: Kube, namespace: str, provider: str) -> list[str]:
    policies = await kube.list(custom_path(POLICIES, namespace))
    return sorted(p["metadata"]["name"] for p in policies if provider in referenced_providers(p))


async def providers_using(kube: Kube, namespace: str, secret: str) -> list[str]:
    providers = await kube.list(custom_path(PROVIDERS, namespace))
    return sorted(p["metadata"]["name"] for p in providers if secret in referenced_secrets(p))


# --------------------------------------------------------------------------- outputs


def _differs(existing: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    if existing is None:
        return True
    meta, want = existing.get("metadata") or {}, desired["metadata"]
    return bool(
        (existing.get("data") or {}) != desired["data"]
        or (meta.get("annotations") or {}).get(HASH_ANNOTATION)
        != (want.get("annotations") or {}).get(HASH_ANNOTATION)
        or meta.get("ownerReferences") != want.get("ownerReferences")
        or any((meta.get("labels") or {}).get(k) != v for k, v in want["labels"].items())
    )


@dataclass(frozen=True)
class NameConflict:
    """An object of the name a policy writes exists, and Switchyard did not create it for it."""

    kind: str  # ConfigMap or Secret
    namespace: str
    name: str

    def message(self, policy: str) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name} already exists and was not created by "
            f"Switchyard for RoutingPolicy {policy!r}: it is left untouched and no table is written. "
            f"Rename the RoutingPolicy (it writes {routes_name(policy)} and {credentials_name(policy)}), "
            f"or, if that {self.kind} is not needed, delete it: "
            f"kubectl -n {self.namespace} delete {self.kind.lower()} {self.name}"
        )


async def _apply(kube: Kube, plural: str, existing: JSON | None, desired: JSON) -> bool:
    """Create or patch one output; False when the create found a foreign object of that name."""
    namespace, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
    if existing is None:
        try:
            await kube.create(core_path(plural, namespace), desired)
        except KubeError as exc:
            if exc.status == 409:  # someone else's object, which the operator cannot (or may not) see
                return False
            raise
        return True
    patch = dict(desired)
    stale = set(existing.get("data") or {}) - set(desired["data"])
    patch["data"] = {**desired["data"], **dict.fromkeys(stale)}  # merge-patch: null deletes
    # The object checked as ours, and no other: a replaced one fails with 409.
    patch["metadata"] = {**desired["metadata"], "resourceVersion": existing["metadata"]["resourceVersion"]}
    await kube.patch(core_path(plural, namespace, name), patch)
    return True


async def _own_secret(kube: Kube, namespace: str, policy: str) -> JSON | None:
    """The policy's credentials Secret if it carries our labels, found without reading any other
    Secret (label selection by the API server; the operator has no `get` on Secrets)."""
    selector = ",".join([*(f"{k}={v}" for k, v in MANAGED_BY.items()), f"{POLICY_LABEL}={policy}"])
    items = await kube.list(core_path("secrets", namespace), selector)
    return next((s for s in items if s["metadata"].get("name") == credentials_name(policy)), None)


async def revoke_keys(kube: Kube, policy: Mapping[str, Any], providers: list[str]) -> list[str]:
    """Remove these providers' keys from the policy's credentials Secret (a Secret withdrew its
    grant: the last good table stays, the key does not). Returns the keys removed."""
    namespace, name = policy["metadata"]["namespace"], policy["metadata"]["name"]
    existing = await _own_secret(kube, namespace, name)
    if existing is None or not owned_by(existing, policy):
        return []
    gone = sorted(k for k in existing.get("data") or {} if k.rsplit(".", 1)[0] in providers)
    if gone:
        patch = {"metadata": {"resourceVersion": existing["metadata"]["resourceVersion"]},
                 "data": dict.fromkeys(gone)}
        await kube.patch(core_path("secrets", namespace, credentials_name(name)), patch)
    return gone


async def write_outputs(kube: Kube, policy: Mapping[str, Any], result: CompileResult) -> bool | NameConflict:
    """Write the ConfigMap and credentials Secret if they differ; True when anything was written.
    A NameConflict, and nothing written, when either name is taken by an object not ours."""
    namespace, name = policy["metadata"]["namespace"], policy["metadata"]["name"]
    routes = await kube.get(core_path("configmaps", namespace, routes_name(name)))
    if routes is not None and not owned_by(routes, policy):
        return NameConflict("ConfigMap", namespace, routes_name(name))
    wrote = False
    # The Secret first: a router must never see a table naming keys it cannot find yet.
    desired = credentials_secret(policy, result)
    existing = await _own_secret(kube, namespace, name)
    if existing is not None and not owned_by(existing, policy):
        return NameConflict("Secret", namespace, credentials_name(name))
    if _differs(existing, desired):
        if not await _apply(kube, "secrets", existing, desired):
            return NameConflict("Secret", namespace, credentials_name(name))
        wrote = True
    desired = config_map(policy, result)
    if _differs(routes, desired):
        if not await _apply(kube, "configmaps", routes, desired):
            return NameConflict("ConfigMap", namespace, routes_name(name))
        wrote = True
    return wrote


# --------------------------------------------------------------------------- status


async def _patch_status(
    kube: Kube, plural: str, body: Mapping[str, Any], status: JSON
) -> None:
    meta = body["metadata"]
    await kube.patch(custom_path(plural, meta["namespace"], meta["name"], status=True), {"status": status})


def _status_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    for key, value in new.items():
        if key == "conditions":
            if not cond.same(old.get("conditions"), value):
                return True
        elif old.get(key) != value:
            return True
    return False


# --------------------------------------------------------------------------- policies


async def reconcile_policy(
    rt: Runtime, namespace: str, name: str, logger: logging.Logger | kopf.Logger
) -> CompileResult | None:
    """Compile one policy and write its outputs and status. None when the policy is gone."""
    async with rt.lock(POLICIES, namespace, name):
        policy = await rt.kube.get(custom_path(POLICIES, namespace, name))
        if policy is None or policy["metadata"].get("deletionTimestamp"):
            return None
        providers = {
            p["metadata"]["name"]: p for p in await rt.kube.list(custom_path(PROVIDERS, namespace))
        }
        secret_names: set[str] = set()
        for provider_name in referenced_providers(policy):
            if provider_name in providers:
                secret_names |= referenced_secrets(providers[provider_name])
        secrets = await read_secrets(rt.kube, namespace, secret_names)
        # Limits are shared among the live routers of every policy routing to a provider.
        now = clock.now()
        reports = rt.routers.reports_in(namespace)
        live = live_per_policy(reports, now, rt.usage.stale_after)
        providers_of = {
            p["metadata"]["name"]: referenced_providers(p)
            for p in await rt.kube.list(custom_path(POLICIES, namespace))
        }
        providers_of[name] = referenced_providers(policy)
        replicas = replicas_per_provider(providers_of, live)
        result = compile_policy(
            policy, providers, secrets, replicas=replicas, now=now, endpoints=rt.endpoints
        )
        generation = policy["metadata"].get("generation")
        old: JSON = policy.get("status") or {}
        new: JSON = {"observedGeneration": generation}
        current_hash: str | None = None

        written = await write_outputs(rt.kube, policy, result) if result.ok else False
        if isinstance(written, NameConflict):
            message = written.message(name)
            compiled = cond.condition(
                cond.COMPILED, True, "Compiled", "the spec compiles; its outputs are blocked (see Ready)",
                generation,
            )
            ready = cond.condition(cond.READY, False, NAME_CONFLICT, message, generation)
            previous_ready = cond.find(old.get("conditions"), cond.READY)
            if cond.transitioned(previous_ready, ready):
                rt.events(policy, "Warning", NAME_CONFLICT, message)
            logger.warning(message)
        elif result.ok:
            wrote = written
            digest = current_hash = result.digest()
            assert result.table is not None
            summary = (
                f"{len(result.table.routes)} route(s) over {len(result.table.providers)} provider(s); "
                f"table {digest} in ConfigMap {routes_name(name)}"
            )
            compiled = cond.condition(cond.COMPILED, True, "Compiled", summary, generation)
            ready = cond.condition(cond.READY, True, "TableWritten", summary, generation)
            new.update(
                tableHash=digest,
                configMap=routes_name(name),
                credentialsSecret=credentials_name(name),
                routes=[c.model_dump(by_alias=True) for c in result.chains()],
            )
            for warning in result.warnings:
                logger.warning(warning)
            if wrote:
                logger.info(f"wrote table {digest} to ConfigMap {routes_name(name)}")
                rt.events(policy, "Normal", "TableUpdated", summary)
        else:
            message = summarize(result.problems)
            compiled = cond.condition(cond.COMPILED, False, result.reason, message, generation)
            existing = await rt.kube.get(core_path("configmaps", namespace, routes_name(name)))
            ours = existing is not None and owned_by(existing, policy)
            if existing is not None and ours and existing.get("data", {}).get(TABLE_KEY):
                digest = (existing["metadata"].get("annotations") or {}).get(HASH_ANNOTATION, "?")
                current_hash = digest
                ready = cond.condition(
                    cond.READY, True, "LastGoodTable",
                    f"routers keep the last good table {digest}; the new spec does not compile: "
                    f"{message}",
                    generation,
                )
            else:
                ready = cond.condition(cond.READY, False, result.reason, message, generation)
            logger.warning(f"compile failed: {message}")
            if result.ungranted and await revoke_keys(rt.kube, policy, result.ungranted):
                rt.events(policy, "Warning", "KeysRevoked",
                          f"keys of {', '.join(result.ungranted)} removed from {credentials_name(name)}: "
                          "their Secret no longer grants them")

        previous = cond.find(old.get("conditions"), cond.COMPILED)
        if cond.transitioned(previous, compiled) or (
            not result.ok and previous is not None and previous.get("message") != compiled["message"]
        ):
            if result.ok:
                if previous is not None:
                    rt.events(policy, "Normal", "Compiled", compiled["message"])
            else:
                rt.events(policy, "Warning", str(result.reason), compiled["message"])
        new["conditions"] = cond.merge(old.get("conditions"), [compiled, ready])
        new["routers"] = routers_status(name, current_hash, reports, now, rt.usage.stale_after)
        if _status_changed(old, new):
            await _patch_status(rt.kube, POLICIES, policy, new)
        return result


# --------------------------------------------------------------------------- providers


async def reconcile_provider(
    rt: Runtime, namespace: str, name: str, logger: logging.Logger | kopf.Logger
) -> bool | None:
    """Check a provider's spec and Secrets and report Ready. None when it is gone."""
    async with rt.lock(PROVIDERS, namespace, name):
        body = await rt.kube.get(custom_path(PROVIDERS, namespace, name))
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None
        secrets = await read_secrets(rt.kube, namespace, referenced_secrets(body))
        result = resolve_provider(body, secrets, rt.endpoints)
        generation = body["metadata"].get("generation")
        old: JSON = body.get("status") or {}
        if result.provider is not None and not result.problems:
            n = len(result.credentials)
            ready = cond.condition(
                cond.READY, True, "CredentialsResolved",
                f"{n} credential(s) resolved, {len(result.provider.models)} model(s)", generation,
            )
        else:
            reason = result.problems[0].reason
            ready = cond.condition(cond.READY, False, reason, summarize(result.problems), generation)
        updates = [ready]
        if cond.find(old.get("conditions"), cond.HEALTHY) is None:
            updates.append(
                cond.condition(cond.HEALTHY, None, "NotProbedYet", "no health probe has run yet")
            )
        conditions = cond.merge(old.get("conditions"), updates)
        new: JSON = {"observedGeneration": generation, "conditions": conditions}
        if not old.get("health"):
            new["health"] = {"state": "Unknown", "consecutiveFailures": 0}
        previous = cond.find(old.get("conditions"), cond.READY)
        if cond.transitioned(previous, ready) or (
            ready["status"] == "False"
            and previous is not None
            and previous.get("message") != ready["message"]
        ):
            if ready["status"] == "True":
                rt.events(body, "Normal", "Ready", ready["message"])
            else:
                rt.events(body, "Warning", ready["reason"], ready["message"])
                logger.warning(f"not ready: {ready['message']}")
        if _status_changed(old, new):
            await _patch_status(rt.kube, PROVIDERS, body, new)
        return bool(ready["status"] == "True")


# --------------------------------------------------------------------------- fan-out


async def recompile_for_provider(
    rt: Runtime, namespace: str, provider: str, logger: logging.Logger | kopf.Logger
) -> list[str]:
    """Recompile exactly the policies that route to this provider."""
    names = await policies_using(rt.kube, namespace, provider)
    for name in names:
        await reconcile_policy(rt, namespace, name, logger)
    return names


async def on_secret_changed(
    rt: Runtime, namespace: str, secret: str, logger: logging.Logger | kopf.Logger
) -> list[str]:
    """A Secret changed (key rotation, creation, deletion): refresh its providers and policies."""
    providers = await providers_using(rt.kube, namespace, secret)
    policies: set[str] = set()
    for provider in providers:
        await reconcile_provider(rt, namespace, provider, logger)
        policies |= set(await policies_using(rt.kube, namespace, provider))
    for name in sorted(policies):
        await reconcile_policy(rt, namespace, name, logger)
    return sorted(policies)


def is_own_output(body: Mapping[str, Any]) -> bool:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in MANAGED_BY.items())
