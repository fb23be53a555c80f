"""The floor: the least an aiohttp proxy does per request, to compare the router with.

One pooled ClientSession; the body and headers go upstream as they came, the answer comes back
chunk by chunk as it arrives. `python -m tests.bench.floor_proxy --port P --upstream URL`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

HOP_BY_HOP = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "content-length"})
SESSION = web.AppKey("session", aiohttp.ClientSession)


def _end_to_end(headers: aiohttp.typedefs.LooseHeaders) -> dict[str, str]:
    return {k: v for k, v in dict(headers).items() if k.lower() not in HOP_BY_HOP}


def make_app(upstream: str) -> web.Application:
    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        session = request.app[SESSION]
        url = upstream + request.path_qs
        async with session.request(
            request.method, url, data=body, headers=_end_to_end(request.headers)
        ) as up:
            response = web.StreamResponse(status=up.status, headers=_end_to_end(up.headers))
            response.content_length = up.content_length  # None: chunked, as the upstream sent it
            await response.prepare(request)
            async for chunk in up.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0)
        app[SESSION] = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        yield
        await app[SESSION].close()

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def serve(port: int, upstream: str) -> None:
    runner = web.AppRunner(make_app(upstream.rstrip("/")), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print(f"floor-proxy listening on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL the request path is appended to")
    args = parser.parse_args()
    uvloop.install()
    asyncio.run(serve(args.port, args.upstream))
