"""The router's HTTP API: OpenAI-compatible endpoints, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from . import tracing
from .adapters import reasoning
from .adapters.base import JSON
from .callers import caller_check
from .connections import GuardedServer
from .credentials import CredentialStore
from .dispatch import Dispatcher, Served, Shape, UpstreamStream
from .egress import Egress
from .errors import UpstreamError, error_body
from .frontends import messages as anthropic
from .frontends.openai_responses import passes_through
from .frontends.responses import ResponsesCall
from .metrics import Metrics
from .money import decimal_text
from .redact import Redactor
from .request_shape import MAX_DEPTH, chat_problem, embeddings_problem, too_deep
from .runtime import CompiledRoute, CompiledTable
from .table import RoutingTable, ServerSettings
from .upstreams import Upstreams
from .usage import UsageLedger

log = logging.getLogger("switchyard.router")

DEFAULT_SETTINGS = ServerSettings()
DEFAULT_MAX_BODY = DEFAULT_SETTINGS.max_body_bytes
# A request that arrives while the router starts (no table yet, or the table before its keys)
# waits this long for it to become ready: the app beside a sidecar starts at the same time.
STARTUP_WAIT = 10.0
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def json_error(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=status,
        body=error_body(message, type_, code=code, param=param),
        content_type="application/json",
        headers=headers,
    )


class RequestError(Exception):
    """A malformed client request, answered before any provider is asked."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers
        self.response = json_error(status, message, "invalid_request_error", code, param, headers)

    def anthropic(self) -> web.Response:
        """The same refusal in the Anthropic Messages API's error shape."""
        body = anthropic.error_body(self.status, self.message)
        headers = self.headers
        return web.Response(status=self.status, body=body, content_type="application/json", headers=headers)


class Router:
    """Holds the table being served; a reload swaps it in one assignment."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        max_body_bytes: int | None = None,
        caller_tokens: list[str] | None = None,
        policy: str | None = None,
        exact_tokens: bool = False,
        egress: Egress | None = None,
        startup_wait: float = STARTUP_WAIT,
    ) -> None:
        self.startup_wait = startup_wait
        # Set once every route has a target it can call; start-up requests wait for it.
        self.started = asyncio.Event()
        self.exact_tokens = exact_tokens
        self.caller_tokens = caller_tokens or []
        self.metrics = metrics or Metrics()
        self.redactor = Redactor()
        self.upstreams = Upstreams(egress)
        self.ledger = UsageLedger(policy=policy)
        self.dispatcher = Dispatcher(self.upstreams, self.metrics, self.redactor, self.ledger)
        self.table: CompiledTable | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._keys: list[str | None] = []
        self.max_body_bytes = max_body_bytes
        self.metrics.watch(lambda: self.table.targets() if self.table else [])

    def load(self, table: RoutingTable, credentials: CredentialStore) -> CompiledTable | None:
        """Swap in a new table; None when it is the one already served (same table, same keys)."""
        keys = [credentials.get(c.key) for p in table.providers for c in p.credentials]
        if self.table is not None and table.digest() == self.table.digest and keys == self._keys:
            return None
        self._keys = keys
        compiled = CompiledTable(table, credentials, previous=self.table)
        self.redactor.update(compiled.key_values())
        previous, self.table = self.table, compiled
        if previous is not None:
            self.metrics.table_info.remove(previous.digest)
            self._retire_sessions_after(previous)
        if (problem := self.not_ready(compiled)) is None:
            self.started.set()
        else:
            log.warning("not ready: %s", problem)
        self.metrics.table_info.labels(compiled.digest).set(1)
        self.metrics.table_loads.labels("ok").inc()
        if self.exact_tokens:
            self._preload_encodings(compiled)
        log.info("serving routing table %s: routes %s", compiled.digest, ", ".join(compiled.routes) or "none")
        return compiled

    def _retire_sessions_after(self, previous: CompiledTable) -> None:
        """Close the sessions of providers a reload dropped or moved, once the requests the old
        table started are out of time: closing at once would cut them off."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # before the loop runs no session is open
            return
        grace = max((route.deadline for route in previous.table.routes), default=0.0)
        loop.call_later(grace, self._retire_sessions)

    def _retire_sessions(self) -> None:
        keep = {(p.name, p.base_url) for p in self.table.table.providers} if self.table else set()
        task = asyncio.ensure_future(self.upstreams.retire(keep))
        self._tasks.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._tasks.discard)

    def _preload_encodings(self, compiled: CompiledTable) -> None:
        models = [t.model for t in compiled.targets() if t.context_window is not None]
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # at start-up, before the loop: load now
            self.dispatcher.token_counter.preload(models)
            return
        loop.run_in_executor(None, self.dispatcher.token_counter.preload, models)

    # --- request parsing -------------------------------------------------------------

    def settings(self) -> ServerSettings:
        """The server settings of the table served now (their defaults before one is)."""
        return self.table.table.server if self.table else DEFAULT_SETTINGS

    def body_limit(self, table: CompiledTable | None) -> int:
        if self.max_body_bytes:
            return self.max_body_bytes
        return table.table.server.max_body_bytes if table else DEFAULT_MAX_BODY

    async def _body(
        self, request: web.BaseRequest, table: CompiledTable, problem: Problem
    ) -> tuple[bytes, JSON]:
        limit = self.body_limit(table)
        if request.content_length is not None and request.content_length > limit:
            raise RequestError(413, f"request body is larger than the limit of {limit} bytes")
        try:
            if request.content.is_eof():  # all there already: no deadline to keep
                raw = await request.read()
            else:
                timeout = self.settings().body_timeout
                try:
                    async with asyncio.timeout(timeout):
                        raw = await request.read()
                except TimeoutError:
                    raise RequestError(408, f"the request body did not arrive within {timeout:g}s") from None
        except web.HTTPRequestEntityTooLarge:
            raise RequestError(413, f"request body is larger than the limit of {limit} bytes") from None
        if len(raw) > limit:
            raise RequestError(413, f"request body is larger than the limit of {limit} bytes")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RequestError(400, f"request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise RequestError(400, "request body must be a JSON object")
        if too_deep(raw, body):
            raise RequestError(400, f"request body nests JSON deeper than {MAX_DEPTH} levels")
        if (found := problem(body)) is not None:
            raise RequestError(400, found[1], param=found[0])
        return raw, body

    def _route(self, table: CompiledTable, body: JSON) -> CompiledRoute:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError(400, "you must provide a model parameter", param="model")
        route = table.resolve(model)
        if route is None:
            raise RequestError(
                404,
                f"The model `{model}` does not exist: ask for a route ({', '.join(table.routes)}) "
                "or <provider>/<model>",
                param="model",
                code="model_not_found",
            )
        return route

    @staticmethod
    def not_ready(table: CompiledTable | None) -> str | None:
        """Why the router cannot serve yet (None: it can): readiness means a table, and
        credentials for every route's provider; a provider without its keys is named."""
        if table is None:
            return "no routing table loaded"
        routes = table.uncallable_routes()
        if routes:
            missing = ", ".join(table.without_keys())
            return (
                f"routes without a target it can call: {', '.join(routes)} "
                f"(credentials missing for providers: {missing})"
            )
        return None

    async def _ready_table(self) -> CompiledTable:
        if not self.started.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.startup_wait):
                    await self.started.wait()
        if self.table is None:
            # The SDKs retry after Retry-After: a table is usually a moment away.
            raise RequestError(503, "no routing table loaded yet", headers={"Retry-After": "1"})
        return self.table

    # --- endpoints -------------------------------------------------------------------

    async def chat_completions(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            table = await self._ready_table()
            raw, body = await self._body(request, table, chat_problem)
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise RequestError(400, "messages must be a non-empty array", param="messages")
            route = self._route(table, body)
        except RequestError as exc:
            return exc.response
        # A cheap prompt estimate (about 4 bytes a token) for cost-aware choice.
        prompt_tokens = len(raw) // 4
        if body.get("stream") is True:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(request, route, body, prompt_tokens, include_usage)
        return await self._complete(route, body, prompt_tokens, "chat")

    async def messages(self, request: web.BaseRequest) -> web.StreamResponse:
        """POST /v1/messages: the Anthropic Messages API on the same routes (frontends/messages.py)."""
        try:
            table = await self._ready_table()
            raw, body = await self._body(request, table, _no_problem)
            try:
                anthropic.check(body)
            except anthropic.MessagesRequestError as exc:
                raise RequestError(400, str(exc), param=exc.param) from None
            route = self._route(table, body)
        except RequestError as exc:
            return exc.anthropic()
        shape = anthropic.MessagesShape(body)
        if body.get("stream") is True:
            return await self._stream(request, route, body, len(raw) // 4, True, shape, _ANTHROPIC)
        return await self._complete(route, body, len(raw) // 4, "chat", shape, _ANTHROPIC)

    async def count_tokens(self, request: web.BaseRequest) -> web.StreamResponse:
        """POST /v1/messages/count_tokens: counted here, on the route's first target's encoding
        when --exact-tokens loaded one, else estimated (about 4 bytes a token, erring high);
        x-switchyard-token-count says which. No provider is asked: nothing is spent."""
        try:
            table = await self._ready_table()
            raw, body = await self._body(request, table, _no_problem)
            route = self._route(table, body)
        except RequestError as exc:
            return exc.anthropic()
        exact = None
        with contextlib.suppress(UpstreamError):  # an Anthropic-only field: an estimate
            exact = self.dispatcher.token_counter.exact(route.targets[0].model, anthropic.chat_request(body))
        headers = {"x-switchyard-token-count": "estimate" if exact is None else "exact"}
        answer = {"input_tokens": len(raw) // 4 if exact is None else exact}
        return web.Response(body=orjson.dumps(answer), content_type="application/json", headers=headers)

    async def responses(self, request: web.BaseRequest) -> web.StreamResponse:
        """POST /v1/responses: passed through to OpenAI, translated for the other families
        (frontends/responses.py); errors in OpenAI's body, as on chat completions."""
        try:
            table = await self._ready_table()
            raw, body = await self._body(request, table, _no_problem)
            route = self._route(table, body)
            call = ResponsesCall(body)
            refused = call.refused
            if refused is not None and not any(passes_through(t.provider) for t in route.targets):
                raise RequestError(400, str(refused), param=refused.param)
        except RequestError as exc:
            return exc.response
        if body.get("stream") is True:
            return await self._stream(request, route, call.chat, len(raw) // 4, False, call)
        return await self._complete(route, call.chat, len(raw) // 4, "chat", call)

    def kept_response(self, request: web.BaseRequest) -> web.Response:
        """GET or DELETE /v1/responses/{id}: the router keeps no responses (see frontends/responses.py)."""
        return json_error(
            404,
            "the router keeps no responses (it answers with store false): "
            "keep the response you were sent, and send the whole conversation as input",
            "invalid_request_error",
            param="response_id",
        )

    async def embeddings(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            table = await self._ready_table()
            raw, body = await self._body(request, table, embeddings_problem)
            if "input" not in body:
                raise RequestError(400, "input is required", param="input")
            route = self._route(table, body)
        except RequestError as exc:
            return exc.response
        return await self._complete(route, body, len(raw) // 4, "embeddings")

    async def _complete(
        self,
        route: CompiledRoute,
        body: JSON,
        prompt_tokens: int,
        operation: str,
        shape: Shape | None = None,
        wire: Wire | None = None,
    ) -> web.Response:
        name = route.route.name
        failed = _failed if wire is None else wire.failed
        try:
            result = await self.dispatcher.complete(route, body, prompt_tokens, operation, shape)
        except asyncio.CancelledError:  # the client hung up (handler_cancellation)
            self.metrics.request_done(name, "ClientGone")
            raise
        except UpstreamError as err:
            self.metrics.request_done(name, err.kind.value)
            return failed(err)
        self.metrics.request_done(name, "ok")
        headers = _served_headers(name, result.served, result.request_id, _chat_of(body, shape))
        if wire is not None:
            wire.served(headers)
        headers["x-switchyard-cost-usd"] = "unpriced" if result.cost is None else decimal_text(result.cost)
        return web.Response(body=result.body, content_type="application/json", headers=headers)

    async def _stream(
        self,
        request: web.BaseRequest,
        route: CompiledRoute,
        body: JSON,
        prompt_tokens: int,
        include_usage: bool,
        shape: Shape | None = None,
        wire: Wire | None = None,
    ) -> web.StreamResponse:
        name = route.route.name
        try:
            opened = self.dispatcher.open_stream(route, body, prompt_tokens, include_usage, shape)
            stream, served = await opened
        except asyncio.CancelledError:  # the client hung up (handler_cancellation)
            self.metrics.request_done(name, "ClientGone")
            raise
        except UpstreamError as err:
            self.metrics.request_done(name, err.kind.value)
            return _failed(err) if wire is None else wire.failed(err)
        served_headers = _served_headers(name, served, stream.request_id, _chat_of(body, shape))
        headers = {**_SSE_HEADERS, **served_headers}
        if wire is not None:
            wire.served(headers)
        if stream.finished:
            # The upstream's whole stream came in one read: it goes out as one plain body, and
            # the counting waits until it has (the callback runs once this task has written it).
            asyncio.get_running_loop().call_soon(self._served_at_once, stream, name)
            return web.Response(body=stream.first, headers=headers)
        response = _EventStream(headers=headers)
        # A client that hangs up cancels this handler (handler_cancellation): that is the outcome
        # recorded unless the stream ends one way or the other.
        outcome = "ClientGone"
        try:
            await response.prepare(request)  # the header block waits for the first frames
            frames = stream.first
            while not stream.finished:
                if frames:
                    await response.write(frames)
                frames = await stream.more()
            outcome = "ok"
            # The last bytes first, the counting after: what was served counts even when the
            # client is gone by now.
            try:
                await _write_quietly(response, frames, eof=True)
            finally:
                stream.succeeded(self.ledger)
        except UpstreamError as err:
            # Bytes already reached the client: no fallback now, and no clean-looking end.
            outcome = err.kind.value
            err.message = self.redactor(err.message)
            stream.broke(err)
            log.warning(
                "stream broke after its first byte: route=%s provider=%s kind=%s: %s",
                name,
                served.target.provider.name,
                outcome,
                err.message,
            )
            broken = stream.translator.broken(err) if wire is None else wire.broken(err)
            await _write_quietly(response, broken)
        except ConnectionResetError:  # the client left before its cancellation reached us
            pass
        finally:
            stream.close()  # stops the upstream request at once: no tokens nobody will read
            if outcome == "ClientGone":
                stream.abandoned(self.ledger, prompt_tokens)
            self.metrics.request_done(name, outcome)
        return response

    def _served_at_once(self, stream: UpstreamStream, route: str) -> None:
        stream.close()
        stream.succeeded(self.ledger)
        self.metrics.request_done(route, "ok")

    async def models(self, request: web.BaseRequest) -> web.Response:
        table = self.table
        names = table.model_names() if table else []
        data = [_model_object(n) for n in names]
        return web.Response(
            body=orjson.dumps({"object": "list", "data": data}), content_type="application/json"
        )

    async def model(self, name: str) -> web.Response:
        """GET /v1/models/{model}: a route, or any `<provider>/<model>` a request may pin."""
        try:
            self._route(await self._ready_table(), {"model": name})
        except RequestError as exc:
            return exc.response
        return web.Response(body=orjson.dumps(_model_object(name)), content_type="application/json")

    async def usage(self, request: web.BaseRequest) -> web.Response:
        """This process's cumulative spend since it started (what it reports to the operator)."""
        report = self.ledger.snapshot(table_hash=self.table.digest if self.table else None, advance=False)
        return web.Response(body=report.model_dump_json(by_alias=True), content_type="application/json")

    async def healthz(self, request: web.BaseRequest) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, request: web.BaseRequest) -> web.Response:
        table = self.table
        problem = self.not_ready(table)
        if problem is not None:
            return web.Response(status=503, text=f"not ready: {problem}")
        assert table is not None
        missing = table.without_keys()
        # Ready: every route can be served; a provider still without keys is named all the same.
        note = f"; credentials missing for providers: {', '.join(missing)}" if missing else ""
        return web.Response(text=f"ready: table {table.digest}{note}")

    async def metrics_endpoint(self, request: web.BaseRequest) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})

    def server(self) -> web.Server:
        """aiohttp's low-level server, its routes a dict: an Application's URL dispatcher,
        middleware chain and per-request clone measured ~6 us a request (a bare handler served
        15.2k against 16.8k req/s) and 180 of the router's 7,560 bytecodes a stream request."""
        get = {
            "/v1/models": self.models,
            "/healthz": self.healthz,
            "/readyz": self.readyz,
            "/metrics": self.metrics_endpoint,
            "/usage": self.usage,
        }
        # Model requests get a span when tracing: wrapped here, once, not checked per request.
        routes: dict[tuple[str, str], Handler] = tracing.traced(
            {
                ("POST", "/v1/chat/completions"): self.chat_completions,
                ("POST", "/v1/embeddings"): self.embeddings,
                ("POST", "/v1/messages"): self.messages,
                ("POST", "/v1/messages/count_tokens"): self.count_tokens,
                ("POST", "/v1/responses"): self.responses,
                **{("GET", path): handler for path, handler in get.items()},
                **{("HEAD", path): handler for path, handler in get.items()},
            }
        )
        known = {path for _, path in routes}
        check = caller_check(self.caller_tokens)

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            if check is not None and (denied := check(request)) is not None:
                return denied  # before the routes: a caller without a token learns nothing
            handler = routes.get((request.method, request.path))
            if handler is None:
                if request.method in ("GET", "HEAD") and request.path.startswith(_MODEL_PATH):
                    return await self.model(request.path[len(_MODEL_PATH) :])
                if request.method in ("GET", "DELETE") and request.path.startswith(_RESPONSE_PATH):
                    return self.kept_response(request)
                return _no_route(known, request)
            return await handler(request)

        loop = asyncio.get_running_loop()

        def make_request(
            message: Any, payload: Any, protocol: Any, writer: Any, task: asyncio.Task[None]
        ) -> web.BaseRequest:
            # The limit of the table served now: a reload that raises or lowers it applies at once.
            limit = self.body_limit(self.table)
            return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=limit)

        # A client that hangs up cancels its handler, which closes the upstream request at once
        # instead of streaming tokens nobody will read.
        return GuardedServer(
            handle,
            self.settings,
            self.metrics.connections_refused.inc,
            request_factory=make_request,
            handler_cancellation=True,
            access_log=None,
        )

    def runner(self) -> web.BaseRunner:
        return _Runner(self.server, self.upstreams.close)

    def health_runner(self, extra: dict[str, Handler] | None = None) -> web.BaseRunner:
        """Probes and scraping on their own port: the kubelet and Prometheus reach the pod IP,
        while the API itself stays on loopback. `extra`: the operator's `/usage` pull."""
        routes: dict[str, Handler] = {
            "/healthz": self.healthz,
            "/readyz": self.readyz,
            "/metrics": self.metrics_endpoint,
            **(extra or {}),
        }

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            handler = routes.get(request.path) if request.method in ("GET", "HEAD") else None
            if handler is None:
                return _no_route(set(routes), request)
            return await handler(request)

        refused = self.metrics.connections_refused.inc
        return _Runner(lambda: GuardedServer(handle, self.settings, refused, access_log=None), None)


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
Problem = Callable[[JSON], tuple[str, str] | None]  # (field, message) of a request's wrong field


class _Runner(web.BaseRunner):
    """Builds its server once the loop runs (web.Server needs it) and closes the upstream
    sessions after the last request."""

    def __init__(self, make: Callable[[], web.Server], close: Callable[[], Awaitable[None]] | None) -> None:
        super().__init__(handle_signals=False)
        self._make = make
        self._close = close

    async def shutdown(self) -> None:
        pass

    async def _make_server(self) -> web.Server:
        return self._make()

    async def _cleanup_server(self) -> None:
        if self._close is not None:
            await self._close()


class _EventStream(web.StreamResponse):
    # The header block goes out with the first frames in one write (as web.Response does),
    # not in a packet of its own: we only prepare once those frames are in hand.
    _send_headers_immediately = False


def _failed(err: UpstreamError) -> web.Response:
    """What a client gets when every target failed: OpenAI's error body and status."""
    tracing.failed(err)
    return web.Response(
        status=err.client_status(),
        body=err.client_body(),
        content_type="application/json",
        headers=err.client_headers(),
    )


@dataclass(frozen=True, slots=True)
class Wire:
    """How a client API other than chat completions says that a request failed: before the
    first byte (a whole error response) and after it (a last event)."""

    failed: Callable[[UpstreamError], web.Response]
    broken: Callable[[UpstreamError], bytes]
    id_header: str  # where this API's SDK looks for the provider's request id

    def served(self, headers: dict[str, str]) -> dict[str, str]:
        if "x-request-id" in headers:
            headers[self.id_header] = headers["x-request-id"]
        return headers


def _anthropic_failed(err: UpstreamError) -> web.Response:
    return web.Response(
        status=anthropic.client_status(err),
        body=anthropic.error_body(anthropic.client_status(err), err.message, err.request_id),
        content_type="application/json",
        headers=_ANTHROPIC.served(err.client_headers()),
    )


_ANTHROPIC = Wire(_anthropic_failed, anthropic.error_event, "request-id")


def _no_problem(body: JSON) -> tuple[str, str] | None:
    return None  # checked as it is translated


def _chat_of(body: JSON, shape: Shape | None) -> JSON:
    """The chat request a target was sent (a Messages request's translation, if one was made)."""
    if isinstance(shape, anthropic.MessagesShape):
        return shape.translated or {}
    return body


def _served_headers(route: str, served: Served, request_id: str | None, chat: JSON) -> dict[str, str]:
    target = served.target
    headers = {
        "x-switchyard-route": route,
        "x-switchyard-provider": target.provider.name,
        "x-switchyard-model": target.model,
        "x-switchyard-attempts": str(served.attempts),
    }
    if reasoning.dropped(target.provider, target.model, chat):
        headers["x-switchyard-reasoning"] = (
            f"dropped: model {target.model} of {target.provider.name} declares no reasoning style"
        )
    if request_id:  # the provider's, where the SDKs look for it
        headers["x-request-id"] = request_id
    return headers


async def _write_quietly(response: web.StreamResponse, data: bytes, eof: bool = False) -> None:
    with contextlib.suppress(ConnectionResetError, OSError):  # the client may have left first
        await (response.write_eof(data) if eof else response.write(data))


_MODEL_PATH = "/v1/models/"
_RESPONSE_PATH = "/v1/responses/"


def _model_object(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "switchyard"}


def _no_route(known: set[str], request: web.BaseRequest) -> web.Response:
    if request.path in known:
        return json_error(405, f"{request.method} is not allowed on {request.path}", "invalid_request_error")
    return json_error(404, f"there is no {request.path} here", "invalid_request_error")
