"""`switchyard report` on known data: a fixed router metrics text and fixed LLMProvider objects."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from switchyard_operator import report_cli
from switchyard_operator.report_cli import quantile, render_table, rows_from_metrics, rows_from_providers

# What a router exported after: openai 8 ok + 2 rate-limited attempts (2 fell back to groq),
# durations 0.05 0.1 0.15 0.3 0.3 0.5 0.7 1.0 s; groq 3 ok in 0.015 0.03 0.03 s, one unpriced.
METRICS = """\
# TYPE switchyard_attempts_total counter
switchyard_attempts_total{model="gpt",outcome="ok",provider="openai",route="chat"} 8.0
switchyard_attempts_total{model="gpt",outcome="RateLimited",provider="openai",route="chat"} 2.0
switchyard_attempts_total{model="llama",outcome="ok",provider="groq",route="chat"} 3.0
# TYPE switchyard_attempts_created gauge
# TYPE switchyard_fallbacks_total counter
switchyard_fallbacks_total{from_provider="openai",reason="RateLimited",route="chat",to_provider="groq"} 2.0
# TYPE switchyard_fallbacks_created gauge
# TYPE switchyard_tokens_total counter
switchyard_tokens_total{model="gpt",provider="openai",route="chat",type="input"} 8000.0
switchyard_tokens_total{model="gpt",provider="openai",route="chat",type="output"} 800.0
switchyard_tokens_total{model="gpt",provider="openai",route="chat",type="cached_input"} 100.0
switchyard_tokens_total{model="llama",provider="groq",route="chat",type="input"} 300.0
# TYPE switchyard_tokens_created gauge
# TYPE switchyard_cost_usd_total counter
switchyard_cost_usd_total{model="gpt",provider="openai",route="chat"} 0.0216
switchyard_cost_usd_total{model="llama",provider="groq",route="chat"} 0.0003
# TYPE switchyard_cost_usd_created gauge
# TYPE switchyard_unpriced_requests_total counter
switchyard_unpriced_requests_total{model="llama",provider="groq"} 1.0
# TYPE switchyard_unpriced_requests_created gauge
switchyard_unpriced_requests_created{model="llama",provider="groq"} 1.7956847345304499e+09
# TYPE gen_ai_client_operation_duration_seconds histogram
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.01"} 0.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.02"} 0.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.04"} 0.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.08"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.16"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.32"} 5.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.64"} 6.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="1.28"} 8.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="2.56"} 8.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="5.12"} 8.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="10.24"} 8.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="20.48"} 8.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="40.96"} 8.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="81.92"} 8.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="+Inf"} 8.0
gen_ai_client_operation_duration_seconds_count{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt"} 8.0
gen_ai_client_operation_duration_seconds_sum{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt"} 3.1
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.01"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.02"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.04"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.08"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.16"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.32"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="0.64"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="1.28"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="2.56"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="5.12"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="10.24"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="20.48"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="40.96"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="81.92"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt",le="+Inf"} 1.0
gen_ai_client_operation_duration_seconds_count{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt"} 1.0
gen_ai_client_operation_duration_seconds_sum{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt"} 0.01
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="0.01"} 0.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="0.02"} 1.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="0.04"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="0.08"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="0.16"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="0.32"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="0.64"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="1.28"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="2.56"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="5.12"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="10.24"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="20.48"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="40.96"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="81.92"} 3.0
gen_ai_client_operation_duration_seconds_bucket{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama",le="+Inf"} 3.0
gen_ai_client_operation_duration_seconds_count{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama"} 3.0
gen_ai_client_operation_duration_seconds_sum{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama"} 0.075
# TYPE gen_ai_client_operation_duration_seconds_created gauge
gen_ai_client_operation_duration_seconds_created{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt"} 1.7956847345304732e+09
gen_ai_client_operation_duration_seconds_created{error_type="RateLimited",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt",gen_ai_response_model="gpt"} 1.7956847345305798e+09
gen_ai_client_operation_duration_seconds_created{error_type="",gen_ai_operation_name="chat",gen_ai_provider_name="groq",gen_ai_request_model="llama",gen_ai_response_model="llama"} 1.7956847345306206e+09
"""

PROVIDERS = [
    {"metadata": {"name": "openai"}, "status": {
        "spend": {"period": "2026-11", "costUSD": "12.345678", "requests": 1234, "inputTokens": 100000,
                  "outputTokens": 20000, "unpricedRequests": 0},
        "conditions": [{"type": "WithinBudget", "status": "True", "reason": "BudgetWarning"}]}},
    {"metadata": {"name": "groq"}, "status": {"spend": {"period": "2026-11", "costUSD": "0.5", "requests": 1000}}},
    {"metadata": {"name": "idle"}, "status": {}},
    {"metadata": {"name": "odd"}, "status": {"spend": {"costUSD": "n/a"}}},
]


def test_rows_from_metrics():
    rows = {r.provider: r for r in rows_from_metrics(METRICS)}
    openai, groq = rows["openai"], rows["groq"]
    assert (openai.requests, openai.errors, openai.error_rate) == (10, 2, 0.2)
    assert openai.p50_seconds == pytest.approx(0.24) and openai.p95_seconds == pytest.approx(1.152)
    assert (openai.input_tokens, openai.output_tokens) == (8000, 800)
    assert (openai.cost_usd, openai.cost_per_1k_requests, openai.fallbacks) == ("0.0216", "2.7", 2)
    assert (groq.requests, groq.errors, groq.fallbacks, groq.unpriced_requests) == (3, 0, 0, 1)
    assert groq.p50_seconds == pytest.approx(0.025) and groq.p95_seconds == pytest.approx(0.0385)
    assert (groq.cost_usd, groq.cost_per_1k_requests) == ("0.0003", "0.1")


def test_quantile_edges():
    assert quantile(0.5, []) is None
    assert quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.99, [(1.0, 1.0), (float("inf"), 2.0)]) == 1.0  # in +Inf: the last bound
    assert quantile(0.5, [(1.0, 2.0), (2.0, 2.0), (float("inf"), 2.0)]) == 0.5
    assert quantile(1.0, [(1.0, 2.0), (2.0, 2.0), (float("inf"), 2.0)]) == 1.0


def test_rows_from_providers_and_table():
    rows = rows_from_providers(PROVIDERS)
    assert [r.provider for r in rows] == ["groq", "idle", "odd", "openai"]
    openai = rows[-1]
    assert (openai.requests, openai.cost_usd, openai.cost_per_1k_requests) == (1234, "12.345678", "10.004601")
    assert openai.extra == {"period": "2026-11", "budget": "BudgetWarning"}
    assert rows[1].cost_per_1k_requests is None and rows[2].cost_usd == "0"
    table = render_table(rows).splitlines()
    assert table[0].split() == ["PROVIDER", "REQUESTS", "ERRORS", "P50", "P95", "IN", "TOKENS", "OUT",
                                "TOKENS", "COST", "COST/1K", "REQ", "FALLBACKS"]
    assert table[-1].split() == ["openai", "1234", "-", "-", "-", "100000", "20000", "$12.345678",
                                 "$10.004601", "-"]


def test_the_last_closed_month_is_shown_next_to_this_one():
    """On the 1st, what a platform team asks first: what did we spend last month?"""
    provider = {"metadata": {"name": "openai"}, "status": {"spend": {
        "period": "2026-12", "costUSD": "0.01", "requests": 2,
        "lastMonth": {"period": "2026-11", "costUSD": "41.000000012", "requests": 9000},
    }}}
    rows = rows_from_providers([provider, *PROVIDERS[1:2]])
    assert (rows[1].last_month, rows[1].last_month_cost_usd) == ("2026-11", "41")
    assert rows[0].last_month is None
    table = render_table(rows).splitlines()
    assert table[0].endswith("FALLBACKS  LAST MONTH  LAST MONTH COST")
    assert table[2].split()[-3:] == ["-", "2026-11", "$41"] and table[1].split()[-2:] == ["-", "-"]


@pytest.fixture
def metrics_url():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = METRICS.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()


def test_main_from_a_metrics_endpoint(metrics_url, capsys):
    assert report_cli.main(["--metrics-url", metrics_url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["groq", "3", "0.0%", "25ms", "38ms", "300", "0", "$0.0003", "$0.1", "0"] or \
        out[1].split()[:4] == ["groq", "3", "0.0%", "25ms"]
    assert out[2].split() == ["openai", "10", "20.0%", "240ms", "1152ms", "8000", "800", "$0.0216", "$2.7", "2"]
    assert report_cli.main(["--metrics-url", metrics_url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == metrics_url
    assert [p["provider"] for p in data["providers"]] == ["groq", "openai"]
    assert data["providers"][1]["error_rate"] == 0.2


def test_main_from_the_cluster(monkeypatch, capsys):
    seen = {}

    def fake_list(namespace, kubeconfig):
        seen.update(namespace=namespace, kubeconfig=kubeconfig)
        return PROVIDERS

    monkeypatch.setattr(report_cli, "list_providers", fake_list)
    assert report_cli.main(["-n", "chatbot", "--kubeconfig", "/tmp/kc", "--json"]) == 0
    assert seen == {"namespace": "chatbot", "kubeconfig": "/tmp/kc"}
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == "LLMProvider status in namespace chatbot"
    assert data["providers"][-1]["cost_usd"] == "12.345678"


def test_main_reports_errors_in_one_line(capsys):
    assert report_cli.main(["--metrics-url", "http://127.0.0.1:9/metrics"]) == 1
    assert capsys.readouterr().err.startswith("switchyard report: ")


def test_list_providers_through_kubectl(monkeypatch, tmp_path):
    calls = []

    class Done:
        def __init__(self, code, out="", err=""):
            self.returncode, self.stdout, self.stderr = code, out, err

    def fake_run(command, **kwargs):
        calls.append(command)
        return Done(0, json.dumps({"items": PROVIDERS})) if len(calls) == 1 else Done(1, err="forbidden")

    monkeypatch.setattr(report_cli.subprocess, "run", fake_run)
    assert report_cli.list_providers("chatbot", "/tmp/kc") == PROVIDERS
    assert calls[0] == ["kubectl", "--kubeconfig", "/tmp/kc", "get", "llmproviders.switchyard.dev", "-n",
                        "chatbot", "-o", "json"]
    with pytest.raises(RuntimeError, match="forbidden"):
        report_cli.list_providers("chatbot", None)
