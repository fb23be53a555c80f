"""A client's `reasoning_effort` in each family's own terms, as the model entry declares them.

Nothing is guessed from a model's name: a model entry says how it takes reasoning control
(table.ReasoningStyle). To an OpenAI-style target the field is its own and passes as it came
(the provider judges it). To an Anthropic or Gemini target whose entry declares no style it is
dropped, and the response says so (x-switchyard-reasoning: dropped).
"""

from __future__ import annotations

from typing import Any

from ..errors import ErrorKind, UpstreamError
from ..table import Provider, ProviderType, Reasoning, ReasoningStyle

JSON = dict[str, Any]

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
# Gemini's thinkingLevel has two steps; Anthropic's effort three.
_GEMINI_LEVEL = {"minimal": "low", "low": "low", "medium": "high", "high": "high", "xhigh": "high"}
_ANTHROPIC_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
_NATIVE = frozenset({ProviderType.ANTHROPIC, ProviderType.GEMINI})


def effort(body: JSON) -> str | None:
    """The effort a chat request asks for; BadRequest for a value no family knows."""
    value = body.get("reasoning_effort")
    if value is None:
        return None
    if value not in EFFORTS:
        raise UpstreamError(ErrorKind.BAD_REQUEST, f"reasoning_effort must be one of {', '.join(EFFORTS)}")
    return str(value)


def declared(provider: Provider, model: str) -> Reasoning | None:
    spec = provider.model(model)
    return spec.reasoning if spec is not None else None


def dropped(provider: Provider, model: str, body: JSON) -> bool:
    """Whether this target leaves out the reasoning_effort the client sent."""
    return (
        body.get("reasoning_effort") is not None
        and provider.type in _NATIVE
        and declared(provider, model) is None
    )


def anthropic_thinking(provider: Provider, model: str, body: JSON, out: JSON) -> None:
    """thinking (and output_config.effort) on an Anthropic request body being built."""
    asked = effort(body)
    reasoning = declared(provider, model)
    if asked is None or reasoning is None or asked == "none":
        return
    if reasoning.style is ReasoningStyle.ANTHROPIC_ADAPTIVE:
        out["thinking"] = {"type": "adaptive"}
        out.setdefault("output_config", {})["effort"] = _ANTHROPIC_EFFORT[asked]
    elif reasoning.style is ReasoningStyle.ANTHROPIC_BUDGET:
        budget = getattr(reasoning.budgets, asked)
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if out["max_tokens"] <= budget:  # Anthropic wants room for the answer after thinking
            out["max_tokens"] = budget + out["max_tokens"]


def gemini_thinking(provider: Provider, model: str, body: JSON, config: JSON) -> None:
    """thinkingConfig on a Gemini generationConfig being built."""
    asked = effort(body)
    reasoning = declared(provider, model)
    if asked is None or reasoning is None:
        return
    if reasoning.style is ReasoningStyle.GEMINI_BUDGET:
        budget = 0 if asked == "none" else getattr(reasoning.budgets, asked)
        config["thinkingConfig"] = {"thinkingBudget": budget}
    elif reasoning.style is ReasoningStyle.GEMINI_LEVEL and asked != "none":
        config["thinkingConfig"] = {"thinkingLevel": _GEMINI_LEVEL[asked]}
