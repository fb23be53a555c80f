"""Health probes: one request through the router's own adapters, and the health state machine.

By default a probe lists models (free, authenticated); mode Completion asks for one token.
The key goes only to an endpoint the EndpointPolicy allows (checked here once more, right before
sending, and the client connects only to checked addresses). The error kept in status is a
classification (error kind, HTTP status, exception kind): never the answer's body or headers,
which a hostile endpoint chooses, nor an exception's text, which can quote them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from switchyard_router import clock, tracing
from switchyard_router.adapters import adapter_for
from switchyard_router.errors import redirect_error
from switchyard_router.table import Provider, parse_duration

from .endpoints import EndpointPolicy
from .models import HealthCheckMode, HealthCheckSpec, HealthState, HealthStatus
from .pinned_http import EndpointRefused

PROBE_READ_LIMIT = 4096  # bytes of an answer read at most


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    latency_ms: int
    error: str | None = None


async def probe(
    http: httpx.AsyncClient,
    provider: Provider,
    key: str | None,
    check: HealthCheckSpec,
    endpoints: EndpointPolicy | None = None,
) -> ProbeOutcome:
    """Send one probe request to the provider and classify the answer."""
    refused = (endpoints or EndpointPolicy()).problem(provider.type, provider.base_url)
    if refused is not None:
        return ProbeOutcome(False, 0, f"EndpointNotAllowed: {refused}")
    adapter = adapter_for(provider.type)
    if check.mode is HealthCheckMode.COMPLETION:
        assert check.model is not None  # the spec validator requires it
        body = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
        request = adapter.chat_request(provider, key, check.model, body, stream=False)
    else:
        request = adapter.models_request(provider, key)
    timeout = parse_duration(check.timeout)
    headers = {**request.headers, "Accept-Encoding": "identity"}
    if tracing.ENABLED:  # the probe's span is current: a provider that traces joins it
        tracing.inject(headers)
    started = clock.monotonic()
    try:
        # Redirects are not followed (they would carry the key elsewhere), and the answer is
        # read only as far as classifying it needs, uncompressed, within the timeout as a whole
        # (httpx's applies to each read: a trickle would pass it).
        async with asyncio.timeout(timeout), http.stream(
            request.method,
            request.url,
            headers=headers,
            content=request.body or None,
            timeout=timeout,
            follow_redirects=False,
        ) as response:
            answer = await _head(response)
    except (httpx.TimeoutException, TimeoutError):
        return ProbeOutcome(False, _ms(started), f"Timeout: no answer within {check.timeout}")
    except EndpointRefused as exc:
        return ProbeOutcome(False, _ms(started), f"EndpointNotAllowed: {exc}")
    except httpx.HTTPError as exc:
        return ProbeOutcome(False, _ms(started), f"ConnectionError: {_kind(exc)}")
    latency = _ms(started)
    if response.is_success:
        return ProbeOutcome(True, latency)
    if 300 <= response.status_code < 400:
        error = redirect_error(provider.name, response.status_code, response.headers.get("location"))
        return ProbeOutcome(False, latency, f"{error.kind}: {error.message}")
    error = adapter.error(response.status_code, response.headers, answer)
    return ProbeOutcome(False, latency, f"{error.kind}: HTTP {response.status_code}")


async def _head(response: httpx.Response) -> bytes:
    """The first PROBE_READ_LIMIT bytes of an answer: enough for an error's message, and a
    hostile endpoint's endless or compressed body costs nothing more."""
    if response.headers.get("content-encoding", "identity") != "identity":
        return b""  # compressed though asked not to be: its status classifies it
    body = b""
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) >= PROBE_READ_LIMIT:
            break
    return body[:PROBE_READ_LIMIT]


def _kind(exc: httpx.HTTPError) -> str:
    """What went wrong, in words of our own (httpx's text can quote what the server sent)."""
    if isinstance(exc, httpx.ConnectError):
        return "could not connect (refused, unreachable, name not resolved or TLS failed)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the endpoint did not answer in HTTP"
    return type(exc).__name__


def _ms(started: float) -> int:
    return round((clock.monotonic() - started) * 1000)


def next_health(
    previous: HealthStatus, outcome: ProbeOutcome, failure_threshold: int, now: str
) -> HealthStatus:
    """Healthy on success; Unhealthy after `failure_threshold` failures in a row; else unchanged."""
    if outcome.ok:
        return HealthStatus(
            state=HealthState.HEALTHY,
            latency_ms=outcome.latency_ms,
            consecutive_failures=0,
            last_probe_time=now,
            last_error=None,
        )
    failures = previous.consecutive_failures + 1
    state = HealthState.UNHEALTHY if failures >= failure_threshold else previous.state
    return HealthStatus(
        state=state,
        latency_ms=outcome.latency_ms,
        consecutive_failures=failures,
        last_probe_time=now,
        last_error=outcome.error,
    )
