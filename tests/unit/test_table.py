from decimal import Decimal

import pytest
from switchyard_router.errors import ErrorKind
from switchyard_router.table import (
    DEFAULT_FALLBACK_ON,
    RoutingTable,
    Strategy,
    TableError,
    format_duration,
    load_table,
    parse_duration,
)

MINIMAL = {
    "providers": [{"name": "oa", "type": "openai"}, {"name": "claude", "type": "anthropic"}],
    "routes": [{"name": "chat", "targets": [{"provider": "oa", "model": "gpt-4o-mini"}]}],
}


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("250ms", 0.25), ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), (5, 5.0), (1.5, 1.5), ("7", 7.0)],
)
def test_durations_parse(raw, seconds):
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["fast", "-1s", True, "10 days"])
def test_bad_durations_are_refused(raw):
    with pytest.raises(ValueError):
        parse_duration(raw)


def test_negative_number_duration_is_refused():
    with pytest.raises(ValueError, match="negative"):
        parse_duration(-2)


def test_durations_format_back():
    assert format_duration(0.25) == "250ms"
    assert format_duration(30.0) == "30s"
    assert format_duration(0) == "0s"


def test_defaults_fill_in():
    table = load_table(MINIMAL)
    assert table.providers[0].base_url == "https://api.openai.com/v1"
    assert table.providers[1].base_url == "https://api.anthropic.com"
    route = table.routes[0]
    assert route.strategy is Strategy.PRIORITY
    assert route.retry.attempts == 2
    assert route.fallback_on == DEFAULT_FALLBACK_ON
    assert ErrorKind.BAD_REQUEST not in route.fallback_on


def test_camel_case_and_money_round_trip():
    data = {
        "providers": [
            {
                "name": "oa",
                "type": "openai-compatible",
                "baseURL": "http://vllm:8000/v1/",
                "models": [
                    {
                        "name": "m",
                        "contextWindow": 8192,
                        "pricing": {"inputPerMillionTokens": "0.35", "outputPerMillionTokens": "0.40"},
                    }
                ],
            }
        ],
        "routes": [
            {"name": "chat", "targets": [{"provider": "oa", "model": "m"}], "firstTokenTimeout": "2s"}
        ],
    }
    table = load_table(data)
    provider = table.providers[0]
    assert provider.base_url == "http://vllm:8000/v1"
    assert provider.models[0].pricing is not None
    assert provider.models[0].pricing.input_per_million_tokens == Decimal("0.35")
    dumped = table.model_dump(mode="json", by_alias=True)
    assert dumped["providers"][0]["models"][0]["pricing"]["inputPerMillionTokens"] == "0.35"
    assert dumped["routes"][0]["firstTokenTimeout"] == "2s"
    again = load_table(dumped)
    assert again.digest() == table.digest()


def test_openai_compatible_needs_a_base_url():
    with pytest.raises(TableError, match=r"providers\[0\].*baseURL is required"):
        load_table({"providers": [{"name": "local", "type": "openai-compatible"}]})


def test_prompt_cache_is_for_anthropic_only():
    table = load_table({"providers": [{"name": "claude", "type": "anthropic", "promptCache": "1h"}]})
    assert table.providers[0].prompt_cache == "1h"
    with pytest.raises(TableError, match=r"providers\[0\].*promptCache applies to type anthropic only"):
        load_table({"providers": [{"name": "oa", "type": "openai", "promptCache": "5m"}]})
    with pytest.raises(TableError, match=r"providers\[0\]\.promptCache"):
        load_table({"providers": [{"name": "claude", "type": "anthropic", "promptCache": "10m"}]})


def test_errors_name_the_field_path():
    bad = {
        "providers": [{"name": "oa", "type": "openia"}],
        "routes": [{"name": "chat", "targets": [{"provider": "oa", "model": "x"}], "retry": {"attempts": 0}}],
    }
    with pytest.raises(TableError) as caught:
        load_table(bad)
    text = str(caught.value)
    assert "providers[0].type" in text
    assert "routes[0].retry.attempts" in text


def test_unknown_fields_are_refused():
    with pytest.raises(TableError, match=r"routes\[0\].stratgy"):
        load_table({**MINIMAL, "routes": [{**MINIMAL["routes"][0], "stratgy": "Priority"}]})


def test_references_and_uniqueness_are_checked():
    bad = {
        "providers": [{"name": "oa", "type": "openai"}, {"name": "oa", "type": "groq"}],
        "routes": [
            {"name": "chat", "targets": [{"provider": "nope", "model": "x"}]},
            {"name": "chat", "targets": [{"provider": "oa", "model": "x"}]},
        ],
    }
    with pytest.raises(TableError) as caught:
        load_table(bad)
    text = str(caught.value)
    assert "providers[1].name: 'oa' is used twice" in text
    assert "routes[1].name: 'chat' is used twice" in text
    assert "routes[0].targets[0].provider: unknown provider 'nope'" in text


def test_digest_is_stable_and_content_sensitive():
    a = load_table(MINIMAL)
    b = RoutingTable.model_validate(MINIMAL)
    assert a.digest() == b.digest()
    changed = load_table({**MINIMAL, "routes": [{**MINIMAL["routes"][0], "strategy": "RoundRobin"}]})
    assert changed.digest() != a.digest()


def test_lookup_helpers():
    table = load_table(MINIMAL)
    assert table.provider("oa") is table.providers[0]
    assert table.provider("missing") is None
    assert table.providers[0].model("nope") is None
