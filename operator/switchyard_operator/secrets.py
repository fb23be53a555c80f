"""Secrets in and out: reading API keys from Secrets, writing the router's credentials Secret.

The router's credential store is keyed by `<provider>.<credential>`: that is the Credential.key
the routing table names, the data key of the `<policy>-credentials` Secret and the file name in
the router's `--credentials-dir`. Values only ever travel between these two Secrets.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any


def credential_key(provider: str, credential: str) -> str:
    """The credential store key of one provider credential."""
    return f"{provider}.{credential}"


def decode_secret(body: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's values as text: `data` (base64) overlaid with `stringData` (as in manifests)."""
    values: dict[str, str] = {}
    for key, encoded in (body.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(str(encoded), validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            values[key] = ""  # reported as an empty key, never echoed
    for key, text in (body.get("stringData") or {}).items():
        values[key] = str(text).strip()
    return values


def encode_data(values: Mapping[str, str]) -> dict[str, str]:
    """Secret `data` for text values."""
    return {key: base64.b64encode(value.encode("utf-8")).decode("ascii") for key, value in values.items()}


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """Replace any secret value that slipped into a message (e.g. an echoed URL) by ***."""
    for value in secrets.values():
        if len(value) >= 4 and value in text:
            text = text.replace(value, "***")
    return text
