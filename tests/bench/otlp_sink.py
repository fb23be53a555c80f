"""A local OTLP/HTTP collector for the bench's traced router: accepts /v1/traces, counts the
spans (GET /spans), keeps nothing else. `python -m tests.bench.otlp_sink --port P`."""

from __future__ import annotations

import argparse
import gzip

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

SPANS = web.AppKey("spans", list)


async def receive(request: web.Request) -> web.Response:
    body = await request.read()
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    message = ExportTraceServiceRequest()
    message.ParseFromString(body)
    count = sum(len(s.spans) for r in message.resource_spans for s in r.scope_spans)
    request.app[SPANS][0] += count
    return web.Response(body=b"", content_type="application/x-protobuf")


async def spans(request: web.Request) -> web.Response:
    return web.Response(text=str(request.app[SPANS][0]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app[SPANS] = [0]
    app.router.add_post("/v1/traces", receive)
    app.router.add_get("/spans", spans)
    print(f"listening on http://127.0.0.1:{args.port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
