"""Who may call the router. As a sidecar on loopback, only its own pod can; a router listening
on any other address (shared behind a Service) requires caller tokens, which never go upstream."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Mapping
from pathlib import Path

from aiohttp import web

from .errors import error_body
from .frontends.messages import error_body as anthropic_error

# Paths that stay open: probes and scraping carry no prompts and no keys.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# The Anthropic Messages API's paths: its clients send the token as x-api-key, and read errors in
# Anthropic's shape.
ANTHROPIC_PATHS = "/v1/messages"


class CallerConfigError(ValueError):
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


MIN_TOKEN_LENGTH = 32  # a token is a random secret, e.g. `openssl rand -hex 32`, not a password


def load_tokens(path: Path | None, environ: Mapping[str, str]) -> list[str]:
    """The caller tokens from SWITCHYARD_CALLER_TOKENS (comma-separated) and the file (one a line);
    CallerConfigError for one shorter than MIN_TOKEN_LENGTH (named by place, never shown)."""
    found = [
        ("SWITCHYARD_CALLER_TOKENS entry", i + 1, t.strip())
        for i, t in enumerate(t for t in environ.get("SWITCHYARD_CALLER_TOKENS", "").split(",") if t.strip())
    ]
    if path is not None:
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise CallerConfigError(f"--caller-tokens-file {path}: {exc.strerror}") from None
        found += [
            (f"--caller-tokens-file {path} line", n, line.strip())
            for n, line in enumerate(lines, 1)
            if line.strip() and not line.startswith("#")
        ]
    for where, number, token in found:
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise CallerConfigError(
                f"{where} {number}: a caller token is one word of at least {MIN_TOKEN_LENGTH} "
                f"characters (this one has {len(token)}); make one with `openssl rand -hex 32`"
            )
    return [token for _, _, token in found]


def check_exposure(host: str, tokens: list[str], allow_unauthenticated: bool) -> None:
    if tokens or allow_unauthenticated or is_loopback(host):
        return
    raise CallerConfigError(
        f"--host {host} is reachable from other machines but no caller tokens are set: set "
        "SWITCHYARD_CALLER_TOKENS or --caller-tokens-file, or pass --allow-unauthenticated on purpose"
    )


def caller_check(tokens: list[str]) -> Callable[[web.BaseRequest], web.Response | None] | None:
    """None when every caller may come in; else a check that answers 401 unless the request
    carries one of the tokens (probes and scraping stay open)."""
    if not tokens:
        return None
    encoded = [t.encode() for t in tokens]

    def check(request: web.BaseRequest) -> web.Response | None:
        if request.path in OPEN_PATHS:
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        anthropic = request.path.startswith(ANTHROPIC_PATHS)
        if anthropic and "x-api-key" in request.headers:  # how the anthropic SDK sends its key
            scheme, given = "bearer", request.headers["x-api-key"]
        # Constant-time comparison: a token is not guessed one byte at a time.
        if scheme.lower() == "bearer" and any(
            hmac.compare_digest(given.strip().encode(), token) for token in encoded
        ):
            return None
        if anthropic:
            body = anthropic_error(401, "missing or wrong caller token: send x-api-key: <token>")
        else:
            body = error_body(
                "missing or wrong caller token: send Authorization: Bearer <token>",
                "invalid_request_error",
                code="invalid_api_key",
            )
        return web.Response(status=401, body=body, content_type="application/json")

    return check
