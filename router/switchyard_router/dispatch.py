"""The request path: try a route's targets in the strategy's order, retrying and falling back.

Rules, per route:
- an error whose kind is not in `fallbackOn` (a client error above all) goes back as it is;
- a transient error (rate limit, overload, server or connection error) is retried on the same
  target up to `retry.attempts`, after a full-jitter backoff that honours Retry-After; a wait
  longer than `backoff.max` falls back at once instead;
- a timeout, a bad key or a too-long prompt moves straight to the next target;
- no request makes more than `maxAttempts` attempts or outlives its `deadline`.
A stream falls back only until its first byte has reached the client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from typing import TypeVar

import aiohttp

from .adapters import StreamState, StreamTranslator, UpstreamRequest, Usage
from .adapters.base import JSON
from .backoff import retry_delay
from .errors import ErrorKind, UpstreamError
from .metrics import Metrics, TargetSeries
from .redact import Redactor
from .runtime import CompiledRoute, TargetRuntime
from .selection import order_targets
from .sse import SSEDecoder
from .upstreams import Upstreams

log = logging.getLogger("switchyard.router")

RETRY_SAME_TARGET = frozenset(
    {ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.SERVER_ERROR, ErrorKind.CONNECTION_ERROR}
)

T = TypeVar("T")


@dataclass(slots=True)
class Served:
    """Which target answered, after how many attempts: the response headers tell the client."""

    target: TargetRuntime
    attempts: int


@dataclass(slots=True)
class JSONResult:
    body: bytes
    usage: Usage
    served: Served


class Dispatcher:
    def __init__(self, upstreams: Upstreams, metrics: Metrics, redactor: Redactor) -> None:
        self.upstreams = upstreams
        self.metrics = metrics
        self.redact = redactor

    async def _run(
        self,
        route: CompiledRoute,
        prompt_tokens: int,
        attempt: Callable[[TargetRuntime, float, float], Awaitable[T]],
    ) -> tuple[T, Served]:
        policy = route.route
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.deadline
        per_target = policy.retry.attempts
        max_attempts = policy.max_attempts or per_target * len(route.targets)
        attempts = 0
        last: UpstreamError | None = None
        previous: TargetRuntime | None = None
        for target in order_targets(route, prompt_tokens):
            if previous is not None and last is not None:
                self.metrics.fallbacks.labels(
                    policy.name, previous.provider.name, target.provider.name, last.kind.value
                ).inc()
            for retry_number in range(per_target):
                remaining = deadline - loop.time()
                if attempts >= max_attempts or remaining <= 0:
                    raise self._exhausted(last, policy.name)
                attempts += 1
                timeout = min(policy.timeout or target.provider.timeout, remaining)
                try:
                    return await attempt(target, timeout, deadline), Served(target, attempts)
                except UpstreamError as err:
                    err.message = self.redact(err.message)
                    last = err
                    self._record_failure(policy.name, target, err)
                    if err.kind not in policy.fallback_on:
                        raise
                    if retry_number + 1 >= per_target or err.kind not in RETRY_SAME_TARGET:
                        break
                    delay = retry_delay(policy.retry.backoff, retry_number, err.retry_after)
                    if delay > policy.retry.backoff.max or loop.time() + delay >= deadline:
                        break  # waiting costs more than another target would
                    self.metrics.retries.labels(policy.name, target.provider.name, err.kind.value).inc()
                    await asyncio.sleep(delay)
            previous = target
        raise self._exhausted(last, policy.name)

    def _exhausted(self, last: UpstreamError | None, route: str) -> UpstreamError:
        if last is not None:
            return last
        return UpstreamError(ErrorKind.TIMEOUT, f"route {route!r} ran out of time before any attempt")

    def _record_failure(self, route: str, target: TargetRuntime, err: UpstreamError) -> None:
        self.metrics.attempts.labels(route, target.provider.name, target.model_label, err.kind.value).inc()
        log.warning(
            "attempt failed: route=%s provider=%s model=%s kind=%s status=%s: %s",
            route,
            target.provider.name,
            target.model,
            err.kind.value,
            err.status,
            err.message,
        )

    # --- plain JSON (chat without stream, embeddings) ------------------------------------

    async def complete(
        self, route: CompiledRoute, body: JSON, prompt_tokens: int, operation: str
    ) -> JSONResult:
        async def attempt(target: TargetRuntime, timeout: float, deadline: float) -> JSONResult:
            adapter = target.adapter
            key = target.next_key()
            if operation == "embeddings":
                request = adapter.embeddings_request(target.provider, key, target.model, body)
            else:
                request = adapter.chat_request(target.provider, key, target.model, body, False)
            series = self.metrics.series(
                route.route.name, target.provider.name, target.model_label, operation
            )
            started = perf_counter()
            status, headers, raw = await self._send(target, series, request, timeout)
            if status >= 300:
                raise adapter.error(status, headers, raw)
            if operation == "embeddings":
                out, usage = adapter.embeddings_response(raw, target.model)
            else:
                out, usage = adapter.chat_response(raw, target.model)
            elapsed = perf_counter() - started
            target.observe_latency(elapsed)
            series.success(elapsed, usage)
            return JSONResult(out, usage, Served(target, 0))

        result, served = await self._run(route, prompt_tokens, attempt)
        result.served = served
        return result

    async def _send(
        self, target: TargetRuntime, series: TargetSeries, request: UpstreamRequest, timeout: float
    ) -> tuple[int, dict[str, str], bytes]:
        session = self.upstreams.session(target.provider)
        target.in_flight += 1
        series.in_flight.inc()
        try:
            async with asyncio.timeout(timeout):
                async with session.request(
                    request.method, request.url, data=request.body, headers=request.headers
                ) as response:
                    raw = await response.read()
                    headers = (
                        {k.lower(): v for k, v in response.headers.items()} if response.status >= 300 else {}
                    )
                    return response.status, headers, raw
        except TimeoutError:
            raise UpstreamError(
                ErrorKind.TIMEOUT, f"{target.provider.name} gave no answer within {timeout:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise connection_error(target, exc) from None
        finally:
            target.in_flight -= 1
            series.in_flight.dec()

    # --- streams -------------------------------------------------------------------------

    async def open_stream(
        self, route: CompiledRoute, body: JSON, prompt_tokens: int, include_usage: bool
    ) -> tuple[UpstreamStream, Served]:
        """Start a stream on the first target that produces a first chunk in time."""
        first_token = route.route.first_token_timeout

        async def attempt(target: TargetRuntime, timeout: float, deadline: float) -> UpstreamStream:
            state = StreamState(model=target.model, include_usage=include_usage)
            request = target.adapter.chat_request(
                target.provider, target.next_key(), target.model, body, True
            )
            series = self.metrics.series(route.route.name, target.provider.name, target.model_label, "chat")
            stream = UpstreamStream(target, series, target.adapter.stream(state), deadline, timeout)
            await stream.open(
                self.upstreams.session(target.provider), request, min(first_token or timeout, timeout)
            )
            return stream

        return await self._run(route, prompt_tokens, attempt)


def connection_error(target: TargetRuntime, exc: BaseException) -> UpstreamError:
    detail = str(exc) or type(exc).__name__
    return UpstreamError(ErrorKind.CONNECTION_ERROR, f"{target.provider.name}: {detail}")


class UpstreamStream:
    """One upstream SSE response being translated into OpenAI chunks for the client."""

    def __init__(
        self,
        target: TargetRuntime,
        series: TargetSeries,
        translator: StreamTranslator,
        deadline: float,
        idle_timeout: float,
    ) -> None:
        self.target = target
        self.series = series
        self.translator = translator
        self.deadline = deadline
        self.idle_timeout = idle_timeout
        self.decoder = SSEDecoder()
        self.first = b""
        self._response: aiohttp.ClientResponse | None = None
        self._started = perf_counter()
        self._last_chunk = 0.0
        self._open = False
        self.finished = False

    async def open(
        self, session: aiohttp.ClientSession, request: UpstreamRequest, first_timeout: float
    ) -> None:
        self.target.in_flight += 1
        self.series.in_flight.inc()
        self._open = True
        try:
            async with asyncio.timeout(first_timeout):
                self._response = response = await session.request(
                    request.method, request.url, data=request.body, headers=request.headers
                )
                if response.status >= 300:
                    raw = await response.read()
                    headers = {k.lower(): v for k, v in response.headers.items()}
                    raise self.target.adapter.error(response.status, headers, raw)
                while not self.first:
                    chunk = await response.content.readany()
                    self.first = self._translate(chunk)
        except TimeoutError:
            self.close()
            raise UpstreamError(
                ErrorKind.TIMEOUT,
                f"{self.target.provider.name} sent no first chunk within {first_timeout:g}s",
            ) from None
        except aiohttp.ClientError as exc:
            self.close()
            raise connection_error(self.target, exc) from None
        except BaseException:
            self.close()
            raise
        now = perf_counter()
        self.series.first_chunk.observe(now - self._started)
        self._last_chunk = now

    def _translate(self, chunk: bytes) -> bytes:
        """Client frames for a piece of upstream bytes; b"" (the end) also closes the translation."""
        feed = self.translator.feed
        if chunk:
            return b"".join(feed(event, data) for event, data in self.decoder.feed(chunk))
        self.finished = True
        tail = b"".join(feed(event, data) for event, data in self.decoder.flush())
        return tail + self.translator.finish()

    async def rest(self) -> AsyncIterator[bytes]:
        """Frames after the first, until the stream's end; UpstreamError if it breaks."""
        assert self._response is not None
        content = self._response.content
        loop = asyncio.get_running_loop()
        try:
            while not self.finished:
                try:
                    async with asyncio.timeout_at(min(loop.time() + self.idle_timeout, self.deadline)):
                        chunk = await content.readany()
                except TimeoutError:
                    raise UpstreamError(
                        ErrorKind.TIMEOUT,
                        f"{self.target.provider.name} stream stalled or passed the route's deadline",
                    ) from None
                except aiohttp.ClientError as exc:
                    raise connection_error(self.target, exc) from None
                frames = self._translate(chunk)
                if frames:
                    now = perf_counter()
                    self.series.per_chunk.observe(now - self._last_chunk)
                    self._last_chunk = now
                    yield frames
        finally:
            self.close()

    def succeeded(self) -> None:
        elapsed = perf_counter() - self._started
        self.target.observe_latency(elapsed)
        self.series.success(elapsed, self.translator.usage)

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
        if self._open:
            self._open = False
            self.target.in_flight -= 1
            self.series.in_flight.dec()
