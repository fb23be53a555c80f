"""One adapter per provider family, chosen by the provider's type."""

from __future__ import annotations

from ..table import ProviderType
from .anthropic import AnthropicAdapter
from .base import ProviderAdapter, StreamState, StreamTranslator, UpstreamRequest, Usage
from .gemini import GeminiAdapter
from .openai import OpenAIAdapter

_ADAPTERS: dict[ProviderType, ProviderAdapter] = {
    ProviderType.ANTHROPIC: AnthropicAdapter(),
    ProviderType.GEMINI: GeminiAdapter(),
}
_OPENAI = OpenAIAdapter()


def adapter_for(provider_type: ProviderType) -> ProviderAdapter:
    return _ADAPTERS.get(provider_type, _OPENAI)


__all__ = [
    "ProviderAdapter",
    "StreamState",
    "StreamTranslator",
    "UpstreamRequest",
    "Usage",
    "adapter_for",
]
