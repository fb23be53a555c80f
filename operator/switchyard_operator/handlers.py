"""The kopf handlers: thin. Each one names its trigger and calls a reconcile step.

    RoutingPolicy created/updated/resumed   -> compile it
    LLMProvider created/updated             -> check it, recompile the policies routing to it
    LLMProvider deleted                     -> recompile the policies routing to it
    LLMProvider (daemon, healthCheck.interval) -> probe; on a health flip, recompile its policies
    opted-in Secret added/changed/deleted   -> refresh the providers using it and their policies
    our ConfigMap/Secret deleted by someone -> rewrite it
    a router pod seen, terminating, deleted -> track it; pull its final report; retire it
    RoutingPolicy (daemon, report interval) -> pull its routers' usage, fold it, status.routers
    LLMProvider (daemon, report interval)   -> month rollover, stale routers, budget
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import kopf

from . import tracing
from .endpoints import EndpointPolicy
from .grants import WATCH_SELECTOR
from .health import DEFAULT_INTERVAL, probe_provider
from .kube import Kube, KubeError
from .login import connection
from .metrics import PROVIDERS as PROVIDERS_SEEN
from .models import GROUP, VERSION
from .outputs import MANAGED_BY, POLICY_LABEL
from .reconcile import (
    POLICIES,
    PROVIDERS,
    Runtime,
    is_own_output,
    on_secret_changed,
    recompile_for_provider,
    reconcile_policy,
    reconcile_provider,
)
from .usage_sync import collect_policy, fold_into_provider, housekeep_provider, on_pod_event

PREFIX = "switchyard.dev"


def configure(settings: kopf.OperatorSettings) -> None:
    """Settings that make kopf fit the CRDs: no kopf fields in the (pruned) status."""
    settings.persistence.finalizer = f"{PREFIX}/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    # Our own Events are explicit; kopf's log-to-Event bridge only for errors.
    settings.posting.level = logging.ERROR
    # Secrets are selected by the API server: only those that opted in, and the ones the
    # operator writes, ever reach this process (kopf passes the selector on list and watch).
    settings.watching.label_selectors["", "v1", "secrets"] = WATCH_SELECTOR
    # ConfigMaps: only the routes tables it wrote (to rewrite one that is deleted).
    ours = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    settings.watching.label_selectors["", "v1", "configmaps"] = ours


def _ns(namespace: str | None) -> str:
    assert namespace is not None  # both kinds are namespaced
    return namespace


def runtime(memo: Any) -> Runtime:
    rt: Runtime = memo.runtime
    return rt


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    configure(settings)


@kopf.on.login()
async def login(
    memo: Any, settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any
) -> kopf.ConnectionInfo | None:
    """The pod's ServiceAccount, or the kubeconfig (see login.py); tests pass theirs."""
    info: kopf.ConnectionInfo | None = memo.get("connection")
    if info is None:
        info = connection(settings, logger)
    kube = Kube.from_connection(info)
    if memo.get("runtime") is None:
        memo.runtime = Runtime(kube, endpoints=memo.get("endpoints") or EndpointPolicy())
    else:  # a re-login (expired token): same Runtime, new client
        await memo.runtime.kube.close()
        memo.runtime.kube = kube
    return info


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    if memo.get("runtime") is not None:
        await memo.runtime.close()


# --------------------------------------------------------------------------- RoutingPolicy


@kopf.on.resume(GROUP, VERSION, POLICIES)
@kopf.on.create(GROUP, VERSION, POLICIES)
@kopf.on.update(GROUP, VERSION, POLICIES)
async def policy_changed(namespace: str | None, name: str, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    with tracing.span("reconcile RoutingPolicy", _ns(namespace), name):
        await reconcile_policy(runtime(memo), _ns(namespace), name, logger)


# --------------------------------------------------------------------------- LLMProvider


@kopf.on.resume(GROUP, VERSION, PROVIDERS)
async def provider_resumed(
    namespace: str | None, name: str, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    with tracing.span("reconcile LLMProvider", _ns(namespace), name):
        await reconcile_provider(runtime(memo), _ns(namespace), name, logger)


@kopf.on.create(GROUP, VERSION, PROVIDERS)
@kopf.on.update(GROUP, VERSION, PROVIDERS)
async def provider_changed(
    namespace: str | None, name: str, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    with tracing.span("reconcile LLMProvider", _ns(namespace), name):
        await reconcile_provider(runtime(memo), _ns(namespace), name, logger)
        await fold_into_provider(runtime(memo), _ns(namespace), name, [], logger)  # budget changes
        await recompile_for_provider(runtime(memo), _ns(namespace), name, logger)


@kopf.on.event(GROUP, VERSION, PROVIDERS)
async def provider_event(
    type: str, namespace: str | None, name: str, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    PROVIDERS_SEEN.seen(_ns(namespace), name, None if type == "DELETED" else dict(body))
    if type == "DELETED":
        with tracing.span("reconcile LLMProvider", _ns(namespace), name, **{"switchyard.event": "DELETED"}):
            await recompile_for_provider(runtime(memo), _ns(namespace), name, logger)


@kopf.daemon(GROUP, VERSION, PROVIDERS, cancellation_timeout=1.0)
async def health_probe(
    stopped: kopf.DaemonStopped, namespace: str | None, name: str, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    while not stopped:
        try:
            interval = await probe_provider(runtime(memo), _ns(namespace), name, logger)
        except (KubeError, httpx.HTTPError) as exc:
            logger.warning(f"health probe round failed, will retry: {exc}")
            interval = DEFAULT_INTERVAL
        if interval is None:
            return
        await stopped.wait(interval)


# --------------------------------------------------------------------------- usage reports


# The webhook labels the pods it injects: the API server filters the watch to them.
@kopf.on.event("", "v1", "pods", labels={POLICY_LABEL: kopf.PRESENT})
async def router_pod_event(
    type: str | None, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    await on_pod_event(runtime(memo), type, body, logger)


async def _every_report_interval(
    stopped: kopf.DaemonStopped, memo: Any, logger: kopf.Logger, step: Any
) -> None:
    while not stopped:
        try:
            await step()
        except KubeError as exc:
            logger.warning(f"usage round failed, will retry: {exc}")
        await stopped.wait(runtime(memo).usage.report_interval)


@kopf.daemon(GROUP, VERSION, PROVIDERS, cancellation_timeout=1.0)
async def spend_housekeeping(
    stopped: kopf.DaemonStopped, namespace: str | None, name: str, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    await _every_report_interval(
        stopped, memo, logger,
        lambda: housekeep_provider(runtime(memo), _ns(namespace), name, logger),
    )


@kopf.daemon(GROUP, VERSION, POLICIES, cancellation_timeout=1.0)
async def usage_collection(
    stopped: kopf.DaemonStopped, namespace: str | None, name: str, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    await _every_report_interval(
        stopped, memo, logger, lambda: collect_policy(runtime(memo), _ns(namespace), name, logger)
    )


# --------------------------------------------------------------------------- Secrets


# No client-side label filter: a Secret that opts out arrives as DELETED without the label.
@kopf.on.event("", "v1", "secrets")
async def secret_event(
    type: str,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    memo: Any,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    if type is None:  # the initial listing: resumed policies compile on their own
        return
    if is_own_output(body):
        if type == "DELETED":
            await _rewrite_output(memo, body, _ns(namespace), logger)
        return
    await on_secret_changed(runtime(memo), _ns(namespace), name, logger)


@kopf.on.event("", "v1", "configmaps", labels=MANAGED_BY)
async def output_event(
    type: str, body: kopf.Body, namespace: str | None, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    if type == "DELETED":
        await _rewrite_output(memo, body, _ns(namespace), logger)


async def _rewrite_output(memo: Any, body: kopf.Body, namespace: str | None, logger: kopf.Logger) -> None:
    policy = body.get("metadata", {}).get("labels", {}).get(POLICY_LABEL)
    if policy:
        await reconcile_policy(runtime(memo), _ns(namespace), policy, logger)
