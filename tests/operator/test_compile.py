"""compile_policy: a plain function, no cluster."""

from __future__ import annotations

from functools import partial

import yaml
from switchyard_operator import compile as strict
from switchyard_operator.compile import Reason, describe_chains, summarize
from switchyard_operator.endpoints import EndpointPolicy
from switchyard_operator.grants import GrantedSecret, granted_secret
from switchyard_operator.outputs import (
    HASH_ANNOTATION,
    TABLE_KEY,
    config_map,
    credentials_secret,
)
from switchyard_operator.secrets import decode_secret, encode_data, redact
from switchyard_router.table import CircuitBreakerPolicy, Credential, load_table

from .manifests import LOOPBACK, policy, provider, secret

# The test providers listen on loopback, allow-listed as a platform team would.
compile_policy = partial(strict.compile_policy, endpoints=LOOPBACK)
resolve_provider = partial(strict.resolve_provider, endpoints=LOOPBACK)

KEYS = {"keys": GrantedSecret(
    {"OPENAI_API_KEY": "sk-live-123", "ANTHROPIC_API_KEY": "sk-ant-456"}, frozenset({"openai", "claude", "vllm"})
)}


def test_compiles_a_fallback_chain_without_secret_values():
    providers = {
        "openai": provider("openai"),
        "claude": provider("claude", type_="anthropic", key="ANTHROPIC_API_KEY", promptCache="1h"),
        "unused": provider("unused", secret="absent"),
    }
    body = policy(targets=[("openai", "m1"), ("claude", "m1")], fallbackOn=["Timeout", "RateLimited"])
    result = compile_policy(body, providers, KEYS)
    assert result.ok, result.problems
    assert result.providers == ["openai", "claude"]
    assert result.secrets == ["keys"]
    assert result.credentials == {"openai.primary": "sk-live-123", "claude.primary": "sk-ant-456"}
    text = result.table_yaml()
    assert "sk-live" not in text and "sk-ant" not in text
    table = load_table(yaml.safe_load(text))  # what the router reads
    assert table.digest() == result.digest()
    assert [p.name for p in table.providers] == ["openai", "claude"]
    assert [p.prompt_cache for p in table.providers] == [None, "1h"]
    assert table.providers[0].credentials[0].key == "openai.primary"
    assert sorted(table.routes[0].fallback_on) == ["RateLimited", "Timeout"]
    assert describe_chains(table) == ["chat (Priority): openai/m1 -> claude/m1"]


def test_every_table_setting_is_reachable():
    prov = provider(
        "vllm", type_="openai-compatible", baseURL="http://vllm:8000/v1/", timeout="12s",
        headers={"X-Team": "a"}, defaultMaxTokens=77, limits={"requestsPerMinute": 5, "tokensPerMinute": 9}, allowAnyModel=True,
        models=[{"name": "m1", "contextWindow": 1000, "pricing": {
            "inputPerMillionTokens": "0.1", "outputPerMillionTokens": "0.2", "cachedInputPerMillionTokens": "0.05",
            "cacheWritePerMillionTokens": "0.125"}, "reasoning": {"style": "GeminiBudget", "budgets": {"low": 512}}}],
    )
    body = policy(targets=[("vllm", "m1")], strategy="Weighted", retry={"attempts": 4, "backoff": {"base": "50ms", "max": "2s"}},
                  timeout="9s", firstTokenTimeout="3s", deadline="60s", maxAttempts=6)
    body["spec"]["routes"][0]["targets"][0]["weight"] = 5
    prov["spec"]["credentials"][0]["limits"] = {"requestsPerMinute": 3}
    body["spec"]["circuitBreaker"] = {"consecutiveFailures": 7, "cooldown": "1m", "failureRatePercent": 40,
                                      "window": "20s", "minimumRequests": 9, "failOpen": False}
    body["spec"]["server"] = {"maxBodyBytes": 1234, "maxResponseBytes": 2048, "maxEventBytes": 4096, "maxStreamBytes": 8192,
                              "headerTimeout": "2s", "bodyTimeout": "3s", "idleTimeout": "4s", "maxConnections": 5}
    result = strict.compile_policy(body, {"vllm": prov}, KEYS, endpoints=EndpointPolicy.parse(["http://vllm:8000"]))
    assert result.ok, result.problems
    table = result.table
    p = table.providers[0]
    assert (p.base_url, p.timeout, p.headers, p.default_max_tokens) == ("http://vllm:8000/v1", 12.0, {"X-Team": "a"}, 77)
    assert (p.limits.requests_per_minute, p.limits.tokens_per_minute, p.allow_any_model) == (5, 9, True)
    assert p.models[0].context_window == 1000 and str(p.models[0].pricing.cached_input_per_million_tokens) == "0.05"
    assert str(p.models[0].pricing.cache_write_per_million_tokens) == "0.125"
    reasoning = p.models[0].reasoning
    assert (reasoning.style, reasoning.budgets.low, reasoning.budgets.high) == ("GeminiBudget", 512, 24576)
    r = table.routes[0]
    assert (r.strategy, r.targets[0].weight, r.retry.attempts, r.retry.backoff.base, r.retry.backoff.max) == (
        "Weighted", 5, 4, 0.05, 2.0)
    assert (r.timeout, r.first_token_timeout, r.deadline, r.max_attempts) == (9.0, 3.0, 60.0, 6)
    breaker = table.circuit_breaker
    assert (breaker.consecutive_failures, breaker.cooldown) == (7, 60.0)
    if "failure_rate_percent" in CircuitBreakerPolicy.model_fields:  # the router's newer breaker
        assert (breaker.failure_rate_percent, breaker.window, breaker.minimum_requests, breaker.fail_open) == (
            40, 20.0, 9, False)
    if "limits" in Credential.model_fields:
        assert p.credentials[0].limits.requests_per_minute == 3
    server = table.server
    assert (server.max_body_bytes, server.max_response_bytes, server.max_event_bytes, server.max_stream_bytes) == (
        1234, 2048, 4096, 8192)
    assert (server.header_timeout, server.body_timeout, server.idle_timeout, server.max_connections) == (2.0, 3.0, 4.0, 5)
    assert describe_chains(table) == ["chat (Weighted): vllm/m1 (weight 5)"]


def test_unknown_provider_names_the_field_and_the_known_ones():
    result = compile_policy(policy(targets=[("openai", "m1"), ("gone", "x")]), {"openai": provider()}, KEYS)
    assert not result.ok and result.reason == Reason.UNKNOWN_PROVIDER
    (problem,) = result.problems
    assert problem.field == "spec.routes[0].targets[1].provider"
    assert "'gone' not found in namespace 'team' (known: openai)" in problem.message
    assert str(problem).startswith("RoutingPolicy team/chat: spec.routes[0]")


def test_a_secret_is_used_only_when_it_opts_in_for_the_provider():
    result = compile_policy(policy(), {"openai": provider()}, {})
    assert result.reason == Reason.SECRET_NOT_GRANTED and result.credentials == {}
    message = result.problems[0].message
    assert "Secret 'keys' in namespace 'team' does not exist or has not opted in" in message
    assert ("kubectl -n team label secret keys switchyard.dev/credentials=true --overwrite && "
            "kubectl -n team annotate secret keys switchyard.dev/allowed-providers=openai --overwrite") in message
    assert "kubectl -n team create secret generic keys" in message

    # Opted in, for other providers only: the annotation is extended, never replaced.
    other = {"keys": GrantedSecret({"OPENAI_API_KEY": "sk-live-123"}, frozenset({"billing", "crm"}))}
    result = compile_policy(policy(), {"openai": provider()}, other)
    assert result.reason == Reason.SECRET_NOT_GRANTED and result.credentials == {}
    assert "opted in for LLMProviders billing, crm, not 'openai'" in result.problems[0].message
    assert "switchyard.dev/allowed-providers=billing,crm,openai" in result.problems[0].message

    # The label alone, or the annotation alone, is no grant.
    labelled = secret(OPENAI_API_KEY="sk-1")
    del labelled["metadata"]["annotations"]
    assert granted_secret(labelled).providers == frozenset()
    annotated = secret(OPENAI_API_KEY="sk-1")
    del annotated["metadata"]["labels"]
    assert granted_secret(annotated) is None
    assert granted_secret(secret(OPENAI_API_KEY="sk-1", grant=" openai , claude,")).providers == {"openai", "claude"}


def test_missing_key_says_how_to_fix_without_naming_the_secrets_other_keys():
    grant = frozenset({"openai"})
    result = compile_policy(policy(), {"openai": provider()}, {"keys": GrantedSecret({"DB_PASSWORD": "v"}, grant)})
    assert result.reason == Reason.KEY_MISSING
    assert "key 'OPENAI_API_KEY' of Secret 'keys' is missing or empty" in result.problems[0].message
    assert "DB_PASSWORD" not in result.problems[0].message
    result = compile_policy(policy(), {"openai": provider()}, {"keys": GrantedSecret({"OPENAI_API_KEY": ""}, grant)})
    assert result.reason == Reason.KEY_MISSING
    assert result.credentials == {}


def test_invalid_specs_are_reported_with_paths():
    result = compile_policy(policy(strategy="Nope"), {}, {})
    assert result.reason == Reason.INVALID_SPEC
    assert result.problems[0].field == "spec.routes[0].strategy"
    result = compile_policy({"metadata": {"name": "x"}}, {}, {})
    assert result.problems[0].message == "spec is missing"
    bad = provider(timeout="forever")
    result = compile_policy(policy(), {"openai": bad}, KEYS)
    assert result.reason == Reason.INVALID_SPEC and result.problems[0].resource == "LLMProvider team/openai"


def test_unhealthy_provider_is_marked_and_unlisted_model_warns():
    sick = provider()
    sick["status"] = {"health": {"state": "Unhealthy"}}
    result = compile_policy(policy(targets=[("openai", "other")]), {"openai": sick}, KEYS)
    assert result.ok
    assert result.table.providers[0].healthy is False
    assert result.chains()[0].targets == ["openai/other (unhealthy)"]
    assert "not listed" in result.warnings[0]


def test_table_level_errors_become_problems():
    # a default base URL is required for openai-compatible: the table refuses an empty one
    result = resolve_provider(provider(type_="openai-compatible", baseURL=None), KEYS)
    assert result.problems and result.provider is None


def test_outputs_own_by_the_policy_and_carry_the_hash():
    body = policy()
    body["metadata"]["uid"] = "uid-1"
    result = compile_policy(body, {"openai": provider()}, KEYS)
    cm = config_map(body, result)
    assert cm["metadata"]["name"] == "chat-routes"
    assert cm["metadata"]["annotations"][HASH_ANNOTATION] == result.digest()
    assert cm["metadata"]["ownerReferences"][0] == {
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "RoutingPolicy", "name": "chat",
        "uid": "uid-1", "controller": True, "blockOwnerDeletion": True}
    assert TABLE_KEY in cm["data"]
    sec = credentials_secret(body, result)
    assert sec["metadata"]["name"] == "chat-credentials"
    assert decode_secret(sec) == {"openai.primary": "sk-live-123"}


def test_secret_helpers():
    body = secret(A="x")
    body["stringData"] = {"B": " y "}
    body["data"]["C"] = "not base64!"
    assert decode_secret(body) == {"A": "x", "B": "y", "C": ""}
    assert encode_data({"k": "v"}) == {"k": "dg=="}
    assert redact("url?key=sk-secret-1", {"a": "sk-secret-1", "b": "ab"}) == "url?key=***"


def test_summarize_limits_the_message():
    result = compile_policy(policy(targets=[(f"p{i}", "m") for i in range(7)]), {}, {})
    text = summarize(result.problems)
    assert text.count("not found") == 5 and text.endswith("... and 2 more")
