"""Generate helm/switchyard/files/dashboard.json, the Switchyard Grafana dashboard.

    python monitoring/dashboard.py [--check]

Router series (sidecar health port, PodMonitor) and the operator's spend/budget gauges. The
GenAI panels use the OpenTelemetry names, so dashboards for other GenAI gateways line up.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[1] / "helm" / "switchyard" / "files" / "dashboard.json"
SEL = 'namespace=~"$namespace"'
RATE = "$__rate_interval"
DURATION = "gen_ai_client_operation_duration_seconds"
JSON = dict[str, Any]


def target(expr: str, legend: str, ref: str = "A", **extra: Any) -> JSON:
    return {"datasource": {"type": "prometheus", "uid": "${datasource}"}, "expr": expr,
            "legendFormat": legend, "refId": ref, **extra}


def panel(pid: int, title: str, kind: str, grid: tuple[int, int, int, int], targets: list[JSON],
          unit: str = "short", description: str = "", **extra: Any) -> JSON:
    x, y, w, h = grid
    return {
        "id": pid, "title": title, "type": kind, "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": targets, **extra,
    }


def dashboard() -> JSON:
    by = "gen_ai_provider_name"
    panels = [
        panel(1, "Requests per second by provider", "timeseries", (0, 0, 12, 8), [
            target(f"sum by ({by}) (rate({DURATION}_count{{{SEL}}}[{RATE}]))", "{{" + by + "}}"),
        ], "reqps", "Upstream operations (gen_ai.client.operation.duration count)."),
        panel(2, "Error ratio by provider", "timeseries", (12, 0, 12, 8), [
            target(
                f'sum by ({by}) (rate({DURATION}_count{{{SEL},error_type!=""}}[{RATE}]))'
                f" / sum by ({by}) (rate({DURATION}_count{{{SEL}}}[{RATE}]))",
                "{{" + by + "}}",
            ),
        ], "percentunit", "Share of upstream operations that ended in an error (error.type set)."),
        panel(3, "Latency p50 / p95 by provider", "timeseries", (0, 8, 12, 8), [
            target(f"histogram_quantile(0.5, sum by (le, {by}) (rate({DURATION}_bucket{{{SEL}}}[{RATE}])))",
                   "p50 {{" + by + "}}", "A"),
            target(f"histogram_quantile(0.95, sum by (le, {by}) (rate({DURATION}_bucket{{{SEL}}}[{RATE}])))",
                   "p95 {{" + by + "}}", "B"),
        ], "s"),
        panel(4, "Fallbacks per second", "timeseries", (12, 8, 12, 8), [
            target(f"sum by (route, from_provider, to_provider, reason) "
                   f"(rate(switchyard_fallbacks_total{{{SEL}}}[{RATE}]))",
                   "{{route}}: {{from_provider}} → {{to_provider}} ({{reason}})"),
        ], "ops"),
        panel(5, "Tokens per second", "timeseries", (0, 16, 12, 8), [
            target(f"sum by (provider, type) (rate(switchyard_tokens_total{{{SEL}}}[{RATE}]))",
                   "{{provider}} {{type}}"),
        ], "short"),
        panel(6, "Cost (USD) in the selected range", "bargauge", (12, 16, 12, 8), [
            target(f"sum by (provider) (increase(switchyard_cost_usd_total{{{SEL}}}[$__range]))",
                   "{{provider}}", instant=True),
        ], "currencyUSD", "Tokens times the routing table's prices, as counted by the routers."),
        panel(7, "Circuit state by target", "state-timeline", (0, 24, 12, 8), [
            target(f"max by (provider, model) (switchyard_circuit_state{{{SEL}}})", "{{provider}}/{{model}}"),
        ], "short", "0 closed, 1 open, 2 half-open (the worst across routers).",
            options={"showValue": "never"}),
        panel(8, "Spend vs monthly budget", "bargauge", (12, 24, 12, 8), [
            target(f"switchyard_provider_spend_usd{{{SEL}}} / (switchyard_provider_budget_usd{{{SEL}}} > 0)",
                   "{{namespace}}/{{provider}}", instant=True),
        ], "percentunit", "From the operator: LLMProvider status.spend against spec.budget.monthlyUSD."),
        panel(9, "Routing table served, by policy", "table", (0, 32, 24, 8), [
            target(f"count by (namespace, policy, hash) (switchyard_table_info{{{SEL}}})", "",
                   instant=True, format="table"),
        ], "short", "Routers per table hash; more than one hash per policy for long means a stuck reload."),
    ]
    panels[6]["fieldConfig"]["defaults"]["mappings"] = [{
        "type": "value",
        "options": {
            "0": {"text": "closed", "color": "green"},
            "1": {"text": "open", "color": "red"},
            "2": {"text": "half-open", "color": "orange"},
        },
    }]
    return {
        "title": "Switchyard",
        "uid": "switchyard-overview",
        "description": "LLM traffic through Switchyard routers: providers, fallbacks, latency, tokens, cost.",
        "tags": ["switchyard", "llm", "gen-ai"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
            {"name": "namespace", "type": "query", "label": "Namespace", "includeAll": True, "multi": True,
             "allValue": ".*", "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": "label_values(switchyard_table_info, namespace)", "refId": "ns"},
             "refresh": 2},
        ]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python monitoring/dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
