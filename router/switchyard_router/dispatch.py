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
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from time import perf_counter
from typing import Generic, Protocol, TypeVar

import aiohttp

from . import clock, tracing
from .adapters import StreamState, StreamTranslator, UpstreamRequest, Usage
from .adapters.base import JSON, upstream_request_id
from .backoff import retry_delay
from .bounded import (
    ReadLimits,
    check_structure,
    compressed,
    read_body,
    read_head,
    refuse_encoded,
    too_large,
)
from .errors import WAIT_KINDS, ErrorKind, UpstreamError, redirect_error
from .limits import exhausted_for
from .metrics import Metrics, TargetSeries
from .redact import Redactor
from .runtime import KEY_COOLDOWN, KEY_REVOKED_FOR, CompiledRoute, KeyRuntime, TargetRuntime
from .selection import order_targets
from .tokens import TokenCounter
from .upstreams import Upstreams
from .usage import UsageLedger
from .watchdog import Watchdog

log = logging.getLogger("switchyard.router")

# Worth another try on the same target after a backoff.
RETRY_SAME_TARGET = frozenset(
    {ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.SERVER_ERROR, ErrorKind.CONNECTION_ERROR}
)
# Tell about the target's health (the circuit breaker counts them); other kinds are about the
# request or the key.
TARGET_FAILURES = frozenset(
    {
        ErrorKind.OVERLOADED,
        ErrorKind.SERVER_ERROR,
        ErrorKind.CONNECTION_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.REDIRECTED,
        ErrorKind.RESPONSE_TOO_LARGE,
    }
)
# Tied to one key: another key of the same target may go at once.
KEY_FAILURES = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.UNAUTHORIZED})

# An OpenAI chunk frame's envelope around its text (data:, id, object, created, model, choices):
# about 150 bytes. What is left of the frames seen, at about 4 bytes a token, estimates the
# output of a stream the client abandoned before the provider reported its usage.
FRAME_ENVELOPE = 150


def output_estimate(frames: int, size: int) -> int:
    """Output tokens in `frames` client frames of `size` bytes: at least one a frame."""
    return max(frames, (size - FRAME_ENVELOPE * frames) // 4)


T = TypeVar("T")
# One attempt: (target, key, attempt timeout, request deadline) -> result.
Attempt = Callable[[TargetRuntime, KeyRuntime, float, float], Awaitable[T]]


class Shape(Protocol):
    """A client API other than chat completions (frontends/): what it sends a target and how the
    target's answer goes back, per target, so that a family that speaks the client's API can
    take the request as it is."""

    def request(self, target: TargetRuntime, key: str | None, stream: bool) -> UpstreamRequest: ...

    def response(self, target: TargetRuntime, raw: bytes) -> tuple[bytes, Usage]: ...

    def stream(self, target: TargetRuntime, state: StreamState) -> StreamTranslator: ...


@dataclass(slots=True)
class Served:
    """Which target answered, after how many attempts: the response headers tell the client."""

    target: TargetRuntime
    attempts: int


@dataclass(slots=True)
class JSONResult:
    body: bytes
    usage: Usage
    cost: Decimal | None
    served: Served
    request_id: str | None  # the provider's, for the client's support ticket


class Dispatcher:
    def __init__(
        self, upstreams: Upstreams, metrics: Metrics, redactor: Redactor, ledger: UsageLedger
    ) -> None:
        self.upstreams = upstreams
        self.metrics = metrics
        self.redact = redactor
        self.ledger = ledger
        self.token_counter = TokenCounter()

    def judge(
        self, route: str, target: TargetRuntime, key: KeyRuntime, err: UpstreamError, now: float
    ) -> None:
        """Lay a failure where it belongs: on the key (quota, auth) or on the target (health)."""
        self.metrics.attempts.labels(route, target.provider.name, target.model_label, err.kind.value).inc()
        if err.limit is not None:
            self.metrics.limit_exceeded.labels(target.provider.name, err.limit).inc()
        kind = err.kind
        if kind is ErrorKind.RATE_LIMITED:
            key.rest("cooling", now + (err.retry_after if err.retry_after is not None else KEY_COOLDOWN))
            self.metrics.key_errors.labels(target.provider.name, key.name, kind.value).inc()
        elif kind is ErrorKind.UNAUTHORIZED:
            key.rest("revoked", now + KEY_REVOKED_FOR)
            self.metrics.key_errors.labels(target.provider.name, key.name, kind.value).inc()
            log.error(
                "provider %s refused its key %r (HTTP %s): key taken out for %gs; other keys carry on",
                target.provider.name,
                key.name,
                err.status,
                KEY_REVOKED_FOR,
            )
        if kind in TARGET_FAILURES:
            target.breaker.failure(now)
        else:
            target.breaker.success(now)  # the provider answered: it is up, the request was the issue
        log.warning(
            "attempt failed: route=%s provider=%s model=%s key=%s kind=%s status=%s request_id=%s: %s",
            route,
            target.provider.name,
            target.model,
            key.name,
            kind.value,
            err.status,
            err.request_id,
            err.message,
        )

    # --- plain JSON (chat without stream, embeddings) ------------------------------------

    async def complete(
        self,
        route: CompiledRoute,
        body: JSON,
        prompt_tokens: int,
        operation: str,
        shape: Shape | None = None,
    ) -> JSONResult:
        async def attempt(
            target: TargetRuntime, key: KeyRuntime, timeout: float, deadline: float
        ) -> JSONResult:
            adapter = target.adapter
            if shape is not None:
                request = shape.request(target, key.value, False)
            elif operation == "embeddings":
                request = adapter.embeddings_request(target.provider, key.value, target.model, body)
            else:
                request = adapter.chat_request(target.provider, key.value, target.model, body, False)
            series = self.metrics.series(
                route.route.name, target.provider.name, target.model_label, operation
            )
            started = perf_counter()
            limits = route.limits
            try:
                status, headers, raw, request_id = await self._send(target, key, request, timeout, limits)
            except asyncio.CancelledError:
                # The client hung up while the provider answered: the request is stopped (the
                # response closed unread), and what the provider bills for it is estimated.
                self.ledger.abandoned(
                    target, series, Usage(), final=False, prompt_tokens=prompt_tokens, output_tokens=0
                )
                raise
            if status >= 300:
                err = adapter.error(status, headers, raw)
                err.request_id = request_id or err.request_id  # the header's, else the body's
                raise err
            check_structure(raw, limits.parse_budget, target.provider.name)
            try:
                if shape is not None:
                    out, usage = shape.response(target, raw)
                elif operation == "embeddings":
                    out, usage = adapter.embeddings_response(raw, target.model, body)
                else:
                    out, usage = adapter.chat_response(raw, target.model)
            except MALFORMED as exc:
                raise malformed(target, exc) from None
            cost = self.ledger.account(target, key, series, perf_counter() - started, usage)
            if (trace := tracing.current()) is not None:
                trace.answered(target, usage, out)
            return JSONResult(out, usage, cost, Served(target, 0), request_id)

        result, served = await _Run(self, route, body, prompt_tokens, attempt).execute()
        result.served = served
        return result

    async def _send(
        self,
        target: TargetRuntime,
        key: KeyRuntime,
        request: UpstreamRequest,
        timeout: float,
        limits: ReadLimits,
    ) -> tuple[int, dict[str, str], bytes, str | None]:
        target.in_flight += 1
        watchdog = Watchdog(timeout, float("inf"))
        name = target.provider.name
        try:
            with watchdog:
                async with self.upstreams.send(target.provider, request) as response:
                    status = response.status
                    if 300 <= status < 400:
                        raise redirect_error(name, status, response.headers.get("Location"))
                    adapt_to_headers(key, response.headers)
                    request_id = self.redact.header(upstream_request_id(response.headers))
                    if status >= 300:
                        headers = {k.lower(): v for k, v in response.headers.items()}
                        return status, headers, await read_error(response), request_id
                    refuse_encoded(name, response.headers)
                    return status, {}, await read_body(response, limits.response, name), request_id
        except asyncio.CancelledError:
            if not watchdog.fired():
                raise
            raise UpstreamError(
                ErrorKind.TIMEOUT, f"{target.provider.name} gave no answer within {timeout:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise connection_error(target, exc) from None
        finally:
            watchdog.stop()
            target.in_flight -= 1

    # --- streams -------------------------------------------------------------------------

    async def open_stream(
        self,
        route: CompiledRoute,
        body: JSON,
        prompt_tokens: int,
        include_usage: bool,
        shape: Shape | None = None,
    ) -> tuple[UpstreamStream, Served]:
        """Start a stream on the first target that produces a first chunk in time."""
        first_token = route.route.first_token_timeout

        async def attempt(
            target: TargetRuntime, key: KeyRuntime, timeout: float, deadline: float
        ) -> UpstreamStream:
            limits = route.limits
            state = StreamState(target.model, include_usage, limits.parse_budget)
            if shape is None:
                request = target.adapter.chat_request(target.provider, key.value, target.model, body, True)
                translator = target.adapter.stream(state)
            else:
                request = shape.request(target, key.value, True)
                translator = shape.stream(target, state)
            series = self.metrics.series(route.route.name, target.provider.name, target.model_label, "chat")
            stream = UpstreamStream(target, key, series, translator, deadline, timeout, limits, self.metrics)
            try:
                await stream.open(self.upstreams, request, min(first_token or timeout, timeout), self.redact)
            except asyncio.CancelledError:  # the client left before the first chunk
                stream.abandoned(self.ledger, prompt_tokens)
                raise
            return stream

        return await _Run(self, route, body, prompt_tokens, attempt).execute()


def adapt_to_headers(key: KeyRuntime, headers: Mapping[str, str]) -> None:
    """A provider saying a quota is used up rests the key until the quota resets."""
    wait = exhausted_for(headers, clock.time())
    if wait:
        key.rest("cooling", clock.monotonic() + wait)


class _Run(Generic[T]):
    """One client request's way through a route: which target, which key, how many tries."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        route: CompiledRoute,
        body: JSON,
        prompt_tokens: int,
        attempt: Attempt[T],
    ) -> None:
        self.body = body
        self.d = dispatcher
        self.route = route
        self.policy = route.route
        self.tokens = prompt_tokens
        self.attempt = attempt
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + self.policy.deadline
        self.max_attempts = self.policy.max_attempts or self.policy.retry.attempts * len(route.targets)
        self.attempts = 0
        self.last: UpstreamError | None = None
        self.previous: TargetRuntime | None = None
        # After ContextLengthExceeded, only a target with a larger known window is worth a try.
        self.needs_window = 0
        self.trace = tracing.current()
        if self.trace is not None:
            self.trace.begin(self.policy.name, body)

    async def execute(self) -> tuple[T, Served]:
        skipped: list[tuple[TargetRuntime, str]] = []
        for target in order_targets(self.route, self.tokens):
            reason = self._skip_reason(target)
            if reason is not None:
                skipped.append((target, reason))
                if self.trace is not None:
                    self.trace.skip(target, reason)
                self.d.metrics.skipped.labels(self.policy.name, target.provider.name, reason).inc()
                continue
            result = await self._try(target, forced=False)
            if result is not None:
                return result
        if self.attempts == 0 and skipped and self.loop.time() < self.deadline:
            choice = self._fail_open(skipped)
            if choice is not None:
                result = await self._try(choice, forced=True)
                if result is not None:
                    return result
        raise self._exhausted(skipped)

    def _skip_reason(self, target: TargetRuntime) -> str | None:
        window = target.context_window
        if self.needs_window and window is not None and window <= self.needs_window:
            return "ContextWindow"
        now = clock.monotonic()
        reason = target.unavailable(self.tokens, now)
        if reason == "ContextWindow":
            # The estimate errs high: where an exact count is possible, it decides.
            exact = self.d.token_counter.exact(target.model, self.body)
            if exact is not None:
                reason = target.unavailable(exact, now)
        return reason

    def _fail_open(self, skipped: list[tuple[TargetRuntime, str]]) -> TargetRuntime | None:
        """Every target was skipped: rather than refuse all traffic, try the likeliest one."""
        too_small = [t for t, reason in skipped if reason == "ContextWindow"]
        if len(too_small) == len(skipped):
            # Our token count is an estimate: the provider with the largest window decides.
            return max(too_small, key=lambda t: t.context_window or 0)
        if not self.route.fail_open:
            return None
        return min((t for t, reason in skipped if reason != "ContextWindow"), key=lambda t: t.ready_at())

    async def _try(self, target: TargetRuntime, *, forced: bool) -> tuple[T, Served] | None:
        """Up to `retry.attempts` attempts on one target; None means: fall back to the next."""
        policy = self.policy
        if self.previous is not None and self.last is not None:
            self.d.metrics.fallbacks.labels(
                policy.name, self.previous.provider.name, target.provider.name, self.last.kind.value
            ).inc()
            if self.trace is not None:
                self.trace.fall_back(self.previous, target, self.last.kind.value)
        self.previous = target
        retry_number = 0
        while True:
            remaining = self.deadline - self.loop.time()
            if self.attempts >= self.max_attempts or remaining <= 0:
                return None
            now = clock.monotonic()
            if not target.breaker.acquire(now) and not forced:
                return None
            key = target.shared.take_key(self.tokens, now)
            if key is None and forced and target.shared.keys:
                key = min(target.shared.keys, key=lambda k: k.unavailable_until)
            if key is None:
                target.breaker.release()
                return None
            self.attempts += 1
            timeout = min(policy.timeout or target.provider.timeout, remaining)
            span = (
                _NO_SPAN
                if self.trace is None
                else self.trace.attempt(target, self.attempts, retry_number, forced)
            )
            try:
                with span:
                    result = await self.attempt(target, key, timeout, self.deadline)
            except UpstreamError as err:
                err.message = self.d.redact(err.message)
                err.request_id = self.d.redact.header(err.request_id)  # one from a body, too
                self.last = err
                self.d.judge(policy.name, target, key, err, clock.monotonic())
                if err.kind not in policy.fallback_on:
                    raise
                if err.kind is ErrorKind.CONTEXT_LENGTH_EXCEEDED:
                    self.needs_window = max(self.needs_window, target.context_window or self.tokens)
                    return None
                retry_number += 1
                if retry_number < policy.retry.attempts and await self._again(target, err, retry_number):
                    continue
                return None
            except BaseException:
                target.breaker.release()  # cancelled (the client left): no verdict on the target
                raise
            target.breaker.success(clock.monotonic())
            if self.trace is not None:
                self.trace.served(target, self.attempts)
            return result, Served(target, self.attempts)

    async def _again(self, target: TargetRuntime, err: UpstreamError, retry_number: int) -> bool:
        """Whether to try the same target again, after waiting if that is worth it."""
        if err.kind in KEY_FAILURES and target.shared.available(self.tokens, clock.monotonic()):
            return True  # another key of this target can go right away
        if err.kind not in RETRY_SAME_TARGET:
            return False
        backoff = self.policy.retry.backoff
        delay = retry_delay(backoff, retry_number - 1, err.retry_after)
        if delay > backoff.max or self.loop.time() + delay >= self.deadline:
            return False  # waiting costs more than another target would
        self.d.metrics.retries.labels(self.policy.name, target.provider.name, err.kind.value).inc()
        await asyncio.sleep(delay)
        return True

    def _exhausted(self, skipped: list[tuple[TargetRuntime, str]]) -> UpstreamError:
        err = self._final_error(skipped)
        if err.kind in WAIT_KINDS:
            # When the route could serve again: its soonest target out of a breaker's cooldown
            # and with a key rested (a provider's Retry-After rests the key that long).
            wait = min(t.ready_at() for t in self.route.targets) - clock.monotonic()
            if 0 < wait < float("inf"):  # no key at all: nothing to wait for
                err.retry_after = wait
        return err

    def _final_error(self, skipped: list[tuple[TargetRuntime, str]]) -> UpstreamError:
        if self.last is not None:
            return self.last
        if skipped:
            reasons = ", ".join(f"{t.provider.name}: {reason}" for t, reason in skipped)
            if all(reason == "ContextWindow" for _, reason in skipped):
                return UpstreamError(
                    ErrorKind.CONTEXT_LENGTH_EXCEEDED,
                    f"the prompt (about {self.tokens} tokens) fits no target of route {self.policy.name!r}",
                )
            return UpstreamError(
                ErrorKind.OVERLOADED, f"every target of route {self.policy.name!r} is unavailable ({reasons})"
            )
        return UpstreamError(
            ErrorKind.TIMEOUT, f"route {self.policy.name!r} ran out of time before any attempt"
        )


# The attempt's span when not tracing: entered and left for nothing.
_NO_SPAN = contextlib.nullcontext()

# What translating a malformed answer raises (a list where an object belongs, a string that is
# not UTF-8, JSON nested past the interpreter's recursion limit): never a 500 of ours.
MALFORMED = (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError)


def malformed(target: TargetRuntime, exc: BaseException) -> UpstreamError:
    return UpstreamError(
        ErrorKind.SERVER_ERROR, f"{target.provider.name} sent a malformed answer ({type(exc).__name__})"
    )


async def read_error(response: aiohttp.ClientResponse) -> bytes:
    """An error's first bytes, for its message; a compressed one is classified by its status."""
    return b"" if compressed(response.headers) else await read_head(response)


def connection_error(target: TargetRuntime, exc: BaseException) -> UpstreamError:
    detail = str(exc) or type(exc).__name__
    return UpstreamError(ErrorKind.CONNECTION_ERROR, f"{target.provider.name}: {detail}")


class UpstreamStream:
    """One upstream SSE response being translated into OpenAI chunks for the client."""

    def __init__(
        self,
        target: TargetRuntime,
        key: KeyRuntime,
        series: TargetSeries,
        translator: StreamTranslator,
        deadline: float,
        idle_timeout: float,
        limits: ReadLimits,
        metrics: Metrics,
    ) -> None:
        self.target = target
        self.key = key
        self.series = series
        self.translator = translator
        self.deadline = deadline
        self.idle_timeout = idle_timeout
        self.first = b""
        self.limits = limits
        self.metrics = metrics
        self.received = 0  # bytes read from the upstream, for maxStreamBytes
        self.frames = 0  # client frames made, and their bytes: the output seen so far
        self.frame_bytes = 0
        self._response: aiohttp.ClientResponse | None = None
        self._watchdog: Watchdog | None = None
        self._started = perf_counter()
        self._last_chunk = 0.0
        self._open = False
        self.finished = False
        self.request_id: str | None = None
        self.trace = tracing.current()

    async def open(
        self, upstreams: Upstreams, request: UpstreamRequest, first_timeout: float, redact: Redactor
    ) -> None:
        """Send the request and read up to the first frames for the client (`first`); an
        upstream whose whole stream arrived by then is finished here already."""
        self.target.in_flight += 1
        self._open = True
        # One timer for the stream's whole life: first the first-chunk timeout, then the idle one.
        watchdog = self._watchdog = Watchdog(first_timeout, self.deadline)
        try:
            with watchdog:
                self._response = response = await upstreams.send(self.target.provider, request)
                status = response.status
                name = self.target.provider.name
                if 300 <= status < 400:
                    raise redirect_error(name, status, response.headers.get("Location"))
                adapt_to_headers(self.key, response.headers)
                self.request_id = redact.header(upstream_request_id(response.headers))
                if status >= 300:
                    raw = await read_error(response)
                    headers = {k.lower(): v for k, v in response.headers.items()}
                    err = self.target.adapter.error(status, headers, raw)
                    err.request_id = self.request_id or err.request_id
                    raise err
                refuse_encoded(name, response.headers)
                content = response.content
                while not self.first:
                    self.first = self._translate(await content.readany())
                if not self.finished and not content.is_eof():
                    # One loop turn (uvloop polls for I/O in it) for bytes already on their way:
                    # a stream that ends within it goes out as one body, not as two writes.
                    await asyncio.sleep(0)
                while not self.finished and content.is_eof():
                    self.first += self._translate(content.read_nowait())  # b"" once all is read
        except asyncio.CancelledError:
            self.close()
            if not watchdog.fired():
                raise
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
        watchdog.idle = self.idle_timeout
        now = perf_counter()
        self.series.first_chunk.observe(now - self._started)
        self._last_chunk = now

    def _translate(self, chunk: bytes) -> bytes:
        """Client frames for a piece of upstream bytes; b"" (the end) also closes the translation.
        UpstreamError when the stream passes a read limit or sends what cannot be translated."""
        limits = self.limits
        if chunk:
            self.received += len(chunk)
            if self.received > limits.stream:
                raise too_large(self.target.provider.name, "a stream", "maxStreamBytes", limits.stream)
        else:
            self.finished = True
        try:
            frames = self.translator.translate(chunk)
        except MALFORMED as exc:
            raise malformed(self.target, exc) from None
        if frames:
            self.frames += frames.count(b"data: ")
            self.frame_bytes += len(frames)
        if self.translator.decoder.pending > limits.event:
            self.translator.decoder.discard()
            raise too_large(self.target.provider.name, "an event", "maxEventBytes", limits.event)
        if self.finished and self.trace is not None:
            self.trace.answered(self.target, self.translator.usage)
        return frames

    async def more(self) -> bytes:
        """The client frames for the next upstream read (possibly b""); after the last one
        `finished` is set. UpstreamError when the stream breaks, stalls or runs out of time."""
        assert self._response is not None and self._watchdog is not None
        watchdog = self._watchdog
        if watchdog.ticker.loop.time() >= self.deadline:
            # An upstream that keeps sending never leaves the watchdog a silent read to cut.
            raise UpstreamError(
                ErrorKind.TIMEOUT, f"{self.target.provider.name} was still streaming at the route's deadline"
            )
        try:
            with watchdog:
                chunk = await self._response.content.readany()
        except asyncio.CancelledError:
            if not watchdog.fired():
                raise
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
        if not self.finished and self._response.content.at_eof():
            frames += self._translate(b"")  # the end came with this read: no read just for it
        return frames

    def succeeded(self, ledger: UsageLedger) -> None:
        """Counts the stream, once its last byte has been written."""
        ledger.count(
            self.target, self.key, self.series, perf_counter() - self._started, self.translator.usage
        )

    def abandoned(self, ledger: UsageLedger, prompt_tokens: int) -> None:
        """Counts a stream the client went away from, as the provider will bill it."""
        translator = self.translator
        ledger.abandoned(
            self.target,
            self.series,
            translator.usage,
            final=translator.usage_final or self.finished,
            prompt_tokens=prompt_tokens,
            output_tokens=output_estimate(self.frames, self.frame_bytes),
        )

    def broke(self, err: UpstreamError) -> None:
        """A failure after the first byte still tells the breaker about the target."""
        if err.kind in TARGET_FAILURES:
            self.target.breaker.failure(clock.monotonic())
        if self.trace is not None:
            self.trace.error(err.kind.value)
        if err.limit is not None:
            self.metrics.limit_exceeded.labels(self.target.provider.name, err.limit).inc()

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        if self._response is not None:
            self._response.close()
            self._response = None
        if self._open:
            self._open = False
            self.target.in_flight -= 1
