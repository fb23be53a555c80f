"""A pulled usage report is checked before anything of it is folded: all of it, or none.

Refused: more than MAX_REPORT_BYTES; not the router's schema (`switchyard_router.usage`:
unknown fields, negative or non-integer counts, a negative, infinite or absurd cost, a malformed
month, more counters than a table can have); a counter twice; a report that names another pod,
namespace or policy than the pod it was pulled from. The reason is a short fixed word (a metric
label); the message says which field, never the value sent.
"""

from __future__ import annotations

from pydantic import ValidationError
from switchyard_router.usage import UsageReport

from .router_pods import RouterPod

MAX_REPORT_BYTES = 1 << 20


class ReportRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "the report"
    return f"{where}: {error['msg']}"


def check_report(raw: bytes, pod: RouterPod) -> UsageReport:
    """The report in `raw` as pulled from `pod`, or ReportRefused saying why not."""
    if len(raw) > MAX_REPORT_BYTES:
        raise ReportRefused("TooLarge", f"the report is over {MAX_REPORT_BYTES} bytes")
    try:
        report = UsageReport.model_validate_json(raw)
    except ValidationError as exc:
        raise ReportRefused("Invalid", f"not a usage report: {_first_error(exc)}") from None
    claimed = (report.namespace, report.pod, report.policy)
    if claimed != (pod.namespace, pod.name, pod.policy):
        raise ReportRefused(
            "WrongPod",
            f"the report speaks for pod {report.namespace}/{report.pod} of policy {report.policy}, "
            f"but was pulled from pod {pod.namespace}/{pod.name} of policy {pod.policy}",
        )
    seen: set[tuple[str, str, str]] = set()
    for counter in report.counters:
        key = (counter.provider, counter.model, counter.period)
        if key in seen:
            raise ReportRefused("Invalid", f"counter {'/'.join(key)} appears twice")
        seen.add(key)
    return report
