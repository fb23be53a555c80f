"""Alerts and the dashboard, checked by Prometheus' own tool against what the code exports.

promtool (Debian's `prometheus` package) checks the PrometheusRule the chart renders and runs the
alert unit tests in alerts_test.yaml: each alert fires when it should and stays quiet when it
should not. The series those tests feed, and every series an alert or a dashboard panel selects,
must be ones a real router and a real operator export: each runs as its console script, the
router serving requests through the simulator (one falls back), the operator reconciling a
provider with a budget and spend, and their /metrics are scraped (the ports the chart's
PodMonitor and ServiceMonitor scrape). Tests that need promtool skip when it is absent, except
under SWITCHYARD_REQUIRE_PROMTOOL=1 (CI), where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import promql_parser
import pytest
import yaml
from kmock import ResourceInfo, Server
from prometheus_client.parser import text_string_to_metric_families
from switchyard_operator.kube import Kube, core_path, custom_path

from tests.integration.conftest import KEYS, table_for
from tests.operator.conftest import VERBS, eventually
from tests.operator.emulator import Emulator
from tests.operator.manifests import NS, provider, secret
from tests.operator.test_operator_process import free_port, operator_process

from .test_chart import FULL_VALUES, documents, ensure_installed, find

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
UNIT_TESTS = HERE / "alerts_test.yaml"
RULES_FILE = "switchyard-rules.yaml"  # the name alerts_test.yaml gives in rule_files
REQUIRED = os.environ.get("SWITCHYARD_REQUIRE_PROMTOOL") == "1"
# Labels Prometheus (prometheus-operator) puts on every series of a scraped pod or service; the
# chart's own relabelings are read from the rendered monitors.
TARGET_LABELS = {"namespace", "pod", "container", "endpoint", "job", "instance", "service"}
# Grafana's own variables, given values so that the dashboard's queries parse as Prometheus gets them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m"}
Exported = dict[str, set[str]]  # series name -> its label names
pytestmark = pytest.mark.filterwarnings("ignore:read_binary is deprecated")  # kmock's


# --------------------------------------------------------------------------- the chart's rules


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The chart installed with monitoring on (test_chart's FULL_VALUES) into the emulated API."""
    ensure_installed("helm_sdkpy", "helm-sdkpy", "--ignore-requires-python")
    cases = tmp_path_factory.mktemp("helm") / "cases.json"
    cases.write_text(json.dumps({"cases": [{"name": "full", "namespace": "switchyard", "values": FULL_VALUES}]}))
    result = subprocess.run(
        [sys.executable, "-m", "tests.delivery.helm_render", str(cases)],
        cwd=ROOT, env={**os.environ, "HELM_DRIVER": "memory"},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return documents(json.loads(result.stdout), "full")


@pytest.fixture(scope="module")
def rules(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(docs, "PrometheusRule")["spec"]
    return spec


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool is not installed (apt-get install prometheus: .ci/run does)"
        if REQUIRED:
            pytest.fail(f"SWITCHYARD_REQUIRE_PROMTOOL=1, but {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture
def rules_dir(rules: dict[str, Any], tmp_path: Path) -> Path:
    """The rendered rules beside a copy of the unit tests, which name them relative to themselves."""
    (tmp_path / RULES_FILE).write_text(yaml.safe_dump(rules, sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return tmp_path


def alert_names(rules: dict[str, Any]) -> list[str]:
    return [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_checks_the_rendered_rules(promtool: str, rules: dict[str, Any], rules_dir: Path) -> None:
    result = subprocess.run([promtool, "check", "rules", RULES_FILE], cwd=rules_dir,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in rules["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_alert_unit_tests_pass(promtool: str, rules_dir: Path) -> None:
    result = subprocess.run([promtool, "test", "rules", UNIT_TESTS.name], cwd=rules_dir,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_catches_a_wrong_expectation(promtool: str, rules_dir: Path) -> None:
    """The unit tests can fail: an alert expected where the rules stay quiet is reported."""
    tests = yaml.safe_load(UNIT_TESTS.read_text())
    quiet = next(c for t in tests["tests"] for c in t["alert_rule_test"] if not c["exp_alerts"])
    quiet["exp_alerts"] = [{"exp_labels": {"severity": "warning"}}]
    (rules_dir / "wrong.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run([promtool, "test", "rules", "wrong.yaml"], cwd=rules_dir,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert quiet["alertname"] in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet(rules: dict[str, Any]) -> None:
    cases = [c for t in yaml.safe_load(UNIT_TESTS.read_text())["tests"] for c in t["alert_rule_test"]]
    for alert in alert_names(rules):
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in mine), f"{alert}: no case where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{alert}: no case where it stays quiet"
    assert {c["alertname"] for c in cases} <= set(alert_names(rules)), "a test for an alert the chart lacks"


# --------------------------------------------------------------------------- what the code exports


def scraped(text: str) -> Exported:
    out: Exported = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


async def first_line(process: asyncio.subprocess.Process, timeout: float = 20) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), timeout)).decode()


@asynccontextmanager
async def started(*argv: str, env: dict[str, str] | None = None) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """A console script until its first line (it says where it listens); stopped with SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / argv[0]), *argv[1:], env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = await first_line(process)
        assert "listening" in line, line + (await process.communicate())[1].decode()[-2000:]
        yield process, line
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.communicate(), 15)


async def router_metrics(tmp_path: Path) -> str:
    """A router in front of the simulator after traffic: one request served, one fallen back."""
    async with started("switchyard", "sim", "--port", "0") as (_, line):
        sim = line.split()[-1].rstrip("/")
        table = table_for(sim)
        for spec in table["providers"]:
            for model in spec["models"]:
                model["pricing"] = {"inputPerMillionTokens": "1", "outputPerMillionTokens": "2"}
        config = tmp_path / "table.yaml"
        config.write_text(yaml.safe_dump(table))
        port, health = free_port(), free_port()
        async with started(
            "switchyard-router", "--port", str(port), "--config", str(config),
            "--health-port", str(health), "--health-host", "127.0.0.1", env=KEYS,
        ), aiohttp.ClientSession() as http:
            body = {"model": table["routes"][0]["name"], "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as resp:
                assert resp.status == 200, await resp.text()
            first = table["routes"][0]["targets"][0]["provider"]
            fault = {"error_rate": 1.0, "error_status": 503}
            async with http.put(f"{sim}/_sim/faults/{first}", json=fault) as resp:
                assert resp.status == 200, await resp.text()
            async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.headers["x-switchyard-provider"] != first, "no fallback happened"
            async with http.get(f"http://127.0.0.1:{health}/metrics") as resp:
                return await resp.text()


async def operator_metrics(tmp_path: Path) -> str:
    """The operator process after it has seen a provider with a budget and this month's spend."""
    emulator = Emulator()
    emulator.resources.load_bundled()
    for plural, kind in (("llmproviders", "LLMProvider"), ("routingpolicies", "RoutingPolicy")):
        emulator.resources[f"switchyard.dev/v1alpha1/{plural}"] = ResourceInfo(
            kind=kind, singular=kind.lower(), namespaced=True, verbs=VERBS, subresources={"status"},
        )
    port = free_port()
    async with emulator, Server(emulator), operator_process(
        emulator, tmp_path, "--standalone", "-n", NS, "--metrics-port", str(port)
    ):
        kube = Kube.from_connection(kopf.ConnectionInfo(server=str(emulator.url)))
        try:
            await kube.create(core_path("secrets", NS), secret(OPENAI_API_KEY="sk-test-monitoring"))
            await kube.create(custom_path("llmproviders", NS), provider(budget={"monthlyUSD": "50"}))
            await kube.patch(custom_path("llmproviders", NS, "openai", status=True),
                             {"status": {"spend": {"costUSD": "12.5", "requests": 3}}})
        finally:
            await kube.close()
        async with aiohttp.ClientSession() as http:

            async def both() -> str | None:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    text = await resp.text()
                return text if "switchyard_provider_spend_usd{" in text and "budget_usd{" in text else None

            text: str = await eventually(both, timeout=20)
            return text


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    router = asyncio.run(router_metrics(tmp_path_factory.mktemp("router")))
    operator = asyncio.run(operator_metrics(tmp_path_factory.mktemp("operator")))
    for secret_value in (*KEYS.values(), "sk-test-monitoring"):
        assert secret_value not in router + operator
    return {**scraped(router), **scraped(operator)}


def selector(node: Any) -> Iterator[Any]:
    """Every vector selector in an expression, at any depth."""
    if isinstance(node, promql_parser.MatrixSelector):
        node = node.vector_selector
    if isinstance(node, promql_parser.VectorSelector):
        yield node
        return
    for child in (getattr(node, name, None) for name in ("lhs", "rhs", "expr", "param")):
        if child is not None:
            yield from selector(child)
    for arg in getattr(node, "args", None) or ():
        yield from selector(arg)


def selected_series(expr: str) -> set[str]:
    return {s.name for s in selector(promql_parser.parse(expr))}


def relabelled(docs: list[dict[str, Any]]) -> set[str]:
    """Labels the chart's PodMonitor and ServiceMonitor add to what they scrape."""
    out = set()
    for kind, key in (("PodMonitor", "podMetricsEndpoints"), ("ServiceMonitor", "endpoints")):
        for endpoint in find(docs, kind)["spec"][key]:
            out |= {r["targetLabel"] for r in endpoint.get("relabelings", []) if "targetLabel" in r}
    return out


def test_unit_test_series_are_the_ones_router_and_operator_export(
    exported: Exported, docs: list[dict[str, Any]]
) -> None:
    added = TARGET_LABELS | relabelled(docs)
    assert "policy" in added  # the PodMonitor's, which the table alerts group by
    fed = [s["series"] for t in yaml.safe_load(UNIT_TESTS.read_text())["tests"] for s in t["input_series"]]
    assert fed
    for series in fed:
        node = promql_parser.parse(series)
        assert isinstance(node, promql_parser.VectorSelector), series
        assert node.name in exported, f"{series}: nobody exports {node.name}"
        labels = {m.name for m in node.matchers.matchers}
        unknown = labels - exported[node.name] - added
        assert not unknown, f"{series}: {node.name} has no label {sorted(unknown)} (it has {sorted(exported[node.name])})"


def test_rules_and_dashboard_queries_parse_and_select_exported_series(
    exported: Exported, docs: list[dict[str, Any]], rules: dict[str, Any]
) -> None:
    """Every series an alert or a panel selects is one the running router or operator exposes:
    a renamed metric breaks this test, not an alert that silently never fires."""
    queries = {f"alert {r['alert']}": r["expr"] for g in rules["groups"] for r in g["rules"]}
    dashboard = json.loads(find(docs, "ConfigMap", "full-switchyard-dashboard")["data"]["switchyard.json"])
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries[f"panel {panel['title']!r} {target['refId']}"] = expr
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":  # label_values(series, label): the series must exist
            series = variable["query"]["query"].removeprefix("label_values(").split(",")[0]
            queries[f"variable {variable['name']}"] = series
    selected: set[str] = set()
    for where, expr in queries.items():
        try:
            names = selected_series(expr)
        except ValueError as exc:
            pytest.fail(f"{where}: {exc}: {expr}")
        assert names, f"{where} selects no series: {expr}"
        assert names <= exported.keys(), f"{where} selects series nobody exports: {sorted(names - exported.keys())}"
        selected |= names
    # The alerts' and panels' staples, so that a walk that found nothing cannot pass.
    assert {"switchyard_circuit_state", "switchyard_provider_budget_usd", "switchyard_fallbacks_total",
            "gen_ai_client_operation_duration_seconds_bucket", "switchyard_table_info"} <= selected


def test_an_unknown_series_or_bad_syntax_is_caught(exported: Exported) -> None:
    assert selected_series(
        "sum by (p) (rate(a_total[5m])) / (histogram_quantile(0.5, rate(b_bucket[5m])) > 0) + -c"
    ) == {"a_total", "b_bucket", "c"}
    assert "switchyard_requests_total" in exported
    assert "switchyard_request_total" not in exported  # what a typo would select
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse("sum by (x (rate(y[5m]))")
