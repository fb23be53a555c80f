from decimal import Decimal

from switchyard_router.adapters import Usage
from switchyard_router.credentials import CredentialStore
from switchyard_router.metrics import Metrics
from switchyard_router.runtime import CompiledTable
from switchyard_router.table import load_table


def test_cached_tokens_are_counted_and_no_usage_counts_nothing():
    metrics = Metrics()
    series = metrics.series("chat", "oa", "m", "chat")
    series.success(0.1, Usage(10, 5, cached_input_tokens=4, reported=True), Decimal("0.25"))
    series.success(0.1, Usage(), None)
    text = metrics.render().decode()
    assert 'switchyard_tokens_total{model="m",provider="oa",route="chat",type="cached_input"} 4.0' in text
    assert 'switchyard_tokens_total{model="m",provider="oa",route="chat",type="input"} 10.0' in text
    assert (
        'gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_provider_name="oa",gen_ai_request_model="m",gen_ai_response_model="m",gen_ai_token_type="input"} 1.0'
        in text
    )
    assert metrics.series("chat", "oa", "m", "chat") is series
    assert 'switchyard_cost_usd_total{model="m",provider="oa",route="chat"} 0.25' in text
    assert 'switchyard_unpriced_requests_total{model="m",provider="oa"} 1.0' in text


def test_state_is_read_at_scrape_time_once_per_key():
    table = load_table(
        {
            "providers": [{"name": "oa", "type": "openai", "credentials": [{"name": "main", "key": "K"}]}],
            "routes": [
                {"name": "a", "targets": [{"provider": "oa", "model": "m1"}]},
                {"name": "b", "targets": [{"provider": "oa", "model": "m2"}]},
            ],
        }
    )
    compiled = CompiledTable(table, CredentialStore({"K": "sk-secret-value-123"}))
    metrics = Metrics()
    metrics.watch(compiled.targets)
    compiled.routes["a"].targets[0].breaker.trip(10**12)
    text = metrics.render().decode()
    assert 'switchyard_circuit_state{model="other",provider="oa"} 1.0' in text
    assert text.count("switchyard_key_state{") == 1
    assert 'state="ok"' in text
    assert "sk-secret-value-123" not in text


def test_histogram_buckets_are_cumulative_with_prometheus_le_semantics():
    metrics = Metrics()
    series = metrics.series("chat", "oa", "m", "chat")
    for seconds in (0.01, 0.011, 100.0):  # on a bound, just above it, above the last one
        series.first_chunk.observe(seconds)
    text = metrics.render().decode()
    labels = 'gen_ai_operation_name="chat",gen_ai_provider_name="oa",gen_ai_request_model="m",gen_ai_response_model="m"'
    name = "gen_ai_client_operation_time_to_first_chunk_seconds"
    assert f'{name}_bucket{{{labels},le="0.01"}} 1.0' in text
    assert f'{name}_bucket{{{labels},le="0.02"}} 2.0' in text
    assert f'{name}_bucket{{{labels},le="81.92"}} 2.0' in text
    assert f'{name}_bucket{{{labels},le="+Inf"}} 3.0' in text
    assert f"{name}_count{{{labels}}} 3.0" in text
    assert f"{name}_sum{{{labels}}} 100.021" in text
