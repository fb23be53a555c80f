"""The operator's spans: one per reconcile and one per health probe, exported as the router's
are (switchyard_router.tracing: OTEL_* environment, off without an OTLP endpoint, the SDK
imported only then). A probe's request carries its span's traceparent."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from switchyard_router import tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span


@contextlib.contextmanager
def span(name: str, namespace: str, resource: str, **attributes: Any) -> Iterator[Span | None]:
    """A span around one reconcile step or probe (None when not tracing); an exception marks
    it failed with its type as error.type."""
    tracer = tracing.tracer()
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import StatusCode

    attributes = {"k8s.namespace.name": namespace, "switchyard.resource": resource, **attributes}
    with tracer.start_as_current_span(
        f"{name} {namespace}/{resource}", attributes=attributes, record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_attribute("error.type", type(exc).__name__)
            current.set_status(StatusCode.ERROR)
            raise


def probe_result(current: Span | None, ok: bool, latency_ms: int, error: str | None) -> None:
    """A probe's outcome on its span: its classified error kind, never the answer."""
    if current is None:
        return
    from opentelemetry.trace import StatusCode

    current.set_attribute("switchyard.probe.latency_ms", latency_ms)
    if ok:
        current.set_status(StatusCode.OK)
    else:
        current.set_attribute("error.type", (error or "").partition(":")[0])
        current.set_status(StatusCode.ERROR)
