"""A client's reasoning effort in each family's terms, as the model entry declares them."""

from __future__ import annotations

import orjson
import pytest
from switchyard_router.adapters import adapter_for
from switchyard_router.adapters.reasoning import dropped
from switchyard_router.errors import ErrorKind, UpstreamError
from switchyard_router.table import Provider


def provider(type_: str, style: str | None, **budgets: int) -> Provider:
    model: dict = {"name": "m"}
    if style is not None:
        model["reasoning"] = {"style": style, "budgets": budgets}
    return Provider.model_validate(
        {"name": "p", "type": type_, "baseURL": "https://example.com", "models": [model]}
    )


def sent(type_: str, style: str | None, effort: str | None, max_tokens: int = 100, **budgets: int) -> dict:
    p = provider(type_, style, **budgets)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens}
    if effort is not None:
        body["reasoning_effort"] = effort
    return orjson.loads(adapter_for(p.type).chat_request(p, "k", "m", body, False).body)


@pytest.mark.parametrize(
    ("style", "effort", "thinking", "config"),
    [
        ("AnthropicBudget", "low", {"type": "enabled", "budget_tokens": 2048}, None),
        ("AnthropicBudget", "none", None, None),
        ("AnthropicAdaptive", "minimal", {"type": "adaptive"}, {"effort": "low"}),
        ("AnthropicAdaptive", "high", {"type": "adaptive"}, {"effort": "high"}),
        ("GeminiLevel", "high", None, None),  # another family's style: nothing for Anthropic
        (None, "high", None, None),  # undeclared: dropped
        ("AnthropicBudget", None, None, None),  # nothing asked
    ],
)
def test_anthropic(style, effort, thinking, config) -> None:
    body = sent("anthropic", style, effort)
    assert body.get("thinking") == thinking
    assert body.get("output_config") == config
    assert "reasoning_effort" not in body


def test_an_anthropic_budget_leaves_room_for_the_answer() -> None:
    body = sent("anthropic", "AnthropicBudget", "medium", max_tokens=100, medium=4000)
    assert body["thinking"]["budget_tokens"] == 4000 and body["max_tokens"] == 4100
    assert sent("anthropic", "AnthropicBudget", "minimal", max_tokens=5000)["max_tokens"] == 5000


@pytest.mark.parametrize(
    ("style", "effort", "thinking"),
    [
        ("GeminiBudget", "high", {"thinkingBudget": 24576}),
        ("GeminiBudget", "none", {"thinkingBudget": 0}),
        ("GeminiLevel", "minimal", {"thinkingLevel": "low"}),
        ("GeminiLevel", "medium", {"thinkingLevel": "high"}),
        ("GeminiLevel", "none", None),
        (None, "high", None),
    ],
)
def test_gemini(style, effort, thinking) -> None:
    body = sent("gemini", style, effort)
    assert body["generationConfig"].get("thinkingConfig") == thinking


def test_gemini_without_any_config_gets_none() -> None:
    p = provider("gemini", "GeminiLevel")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "none"}
    assert "generationConfig" not in orjson.loads(adapter_for(p.type).chat_request(p, "k", "m", body, False).body)


def test_openai_style_targets_take_the_field_as_it_came() -> None:
    assert sent("openai", None, "high")["reasoning_effort"] == "high"


def test_an_unknown_effort_is_a_400_naming_it() -> None:
    with pytest.raises(UpstreamError) as caught:
        sent("anthropic", "AnthropicBudget", "extreme")
    assert caught.value.kind is ErrorKind.BAD_REQUEST and "reasoning_effort" in caught.value.message


def test_dropped_tells_where_the_effort_goes_nowhere() -> None:
    asked = {"reasoning_effort": "low"}
    assert dropped(provider("gemini", None), "m", asked)
    assert dropped(provider("anthropic", None), "other-model", asked)
    assert not dropped(provider("gemini", "GeminiLevel"), "m", asked)
    assert not dropped(provider("openai", None), "m", asked)
    assert not dropped(provider("gemini", None), "m", {})
