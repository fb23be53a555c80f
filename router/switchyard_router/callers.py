"""Who may call the router. As a sidecar on loopback, only its own pod can; a router listening
on any other address (shared behind a Service) requires caller tokens, which never go upstream."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from aiohttp import web

from .errors import error_body

# Paths that stay open: probes and scraping carry no prompts and no keys.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class CallerConfigError(ValueError):
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_tokens(path: Path | None, environ: Mapping[str, str]) -> list[str]:
    tokens = [t.strip() for t in environ.get("SWITCHYARD_CALLER_TOKENS", "").split(",") if t.strip()]
    if path is not None:
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise CallerConfigError(f"--caller-tokens-file {path}: {exc.strerror}") from None
        tokens += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return tokens


def check_exposure(host: str, tokens: list[str], allow_unauthenticated: bool) -> None:
    if tokens or allow_unauthenticated or is_loopback(host):
        return
    raise CallerConfigError(
        f"--host {host} is reachable from other machines but no caller tokens are set: set "
        "SWITCHYARD_CALLER_TOKENS or --caller-tokens-file, or pass --allow-unauthenticated on purpose"
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def caller_auth(tokens: list[str]) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    encoded = [t.encode() for t in tokens]

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip().encode()
        # Constant-time comparison: a token is not guessed one byte at a time.
        if not any(hmac.compare_digest(given, token) for token in encoded):
            body = error_body(
                "missing or wrong caller token: send Authorization: Bearer <token>",
                "invalid_request_error",
                code="invalid_api_key",
            )
            return web.Response(status=401, body=body, content_type="application/json")
        return await handler(request)

    return middleware
