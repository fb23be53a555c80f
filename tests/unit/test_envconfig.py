import pytest
from switchyard_router.envconfig import EnvConfigError, credential_values, table_from_env
from switchyard_router.table import Strategy

BASE = {"PRIMARY_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test-openai-000000"}


def test_primary_secondary_fallback_chain():
    env = {
        **BASE,
        "SECONDARY_PROVIDER": "anthropic",
        "FALLBACK_PROVIDER": "gemini",
        "ANTHROPIC_API_KEY": "ak-1",
        "GEMINI_API_KEY": "gk-1",
        "GEMINI_MODEL": "gemini-2.5-flash",
        "PROVIDER_TIMEOUT": "12.5",
        "PROVIDER_RETRY_ATTEMPTS": "3",
        "PROVIDER_LOAD_BALANCE": "round_robin",
    }
    table = table_from_env(env)
    route = table.routes[0]
    assert route.name == "default"
    assert [t.provider for t in route.targets] == ["openai", "anthropic", "gemini"]
    assert route.targets[2].model == "gemini-2.5-flash"
    assert route.targets[0].model == "gpt-4o-mini"
    assert route.strategy is Strategy.ROUND_ROBIN
    assert route.retry.attempts == 3
    assert route.timeout == 12.5
    assert table.provider("gemini").timeout == 12.5


def test_keys_never_enter_the_table_and_several_keys_split():
    env = {**BASE, "OPENAI_API_KEYS": "sk-a-11111111, sk-b-22222222", "GROQ_API_KEY": "gsk-x"}
    table = table_from_env(env)
    dumped = table.model_dump_json()
    assert "sk-a-11111111" not in dumped and "sk-test-openai" not in dumped
    openai = table.provider("openai")
    assert [c.key for c in openai.credentials] == ["OPENAI_API_KEYS#0", "OPENAI_API_KEYS#1"]
    values = credential_values(env)
    assert values["OPENAI_API_KEYS#1"] == "sk-b-22222222"
    # A provider with a key but outside the chain can still be pinned.
    assert table.provider("groq") is not None


def test_base_url_override_and_disabled_system():
    env = {
        **BASE,
        "SECONDARY_PROVIDER": "groq",
        "GROQ_API_KEY": "gsk-1",
        "OPENAI_BASE_URL": "http://127.0.0.1:9100/primary/v1",
        "ENABLE_PROVIDER_SYSTEM": "false",
    }
    table = table_from_env(env)
    assert table.provider("openai").base_url == "http://127.0.0.1:9100/primary/v1"
    assert [t.provider for t in table.routes[0].targets] == ["openai"]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PRIMARY_PROVIDER": "openia"}, "PRIMARY_PROVIDER='openia' is invalid: expected one of openai"),
        ({**BASE, "PROVIDER_TIMEOUT": "soon"}, "PROVIDER_TIMEOUT='soon' is invalid: expected a number"),
        ({**BASE, "PROVIDER_TIMEOUT": "0"}, "PROVIDER_TIMEOUT='0' is invalid: expected a value greater"),
        (
            {**BASE, "PROVIDER_RETRY_ATTEMPTS": "2.5"},
            "PROVIDER_RETRY_ATTEMPTS='2.5' is invalid: expected a whole",
        ),
        ({**BASE, "PROVIDER_LOAD_BALANCE": "random"}, "PROVIDER_LOAD_BALANCE='random' is invalid"),
        ({**BASE, "ENABLE_PROVIDER_SYSTEM": "maybe"}, "ENABLE_PROVIDER_SYSTEM='maybe' is invalid"),
        ({**BASE, "OPENAI_BASE_URL": "api.openai.com"}, "OPENAI_BASE_URL='api.openai.com' is invalid"),
        ({}, "PRIMARY_PROVIDER is not set"),
        ({"PRIMARY_PROVIDER": "anthropic"}, "ANTHROPIC_API_KEY is not set"),
    ],
)
def test_invalid_values_name_variable_value_and_choices(env, needle):
    with pytest.raises(EnvConfigError) as caught:
        table_from_env(env)
    assert needle in str(caught.value)


def test_every_load_balance_value_maps_to_a_strategy():
    for value, strategy in [
        ("priority", "Priority"),
        ("weighted", "Weighted"),
        ("least_latency", "LeastLatency"),
        ("least_busy", "LeastBusy"),
        ("lowest_cost", "LowestCost"),
    ]:
        table = table_from_env({**BASE, "PROVIDER_LOAD_BALANCE": value})
        assert table.routes[0].strategy.value == strategy
