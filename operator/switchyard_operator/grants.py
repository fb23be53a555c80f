"""A Secret opts in: which Secrets the operator may read, and for which LLMProviders.

Default deny. The operator reads a Secret only when the Secret itself carries the label
`switchyard.dev/credentials: "true"` (the operator's list and watch of Secrets ask the API server
for that label, so no other Secret ever reaches it), and uses it for an LLMProvider only when the
Secret's annotation `switchyard.dev/allowed-providers` names that provider. Whoever may edit the
Secret decides; whoever may only write LLMProviders cannot borrow a Secret they cannot read.

The Secrets the operator writes itself (`<policy>-credentials`) carry the same label with the
value "compiled": watched (to rewrite them when deleted), never a source of keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .secrets import decode_secret

CREDENTIALS_LABEL = "switchyard.dev/credentials"
GRANTED = "true"  # a Secret of keys, opted in
COMPILED = "compiled"  # a Secret the operator wrote for a policy's routers
ALLOWED_PROVIDERS = "switchyard.dev/allowed-providers"
# What the operator lists and watches: the Secrets that opted in and the ones it wrote.
WATCH_SELECTOR = f"{CREDENTIALS_LABEL} in ({GRANTED},{COMPILED})"
GRANTED_SELECTOR = f"{CREDENTIALS_LABEL}={GRANTED}"


@dataclass(frozen=True)
class GrantedSecret:
    """An opted-in Secret: its values, and the LLMProviders it may serve."""

    values: Mapping[str, str]
    providers: frozenset[str] = field(default_factory=frozenset)


def is_granted(body: Mapping[str, Any]) -> bool:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return labels.get(CREDENTIALS_LABEL) == GRANTED


def allowed_providers(body: Mapping[str, Any]) -> frozenset[str]:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    text = str(annotations.get(ALLOWED_PROVIDERS) or "")
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def granted_secret(body: Mapping[str, Any]) -> GrantedSecret | None:
    """The Secret as a key source, or None when it did not opt in (its values are not decoded)."""
    if not is_granted(body):
        return None
    return GrantedSecret(decode_secret(body), allowed_providers(body))


def opt_in_fix(namespace: str, secret: str, providers: frozenset[str], provider: str) -> str:
    """The kubectl commands that let `provider` use `secret` (for a person who may edit it)."""
    names = ",".join(sorted(providers | {provider}))
    return (
        f"kubectl -n {namespace} label secret {secret} {CREDENTIALS_LABEL}={GRANTED} --overwrite && "
        f"kubectl -n {namespace} annotate secret {secret} {ALLOWED_PROVIDERS}={names} --overwrite"
    )
