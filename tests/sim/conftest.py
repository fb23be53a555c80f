"""The simulator on loopback, one per test (it starts in a few milliseconds)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from switchyard_sim import Simulator

KEY = "sk-test-0000abcd"  # fingerprint "abcd"
ANTHROPIC_KEY = "sk-ant-test-0000wxyz"
GEMINI_KEY = "AIzaSimulatedKey00009876"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=0) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def openai_headers(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def anthropic_headers(key: str = ANTHROPIC_KEY) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01"}


def gemini_headers(key: str = GEMINI_KEY) -> dict[str, str]:
    return {"x-goog-api-key": key}


CHAT = {"model": "gpt-sim", "messages": [{"role": "user", "content": "ping"}]}
