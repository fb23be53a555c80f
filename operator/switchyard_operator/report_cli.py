"""`switchyard report`: compare providers (requests, errors, latency, tokens, cost).

    switchyard report [-n NS] [--kubeconfig FILE] [--json]      from LLMProvider status (this month
                                                                 and the last closed one)
    switchyard report --metrics-url http://127.0.0.1:8080/metrics [--json]   from one router

The cluster view comes from `status.spend` (the operator's exact monthly totals); error rates,
latency and fallbacks exist only in a router's metrics. Latency quantiles are estimated from the
`gen_ai_client_operation_duration_seconds` histogram buckets by linear interpolation (as
Prometheus's histogram_quantile does), over successful operations.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from switchyard_router.money import decimal_text

from .models import GROUP

JSON = dict[str, Any]


@dataclass
class ProviderRow:
    provider: str
    requests: int = 0
    errors: int | None = None
    error_rate: float | None = None
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: str = "0"
    cost_per_1k_requests: str | None = None
    fallbacks: int | None = None
    unpriced_requests: int = 0
    # abandoned answers counted from an estimate, apart from cost_usd
    estimated_cost_usd: str | None = None
    # the last closed month, from status.spend.lastMonth (the cluster view only)
    last_month: str | None = None
    last_month_cost_usd: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _money(value: Decimal) -> str:
    return decimal_text(value.quantize(Decimal("0.000001")))


def _per_1k(cost: Decimal, requests: int) -> str | None:
    return _money(cost * 1000 / requests) if requests else None


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """histogram_quantile over cumulative (upper bound, count) buckets, +Inf last."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # in the open-ended bucket: the highest finite bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound  # pragma: no cover - the +Inf bucket holds every observation


def rows_from_metrics(text: str) -> list[ProviderRow]:
    """One row per provider from a router's Prometheus text."""
    rows: dict[str, ProviderRow] = {}
    costs: dict[str, Decimal] = {}
    estimated: dict[str, Decimal] = {}
    ok: dict[str, int] = {}
    buckets: dict[str, dict[float, float]] = {}

    def row(name: str) -> ProviderRow:
        if name not in rows:
            rows[name] = ProviderRow(provider=name, errors=0, fallbacks=0)
        return rows[name]

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == "switchyard_attempts_total":
                r = row(labels["provider"])
                r.requests += int(value)
                if labels.get("outcome") == "ok":
                    ok[r.provider] = ok.get(r.provider, 0) + int(value)
                else:
                    r.errors = (r.errors or 0) + int(value)
            elif sample.name == "switchyard_tokens_total":
                r = row(labels["provider"])
                if labels.get("type") == "input":
                    r.input_tokens += int(value)
                elif labels.get("type") == "output":
                    r.output_tokens += int(value)
            elif sample.name == "switchyard_cost_usd_total":
                name = row(labels["provider"]).provider
                costs[name] = costs.get(name, Decimal(0)) + Decimal(repr(value))
            elif sample.name == "switchyard_estimated_cost_usd_total":
                name = row(labels["provider"]).provider
                estimated[name] = estimated.get(name, Decimal(0)) + Decimal(repr(value))
            elif sample.name == "switchyard_unpriced_requests_total":
                row(labels["provider"]).unpriced_requests += int(value)
            elif sample.name == "switchyard_fallbacks_total":
                r = row(labels["from_provider"])
                r.fallbacks = (r.fallbacks or 0) + int(value)
            elif (
                sample.name == "gen_ai_client_operation_duration_seconds_bucket"
                and not labels.get("error_type")
            ):
                per = buckets.setdefault(row(labels["gen_ai_provider_name"]).provider, {})
                bound = float(labels["le"])
                per[bound] = per.get(bound, 0.0) + value
    for name, r in rows.items():
        cost = costs.get(name, Decimal(0))
        r.cost_usd = _money(cost)
        if name in estimated:
            r.estimated_cost_usd = _money(estimated[name])
        r.cost_per_1k_requests = _per_1k(cost, ok.get(name, 0))
        r.error_rate = (r.errors or 0) / r.requests if r.requests else None
        cumulative = sorted(buckets.get(name, {}).items())
        r.p50_seconds = quantile(0.5, cumulative)
        r.p95_seconds = quantile(0.95, cumulative)
    return sorted(rows.values(), key=lambda r: r.provider)


def _cost(spend: Mapping[str, Any], field: str = "costUSD") -> Decimal:
    try:
        return Decimal(str(spend.get(field) or "0"))
    except InvalidOperation:
        return Decimal(0)


def rows_from_providers(items: Iterable[Mapping[str, Any]]) -> list[ProviderRow]:
    """One row per LLMProvider from its status.spend (the current month and the last closed one)."""
    rows = []
    for item in items:
        status = item.get("status") or {}
        spend = status.get("spend") or {}
        cost = _cost(spend)
        last = spend.get("lastMonth") if isinstance(spend.get("lastMonth"), Mapping) else None
        requests = int(spend.get("requests") or 0)
        extra: JSON = {"period": spend.get("period")}
        for c in status.get("conditions") or []:
            if c.get("type") == "WithinBudget":
                extra["budget"] = c.get("reason")
        rows.append(
            ProviderRow(
                provider=str((item.get("metadata") or {}).get("name", "?")),
                requests=requests,
                input_tokens=int(spend.get("inputTokens") or 0),
                output_tokens=int(spend.get("outputTokens") or 0),
                cost_usd=_money(cost),
                cost_per_1k_requests=_per_1k(cost, requests),
                unpriced_requests=int(spend.get("unpricedRequests") or 0),
                estimated_cost_usd=(
                    _money(_cost(spend, "estimatedCostUSD")) if "estimatedCostUSD" in spend else None
                ),
                last_month=str(last.get("period")) if last else None,
                last_month_cost_usd=_money(_cost(last)) if last else None,
                extra={k: v for k, v in extra.items() if v is not None},
            )
        )
    return sorted(rows, key=lambda r: r.provider)


def _cell(value: Any, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "ms":
        return f"{value * 1000:.0f}ms"
    if kind == "usd":
        return f"${value}"
    return str(value)


COLUMNS = (
    ("PROVIDER", "provider", ""),
    ("REQUESTS", "requests", ""),
    ("ERRORS", "error_rate", "pct"),
    ("P50", "p50_seconds", "ms"),
    ("P95", "p95_seconds", "ms"),
    ("IN TOKENS", "input_tokens", ""),
    ("OUT TOKENS", "output_tokens", ""),
    ("COST", "cost_usd", "usd"),
    ("COST/1K REQ", "cost_per_1k_requests", "usd"),
    ("ESTIMATED COST", "estimated_cost_usd", "usd"),
    ("FALLBACKS", "fallbacks", ""),
    ("LAST MONTH", "last_month", ""),
    ("LAST MONTH COST", "last_month_cost_usd", "usd"),
)


# Shown only when some row has one (a router's metrics know no months).
OPTIONAL = {"last_month", "last_month_cost_usd", "estimated_cost_usd"}


def render_table(rows: Sequence[ProviderRow]) -> str:
    columns = [
        c for c in COLUMNS if c[1] not in OPTIONAL or any(getattr(r, c[1]) is not None for r in rows)
    ]
    table = [[title for title, _, _ in columns]]
    for r in rows:
        table.append([_cell(getattr(r, attr), kind) for _, attr, kind in columns])
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = []
    for line in table:
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_json(rows: Sequence[ProviderRow], source: str) -> str:
    return json.dumps({"source": source, "providers": [asdict(r) for r in rows]}, indent=2)


def fetch_metrics(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
    return body.decode("utf-8")


def list_providers(namespace: str, kubeconfig: str | None) -> list[JSON]:
    """The namespace's LLMProviders, through kubectl (its usual kubeconfig lookup and auth)."""
    command = ["kubectl", "get", f"llmproviders.{GROUP}", "-n", namespace, "-o", "json"]
    if kubeconfig:
        command[1:1] = ["--kubeconfig", kubeconfig]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"kubectl exited with {done.returncode}")
    items: list[JSON] = json.loads(done.stdout).get("items") or []
    return items


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="switchyard report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--namespace", default="default", help="namespace of the LLMProviders")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: standard lookup)")
    parser.add_argument("--metrics-url", default=None, help="a router's metrics endpoint instead")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.metrics_url:
            rows = rows_from_metrics(fetch_metrics(args.metrics_url))
            source = args.metrics_url
        else:
            rows = rows_from_providers(list_providers(args.namespace, args.kubeconfig))
            source = f"LLMProvider status in namespace {args.namespace}"
    except Exception as exc:
        print(f"switchyard report: {exc}", file=sys.stderr)
        return 1
    print(render_json(rows, source) if args.json else render_table(rows))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
