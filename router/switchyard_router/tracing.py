"""OpenTelemetry traces: a span per client request, a child span per upstream attempt.

Off unless an OTLP endpoint is set (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
OTEL_EXPORTER_OTLP_ENDPOINT); only then is the SDK (the `tracing` extra) imported, so a router
that does not trace neither loads it nor pays for it: the request handlers are wrapped once, at
start, and the dispatcher's hooks are a `None` check.

Spans follow the OpenTelemetry GenAI semantic conventions (gen_ai.*, error.type) plus
switchyard.* attributes for what only a gateway knows: route, attempt number, why it fell back,
which targets it skipped and why, the breaker's state, the cost. Prompts and completions are
recorded only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true; keys and headers never.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import orjson

from .errors import UpstreamError

if TYPE_CHECKING:
    from aiohttp import web
    from opentelemetry.trace import Span, Tracer

    from .adapters.base import Usage
    from .runtime import TargetRuntime

# The conventions' well-known gen_ai.provider.name values where one fits our provider types.
PROVIDER_NAMES = {"gemini": "gcp.gemini", "openai-compatible": "openai"}
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

Handler = Callable[["web.BaseRequest"], Awaitable["web.StreamResponse"]]


class TracingConfigError(Exception):
    """An OTEL_* setting this router cannot follow; the message names it and the fix."""


class _State:
    tracer: Tracer | None = None
    capture = False
    shutdown: Callable[[], None] | None = None


_STATE = _State()
# Whether upstream requests carry a traceparent: the one check on the send path.
ENABLED = False
_CURRENT: ContextVar[RequestTrace | None] = ContextVar("switchyard_request_trace", default=None)


def endpoint_of(environ: Mapping[str, str]) -> str | None:
    """The OTLP endpoint traces go to, None when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        if value := environ.get(name, "").strip():
            return value
    return None


def configure(environ: Mapping[str, str] = os.environ, service: str = "switchyard-router") -> bool:
    """Start exporting spans when the environment names an OTLP endpoint; False (nothing
    imported) when it does not. TracingConfigError for settings we cannot follow."""
    global ENABLED
    stop()
    if endpoint_of(environ) is None:
        return False
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(name, "").strip()
        if protocol:
            if protocol != "http/protobuf":
                raise TracingConfigError(
                    f"{name}={protocol}: traces are exported over OTLP http/protobuf only; "
                    "set it to http/protobuf (a collector's port 4318)"
                )
            break
    try:
        import requests
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TracingConfigError(
            "an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT) but the OpenTelemetry SDK is not "
            "installed: pip install 'switchyard[tracing]', or unset the endpoint"
        ) from None
    named = "OTEL_SERVICE_NAME" in environ or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(
        resource=Resource.create({} if named else {"service.name": service}), shutdown_on_exit=False
    )
    # The exporter reads the endpoint, headers, timeout and compression from OTEL_* itself. The
    # collector is reached directly: HTTPS_PROXY is for provider traffic, not telemetry.
    session = requests.Session()
    session.trust_env = False
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(session=session)))
    _STATE.tracer = provider.get_tracer("switchyard")
    _STATE.capture = environ.get(CAPTURE_ENV, "").strip().lower() == "true"
    _STATE.shutdown = provider.shutdown
    ENABLED = True
    return True


def stop() -> None:
    """Export what is buffered and stop tracing (at exit)."""
    global ENABLED
    ENABLED = False
    _STATE.tracer = None
    if _STATE.shutdown is not None:
        shutdown, _STATE.shutdown = _STATE.shutdown, None
        shutdown()


def tracer() -> Tracer | None:
    """The tracer spans are made with; None when not tracing."""
    return _STATE.tracer


def current() -> RequestTrace | None:
    """The trace of the request this task serves, None when not tracing."""
    return _CURRENT.get()


def inject(headers: MutableMapping[str, str]) -> None:
    """Put the current span's traceparent (and tracestate) on an upstream request."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    TraceContextTextMapPropagator().inject(headers)


def traced(handlers: Mapping[tuple[str, str], Handler]) -> dict[tuple[str, str], Handler]:
    """The API's handlers, those of model requests wrapped in a request span when tracing."""
    tracer = _STATE.tracer
    if tracer is None:
        return dict(handlers)
    operations = {"/v1/chat/completions": "chat", "/v1/messages": "chat", "/v1/embeddings": "embeddings"}
    return {
        key: _wrap(tracer, handler, operations[key[1]]) if key[1] in operations else handler
        for key, handler in handlers.items()
    }


def _wrap(tracer: Tracer, handler: Handler, operation: str) -> Handler:
    from opentelemetry import context, trace
    from opentelemetry.trace import SpanKind, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    propagator = TraceContextTextMapPropagator()  # W3C trace context only: no caller baggage upstream

    async def serve(request: web.BaseRequest) -> web.StreamResponse:
        parent = propagator.extract(request.headers)
        span = tracer.start_span(
            operation, parent, SpanKind.SERVER, {"gen_ai.operation.name": operation}
        )
        trace_ = RequestTrace(span, operation, tracer, _STATE.capture)
        token = _CURRENT.set(trace_)
        attached = context.attach(trace.set_span_in_context(span, parent))
        try:
            response = await handler(request)
        except BaseException as exc:  # the client hung up (handler_cancellation), or a bug
            trace_.error("ClientGone" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__)
            raise
        else:
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 400 and not trace_.failed_kind:
                trace_.error(str(response.status))
            elif not trace_.failed_kind:
                span.set_status(StatusCode.OK)
        finally:
            context.detach(attached)
            _CURRENT.reset(token)
            span.end()
        return response

    return serve


class RequestTrace:
    """One client request's span and the attempt spans under it."""

    def __init__(self, span: Span, operation: str, tracer: Tracer, capture: bool) -> None:
        self.span = span
        self.operation = operation
        self.tracer = tracer
        self.capture = capture
        self.skipped: list[str] = []
        self.fallback_reason: str | None = None
        self.failed_kind: str | None = None
        self.attempt_span: Span | None = None

    def begin(self, route: str, body: Mapping[str, Any]) -> None:
        """The route chosen for the request (the model the caller asked for)."""
        model = body.get("model")
        self.span.update_name(f"{self.operation} {model}")
        self.span.set_attributes({"gen_ai.request.model": str(model), "switchyard.route": route})
        if self.capture:
            content = body.get("messages") if self.operation == "chat" else body.get("input")
            self.span.set_attribute("gen_ai.input.messages", orjson.dumps(content).decode())

    def skip(self, target: TargetRuntime, reason: str) -> None:
        self.skipped.append(f"{target.provider.name}/{target.model}: {reason}")
        self.span.set_attribute("switchyard.skipped_targets", self.skipped)

    def fall_back(self, previous: TargetRuntime, target: TargetRuntime, reason: str) -> None:
        self.fallback_reason = reason
        self.span.add_event(
            "switchyard.fallback",
            {
                "switchyard.from": f"{previous.provider.name}/{previous.model}",
                "switchyard.to": f"{target.provider.name}/{target.model}",
                "switchyard.fallback_reason": reason,
            },
        )

    @contextlib.contextmanager
    def attempt(self, target: TargetRuntime, number: int, retry: int, forced: bool) -> Iterator[None]:
        """A CLIENT span around one upstream attempt; current while it runs, so the upstream
        request carries its traceparent."""
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind, StatusCode

        attributes: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "gen_ai.provider.name": _provider_name(target),
            "gen_ai.request.model": target.model,
            "switchyard.provider": target.provider.name,
            "switchyard.attempt": number,
            "switchyard.retry": retry,
            "switchyard.breaker.state": target.breaker.state.name.lower(),
        }
        if forced:
            attributes["switchyard.fail_open"] = True
        if self.fallback_reason is not None and retry == 0:
            attributes["switchyard.fallback_reason"] = self.fallback_reason
        span = self.tracer.start_span(
            f"{self.operation} {target.model}", kind=SpanKind.CLIENT, attributes=attributes
        )
        self.attempt_span = span
        attached = context.attach(trace.set_span_in_context(span))
        try:
            yield
        except UpstreamError as err:
            span.set_attribute("error.type", err.kind.value)
            if err.status is not None:
                span.set_attribute("http.response.status_code", err.status)
            span.set_status(StatusCode.ERROR)
            raise
        except asyncio.CancelledError:
            span.set_attribute("error.type", "ClientGone")
            span.set_status(StatusCode.ERROR)
            raise
        else:
            span.set_status(StatusCode.OK)
        finally:
            context.detach(attached)
            self.attempt_span = None
            span.end()

    def served(self, target: TargetRuntime, attempts: int) -> None:
        self.span.set_attributes(
            {
                "gen_ai.provider.name": _provider_name(target),
                "gen_ai.response.model": target.model,
                "switchyard.provider": target.provider.name,
                "switchyard.attempts": attempts,
            }
        )

    def answered(self, target: TargetRuntime, usage: Usage, body: bytes | None = None) -> None:
        """The answer's model, tokens and cost, on the request span (and the attempt's, while
        it runs)."""
        from .usage import target_cost

        cost = target_cost(target, usage)
        attributes: dict[str, Any] = {
            "gen_ai.response.model": target.model,
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
        }
        if cost is not None:
            attributes["switchyard.cost_usd"] = float(cost)
        for span in (self.span, self.attempt_span):
            if span is not None:
                span.set_attributes(attributes)
        if self.capture and body is not None:
            self.span.set_attribute("gen_ai.output.messages", _output(body))

    def error(self, kind: str) -> None:
        from opentelemetry.trace import StatusCode

        self.failed_kind = kind
        self.span.set_attribute("error.type", kind)
        self.span.set_status(StatusCode.ERROR)


def _provider_name(target: TargetRuntime) -> str:
    kind = str(target.provider.type)
    return PROVIDER_NAMES.get(kind, kind)


def _output(body: bytes) -> str:
    answer = orjson.loads(body)
    return orjson.dumps(answer.get("choices") or answer.get("data") or []).decode()


def failed(err: UpstreamError) -> None:
    """The request ends in this error (none of its targets answered, or a stream broke)."""
    trace_ = _CURRENT.get()
    if trace_ is not None:
        trace_.error(err.kind.value)
