"""The webhook server takes pod CREATE reviews only, and says no to anything else at once.

The API server sends this webhook nothing but pod CREATEs (the chart's rules), yet anyone who
can reach the endpoint can send anything. kopf keeps a memory for every object an UPDATE or
DELETE review names (for CREATE it does not, the object not existing yet), about 1 KB each, for
as long as the process lives: forged UPDATE reviews would grow the operator without bound.
So every other review is refused here, before kopf parses it, with nothing kept. aiohttp caps
each request body (1 MiB), so a single review is bounded too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import kopf

JSON = dict[str, Any]


def _refusal(review: Any, message: str) -> JSON:
    payload = review.get("request") if isinstance(review, dict) else None
    uid = payload.get("uid") if isinstance(payload, dict) else None
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": uid if isinstance(uid, str) else "",
            "allowed": False,
            "status": {"code": 400, "message": message},
        },
    }


def create_only(fn: kopf.WebhookFn) -> kopf.WebhookFn:
    async def guarded(review: Any, **kwargs: Any) -> Any:
        payload = review.get("request") if isinstance(review, dict) else None
        if not isinstance(payload, dict):
            return _refusal(review, "not an AdmissionReview")
        resource = payload.get("resource") or {}
        if payload.get("operation") != "CREATE" or not isinstance(resource, dict) or resource.get(
            "resource"
        ) != "pods" or resource.get("group") != "":
            return _refusal(review, "this webhook reviews pod CREATE requests only")
        pod = payload.get("object")
        if isinstance(pod, dict) and isinstance(payload.get("namespace"), str):
            # The pod is created in the request's namespace; its body may not say so yet.
            meta = pod.setdefault("metadata", {})
            if isinstance(meta, dict) and not meta.get("namespace"):
                meta["namespace"] = payload["namespace"]
        return await fn(review, **kwargs)

    return guarded  # type: ignore[return-value]


class CreateOnly:
    """A kopf webhook server (or tunnel) whose reviews pass through `create_only` first."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __aenter__(self) -> CreateOnly:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.__aexit__(*exc)

    def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        served: AsyncIterator[kopf.WebhookClientConfig] = self.inner(create_only(fn))
        return served
