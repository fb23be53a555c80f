"""Switchyard's router: an OpenAI-compatible sidecar in front of many LLM providers."""

__version__ = "0.1.0"
