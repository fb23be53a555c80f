"""Abandoned answers reach status.spend: a real router process through the simulator, the
operator pulling its /usage, clients through the official openai SDK."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from openai import AsyncOpenAI
from switchyard_operator.kube import core_path, custom_path
from switchyard_operator.spend import shown_cost

from .conftest import cm_path, eventually, provider_path
from .fleet import Fleet, free_port, router_pod_body
from .manifests import NS, policy, secret
from .test_hot_reload import KEY, sim, sim_provider, start_router
from .test_spend_operator import fast_reports

__all__ = ["fast_reports", "sim"]

MESSAGES = [{"role": "user", "content": "tell me a long story about the sea"}]


@pytest.mark.timeout(90)
async def test_abandoned_answers_reach_status_spend_exact_or_estimated(
    api, kube, operator, sim, unused_tcp_port
):
    await kube.create(core_path("secrets", NS), secret("keys", K=KEY, grant="primary"))
    await kube.create(custom_path("llmproviders", NS), sim_provider(sim, "primary"))
    await kube.create(custom_path("routingpolicies", NS), policy("chat", targets=[("primary", "m1")]))
    await eventually(lambda: kube.get(cm_path("chat")))
    health_port = free_port()
    await Fleet(kube).grant("chatbot", "chat")
    await kube.create(core_path("pods", NS), router_pod_body("chatbot-0", "chat", health_port))
    await kube.patch(
        core_path("pods", NS, "chatbot-0") + "/status", {"status": {"phase": "Running", "podIP": "127.0.0.1"}}
    )
    router = await start_router(str(api.url), unused_tcp_port, health_port)
    url = f"http://127.0.0.1:{unused_tcp_port}/v1"
    patient = AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=10)
    hasty = AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=0.2)
    try:
        sim.set_faults("primary", chunk_delay_ms=40)
        # 1. the client breaks off a stream after its first chunk: estimated
        stream = await patient.chat.completions.create(
            model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        async for _ in stream:
            break
        await stream.close()
        # 2. the client leaves a stream once the provider's usage came, before [DONE]: exact
        stream = await patient.chat.completions.create(
            model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        usage = None
        async for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
                break
        await stream.close()
        assert usage is not None
        # 3. a JSON call the client times out while the provider is still answering: estimated
        sim.set_faults("primary", latency_ms=600)
        with pytest.raises(openai.APITimeoutError):
            await hasty.chat.completions.create(model="chat", messages=MESSAGES)

        exact = (Decimal(usage.prompt_tokens) * 1 + Decimal(usage.completion_tokens) * 2) / 1_000_000

        async def folded() -> dict | None:
            body = await kube.get(provider_path("primary"))
            spend = (body.get("status") or {}).get("spend") or {}
            return spend if spend.get("requests") == 3 and spend.get("estimatedRequests") == 2 else None

        spend = await eventually(folded, timeout=30)
        assert spend["costUSD"] == shown_cost(exact)
        assert spend["inputTokens"] == usage.prompt_tokens and spend["outputTokens"] == usage.completion_tokens
        estimated = Decimal(spend["estimatedCostUSD"])
        assert estimated > 0 and "E" not in spend["estimatedCostUSD"]
        assert spend["unpricedRequests"] == 0
    finally:
        await patient.close()
        await hasty.close()
        if router.returncode is None:
            router.kill()
            await router.wait()
