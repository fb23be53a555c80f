"""One health-probe round for one LLMProvider: probe, record, and recompile on a flip."""

from __future__ import annotations

import logging

import kopf
from pydantic import ValidationError
from switchyard_router.table import parse_duration

from . import conditions as cond
from . import tracing
from .compile import resolve_provider
from .kube import custom_path
from .models import HealthState, HealthStatus, LLMProviderSpec
from .probe import next_health, probe
from .reconcile import (
    PROVIDERS,
    Runtime,
    _patch_status,
    read_secrets,
    recompile_for_provider,
    referenced_secrets,
)

DEFAULT_INTERVAL = 30.0


def health_condition(health: HealthStatus, threshold: int, generation: int | None) -> dict[str, object]:
    if health.state is HealthState.HEALTHY:
        return cond.condition(
            cond.HEALTHY, True, "ProbeSucceeded", f"probe answered in {health.latency_ms} ms", generation
        )
    last = f"last error: {health.last_error}"
    if health.state is HealthState.UNHEALTHY:
        return cond.condition(
            cond.HEALTHY, False, "ProbeFailed",
            f"{health.consecutive_failures} consecutive probe failures (threshold {threshold}); "
            f"{last}. Routers prefer other providers until a probe succeeds; check the key, "
            "baseURL and the provider's status page.",
            generation,
        )
    return cond.condition(
        cond.HEALTHY, None, "ProbeFailing",
        f"{health.consecutive_failures} probe failure(s), below the threshold of {threshold}; {last}",
        generation,
    )


async def probe_provider(
    rt: Runtime, namespace: str, name: str, logger: logging.Logger | kopf.Logger
) -> float | None:
    """Probe once and record the result. Returns seconds until the next probe (None: gone)."""
    path = custom_path(PROVIDERS, namespace, name)
    body = await rt.kube.get(path)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    try:
        spec = LLMProviderSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return DEFAULT_INTERVAL  # Ready says what is wrong; nothing to probe
    interval = parse_duration(spec.health_check.interval)
    secrets = await read_secrets(rt.kube, namespace, referenced_secrets(body))
    resolved = resolve_provider(body, secrets, rt.endpoints)
    if resolved.provider is None:
        return interval
    key = next(iter(resolved.credentials.values()), None)
    provider = resolved.provider
    with tracing.span("probe", namespace, name, **{"switchyard.provider.type": str(provider.type)}) as span:
        outcome = await probe(rt.http, provider, key, spec.health_check, rt.endpoints)
        tracing.probe_result(span, outcome.ok, outcome.latency_ms, outcome.error)

    async with rt.lock(PROVIDERS, namespace, name):
        body = await rt.kube.get(path)
        if body is None:
            return None
        status = body.get("status") or {}
        previous = HealthStatus.model_validate(status.get("health") or {})
        threshold = spec.health_check.failure_threshold
        health = next_health(previous, outcome, threshold, cond.now())
        healthy = health_condition(health, threshold, body["metadata"].get("generation"))
        await _patch_status(
            rt.kube,
            PROVIDERS,
            body,
            {
                "health": health.model_dump(by_alias=True, mode="json"),
                "conditions": cond.merge(status.get("conditions"), [healthy]),
            },
        )
    was_unhealthy = previous.state is HealthState.UNHEALTHY
    if was_unhealthy != (health.state is HealthState.UNHEALTHY):
        if was_unhealthy:
            logger.info("provider recovered: probes succeed again")
            rt.events(body, "Normal", "Recovered", str(healthy["message"]))
        else:
            logger.warning(f"provider unhealthy: {health.last_error}")
            rt.events(body, "Warning", "Unhealthy", str(healthy["message"]))
        await recompile_for_provider(rt, namespace, name, logger)
    return interval
