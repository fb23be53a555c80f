"""Switchyard's provider simulator: OpenAI, Anthropic and Gemini wire formats on one port,
with deterministic answers and fault injection, for demos, integration tests and benchmarks."""

from .faults import Faults
from .server import Simulator

__all__ = ["Faults", "Simulator"]
