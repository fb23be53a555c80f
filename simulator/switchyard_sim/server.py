"""The simulator's HTTP server: routing by path, the fault pipeline, and the `Simulator` API.

One request goes: resolve family and endpoint -> count it -> latency -> hang/reset dice ->
authentication -> JSON body -> rate-limit burst and error dice -> endpoint (pure) ->
context window -> answer, possibly cut. A provider without faults skips every die, and its
repeated requests are answered from rendered templates (see templates.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import struct
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from switchyard_router import clock

from . import anthropic_api, gemini_api, openai_api, responses_api, templates
from .admin import AdminApi
from .content import IdMaker
from .faults import HANG_LIMIT_S, Faults, FaultState
from .stats import CUT, HANG, RESET, ProviderStats
from .templates import TemplateCache
from .wire import JSON, BadRequest, Call, Endpoint, Family, Reply

MAX_BODY_BYTES = 64 * 1024 * 1024  # context-window tests send big prompts
_BAD_KEY_PREFIX = "sk-bad"
_GEMINI_ACTION = re.compile(r"(?:v1beta|v1)/models/([^/:]+):(\w+)")
_GEMINI_MODEL = re.compile(r"v1beta/models/([^/:]+)")
_MODEL_ID = re.compile(r"v1/models/(.+)")

_EXACT: dict[tuple[str, str], tuple[str, Endpoint]] = {
    ("POST", "v1/chat/completions"): ("openai", openai_api.chat_completions),
    ("POST", "v1/embeddings"): ("openai", openai_api.embeddings),
    ("POST", "v1/responses"): ("openai", responses_api.responses),
    ("POST", "v1/messages"): ("anthropic", anthropic_api.messages),
    ("POST", "v1/messages/count_tokens"): ("anthropic", anthropic_api.count_tokens),
    ("GET", "v1beta/models"): ("gemini", gemini_api.list_models),
}
_GEMINI_ACTIONS: dict[str, tuple[Endpoint, bool]] = {
    "generateContent": (gemini_api.generate, False),
    "streamGenerateContent": (gemini_api.generate, True),
    "countTokens": (gemini_api.count_tokens, False),
    "embedContent": (gemini_api.embed_content, False),
    "batchEmbedContents": (gemini_api.batch_embed_contents, False),
}


@dataclass(slots=True)
class _Route:
    family: str
    endpoint: Endpoint
    path_model: str | None = None
    stream: bool = False


def _get_family(request: web.BaseRequest) -> str:
    """OpenAI, Anthropic and Gemini (whose SDK now defaults to v1) all have GET /v1/models."""
    headers = request.headers
    if "anthropic-version" in headers or "x-api-key" in headers:
        return "anthropic"
    if "x-goog-api-key" in headers or "x-goog-api-client" in headers or "key" in request.query:
        return "gemini"
    return "openai"


_LIST_MODELS: dict[str, Endpoint] = {
    "openai": openai_api.list_models,
    "anthropic": anthropic_api.list_models,
    "gemini": gemini_api.list_models,
}
_GET_MODEL: dict[str, Endpoint] = {
    "openai": openai_api.retrieve_model,
    "anthropic": anthropic_api.retrieve_model,
    "gemini": gemini_api.get_model,
}


def _resolve(request: web.BaseRequest, tail: str) -> _Route | None:
    method = request.method
    exact = _EXACT.get((method, tail))
    if exact is not None:
        return _Route(*exact)
    if method == "POST":
        match = _GEMINI_ACTION.fullmatch(tail)
        if match and match.group(2) in _GEMINI_ACTIONS:
            endpoint, stream = _GEMINI_ACTIONS[match.group(2)]
            return _Route("gemini", endpoint, match.group(1), stream)
        return None
    if method != "GET":
        return None
    if tail == "v1/models":
        family = _get_family(request)
        return _Route(family, _LIST_MODELS[family])
    if match := _MODEL_ID.fullmatch(tail):
        family = _get_family(request)
        return _Route(family, _GET_MODEL[family], match.group(1))
    if match := _GEMINI_MODEL.fullmatch(tail):
        return _Route("gemini", gemini_api.get_model, match.group(1))
    return None


class Simulator:
    """Many simulated providers on one port, each under its own path prefix.

    >>> async with Simulator(seed=0) as sim:
    ...     base = sim.url + "/primary/v1"  # an OpenAI base URL
    """

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self.url = ""
        self._ids = IdMaker(seed)
        self._families: dict[str, Family] = {
            "openai": openai_api.OpenAIFamily(self._ids),
            "anthropic": anthropic_api.AnthropicFamily(self._ids),
            "gemini": gemini_api.GeminiFamily(self._ids),
        }
        self._faults: dict[str, FaultState] = {}
        self._stats: dict[str, ProviderStats] = {}
        self._last: dict[str, tuple[Any, ...]] = {}
        self._closing: asyncio.Event | None = None  # made in start(): an Event belongs to a loop
        self._runner: web.ServerRunner | None = None
        self._admin = AdminApi(self)
        self._templates = TemplateCache()
        self._prompt_caches: dict[str, set[bytes]] = {}

    # --- lifecycle ------------------------------------------------------------------------

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> str:
        """Serve on host:port (0 picks a free port), over TLS with `ssl_context`; returns the
        base URL, e.g. http://127.0.0.1:PORT."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self._closing = asyncio.Event()
        loop = asyncio.get_running_loop()

        def make_request(
            message: RawRequestMessage,
            payload: StreamReader,
            protocol: RequestHandler,
            writer: AbstractStreamWriter,
            task: asyncio.Task[None],
        ) -> web.BaseRequest:
            return web.BaseRequest(
                message, payload, protocol, writer, task, loop, client_max_size=MAX_BODY_BYTES
            )

        # aiohttp's low-level server: no Application, router or middleware chain; our own
        # routing is a dict lookup, and this saves about a third of aiohttp's cost per request.
        # handler_cancellation: a client that goes away cancels its handler (ends a hang).
        server = web.Server(
            self._handle,
            request_factory=make_request,
            handler_cancellation=True,
            access_log=None,
        )
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
        await site.start()
        self._runner = runner
        sockets = runner.addresses
        bound_port = sockets[0][1] if sockets else port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{'https' if ssl_context else 'http'}://{shown}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._closing is not None:
            self._closing.set()  # wakes hung requests so shutdown does not wait for them
        await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def base_url(self, name: str, family: str = "openai") -> str:
        """The base URL an SDK of `family` takes: OpenAI's ends in /v1, the others do not."""
        if family not in self._families:
            raise ValueError(f"unknown family {family!r}")
        return f"{self.url}/{name}/v1" if family == "openai" else f"{self.url}/{name}"

    # --- faults and stats -----------------------------------------------------------------

    def set_faults(self, name: str, faults: Faults | None = None, **fields: Any) -> Faults:
        """Replace a provider's faults (fields left out take their defaults)."""
        new = Faults.from_mapping(fields, base=faults) if fields or faults is None else faults
        self._faults[name] = FaultState(new, self.seed, name)
        return new

    def update_faults(self, name: str, **fields: Any) -> Faults:
        """Change some fields and keep the others."""
        current = self._faults.get(name)
        return self.set_faults(name, Faults.from_mapping(fields, base=current.faults if current else None))

    def get_faults(self, name: str) -> Faults | None:
        state = self._faults.get(name)
        return state.faults if state else None

    def all_faults(self) -> dict[str, Faults]:
        return {name: state.faults for name, state in self._faults.items()}

    def clear_faults(self, name: str | None = None) -> None:
        if name is None:
            self._faults.clear()
        else:
            self._faults.pop(name, None)

    def stats(self, name: str | None = None) -> dict[str, Any]:
        """Counters per provider name; with `name`, that provider's counters alone."""
        if name is not None:
            return (self._stats.get(name) or ProviderStats()).to_json()
        return {key: value.to_json() for key, value in self._stats.items()}

    def reset(self) -> None:
        """Forget faults, counters and recorded requests."""
        self._faults.clear()
        self._stats.clear()
        self._last.clear()
        self._templates.clear()
        self._prompt_caches.clear()

    def last_request(self, name: str) -> JSON | None:
        """The last request a provider received, without its key (for tests of translation)."""
        last = self._last.get(name)
        if last is None:
            return None
        family, method, url, headers, raw = last
        secret = {*self._families[family].key_headers, "cookie"}
        try:
            body: Any = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = raw.decode(errors="replace")
        return {
            "family": family,
            "method": method,
            "path": url.path,
            "query": {k: v for k, v in url.query.items() if k != "key"},
            "headers": {k.lower(): v for k, v in headers.items() if k.lower() not in secret},
            "body": body,
        }

    # --- the request path -----------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim/"):
            return await self._admin.handle(request)
        name, _, tail = path[1:].partition("/")
        route = _resolve(request, tail) if name else None
        if route is None:
            message = f"no simulated endpoint for {request.method} {path}"
            return web.Response(
                status=404,
                body=orjson.dumps({"error": {"message": message}}),
                headers={"Content-Type": "application/json"},
            )
        family = self._families[route.family]
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats[name] = ProviderStats()
        key, key_in_url = family.api_key(request)
        stats.record_request(family.name, key, key_in_url)

        state = self._faults.get(name)
        if state is not None:
            if state.faults.latency_ms:
                await asyncio.sleep(state.faults.latency_ms / 1000)
            if state.roll(state.faults.hang_rate):
                return await self._hang(request, stats)
            if state.roll(state.faults.reset_rate):
                stats.record_outcome(RESET)
                return _abort(request, rst=True)

        if key is None or key.startswith(_BAD_KEY_PREFIX):
            return _done(stats, family.auth_error(key))

        raw = await request.read() if request.method == "POST" else b""
        self._last[name] = (family.name, request.method, request.rel_url, request.headers, raw)
        try:
            if state is None:
                reply = self._reply(route, name, request, raw)
            else:
                body = _parse(raw)
                refusal = _rate_limit_or_error(state, family, route.path_model or body.get("model"))
                if refusal is not None:
                    return _done(stats, refusal)
                call = Call(name, body, request, self._ids, int(clock.time()), route.path_model, route.stream)
                call.prompt_cache = self._prompt_caches.setdefault(name, set())
                reply = route.endpoint(call)
        except BadRequest as exc:
            return _done(stats, family.bad_request(exc))
        if reply.model:
            stats.record_model(reply.model)

        cut = False
        delay = 0.0
        if state is not None:
            window = state.faults.context_window
            if window is not None and reply.prompt_tokens > window:
                return _done(stats, family.context_error(reply.prompt_tokens, window))
            cut = state.roll(state.faults.cut_rate)
            delay = state.faults.chunk_delay_ms / 1000
        if reply.frames is not None:
            stats.streams += 1
            return await self._stream(request, family, stats, reply, cut, delay)
        if cut:
            return await self._cut_body(request, family, stats, reply)
        stats.record_outcome(200)
        headers = family.response_headers()
        headers["Content-Type"] = reply.content_type
        return web.Response(body=reply.body, headers=headers)

    def _reply(self, route: _Route, name: str, request: web.BaseRequest, raw: bytes) -> Reply:
        """The endpoint's answer, from the template cache when this exact request was seen."""
        if not templates.cacheable(request.path, raw):
            call = Call(
                name, _parse(raw), request, self._ids, int(clock.time()), route.path_model, route.stream
            )
            call.prompt_cache = self._prompt_caches.setdefault(name, set())
            return route.endpoint(call)
        # Everything an endpoint reads: its own identity, the provider, path, query and body,
        # and (Anthropic) whether anthropic-version was sent.
        key = (
            route.endpoint,
            name,
            route.path_model,
            route.stream,
            request.query_string,
            "anthropic-version" in request.headers,
            raw,
        )
        template = self._templates.get(key)
        if template is None:
            call = Call(name, _parse(raw), request, self._ids, 0, route.path_model, route.stream)
            template = self._templates.render(key, route.endpoint, call)
        return template.fill(self._ids, int(clock.time()))

    async def _stream(
        self,
        request: web.BaseRequest,
        family: Family,
        stats: ProviderStats,
        reply: Reply,
        cut: bool,
        delay: float,
    ) -> web.StreamResponse:
        frames = reply.frames
        assert frames is not None
        headers = family.response_headers()
        headers["Content-Type"] = reply.content_type
        headers["Cache-Control"] = "no-cache"
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        if not cut and not delay:
            # Unpaced: the first event on its own (a real first byte), the rest in one write.
            # One write per event cost 2.5x a JSON answer, and loopback TCP merges them anyway.
            await response.write(frames[0])
            await response.write_eof(b"".join(frames[1:]))
            stats.record_outcome(200)
            return response
        # A cut stream never sends its last frame (the terminator or the final event).
        cut_at = min(2, len(frames) - 1) if cut else -1
        for index, frame in enumerate(frames):
            if index == cut_at:
                stats.record_outcome(CUT)
                await _flush(request)
                return _abort(request)
            if delay and index:
                await asyncio.sleep(delay)
            await response.write(frame)
        await response.write_eof()
        stats.record_outcome(200)
        return response

    async def _cut_body(
        self, request: web.BaseRequest, family: Family, stats: ProviderStats, reply: Reply
    ) -> web.StreamResponse:
        """Announce the whole JSON body, send half of it, then drop the connection."""
        response = web.StreamResponse(headers=family.response_headers())
        response.content_type = reply.content_type
        response.content_length = len(reply.body)
        await response.prepare(request)
        await response.write(reply.body[: len(reply.body) // 2])
        stats.record_outcome(CUT)
        await _flush(request)
        return _abort(request)

    async def _hang(self, request: web.BaseRequest, stats: ProviderStats) -> web.StreamResponse:
        """Never answer. Ends when the client leaves (handler cancelled), on stop, or at 600 s."""
        stats.record_outcome(HANG)
        closing = self._closing
        assert closing is not None  # requests only arrive between start() and stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), HANG_LIMIT_S)
        return _abort(request)


def _rate_limit_or_error(state: FaultState, family: Family, model: object) -> web.Response | None:
    """The burst limit first (it counts every request), then the error dice."""
    name = model if isinstance(model, str) else None
    if state.over_burst():
        return family.error(429, retry_after=state.retry_after(), model=name)
    if state.roll(state.faults.error_rate):
        status = state.faults.error_status
        retry_after = state.retry_after() if status == 429 else state.faults.retry_after
        return family.error(status, retry_after=retry_after, model=name)
    return None


def _parse(raw: bytes) -> JSON:
    try:
        parsed = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise BadRequest("The request body must be a JSON object.")
    return parsed


def _done(stats: ProviderStats, response: web.Response) -> web.Response:
    stats.record_outcome(response.status)
    return response


async def _flush(request: web.BaseRequest) -> None:
    """Let written bytes reach the socket first: abort() discards whatever is still buffered."""
    transport = request.transport
    for _ in range(100):
        if transport is None or transport.is_closing() or not transport.get_write_buffer_size():
            return
        await asyncio.sleep(0.001)


def _abort(request: web.BaseRequest, *, rst: bool = False) -> web.StreamResponse:
    """Drop the TCP connection without (the rest of) an answer.

    With `rst`, a zero linger makes the kernel send RST, so the client sees ECONNRESET as
    after a real reset. Without it the peer gets a plain FIN and can still read what was sent
    before, which a cut stream needs (an RST may make the kernel discard unread data).
    """
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if rst and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # aiohttp tries to send this on the dead connection, fails quietly, and moves on.
    return web.Response(status=502)
