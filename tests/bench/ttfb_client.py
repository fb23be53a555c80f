"""Time to first body byte of streamed chat completions, at a fixed concurrency (closed loop).

Each of `--concurrency` keep-alive connections sends the request, notes when the first bytes of
the response body arrive (after the header block), reads the chunked body to its end, and repeats.
Prints one JSON line: p50/p99 of time to first byte and of the whole response, in ms.
`python -m tests.bench.ttfb_client --url URL --concurrency 16 --duration 3` (body from BENCH_BODY).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from time import perf_counter
from urllib.parse import urlsplit

import uvloop


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, float]:
    """(status, when the first body bytes arrived); reads the whole response."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    fields = dict(
        (name.strip().lower(), value.strip())
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)
    )
    if fields.get(b"transfer-encoding") == b"chunked":
        first = 0.0
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            first = first or perf_counter()
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers: the blank line ends the body
                return status, first
            await reader.readexactly(size + 2)
    length = int(fields.get(b"content-length", b"0"))
    if length == 0:
        return status, perf_counter()
    data = await reader.read(length)
    first = perf_counter()
    await reader.readexactly(length - len(data))
    return status, first


async def connection(
    host: str, port: int, request: bytes, warm_until: float, stop_at: float, out: dict[str, list[float]]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while perf_counter() < stop_at:
            sent = perf_counter()
            writer.write(request)
            status, first = await read_response(reader)
            done = perf_counter()
            if sent < warm_until:
                continue
            if status != 200:
                out["errors"].append(status)
                continue
            out["ttfb"].append(first - sent)
            out["total"].append(done - sent)
    finally:
        writer.close()


async def measure(
    url: str, body: bytes, key: str, concurrency: int, duration: float, warmup: float
) -> dict[str, float | int]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    out: dict[str, list[float]] = {"ttfb": [], "total": [], "errors": []}
    start = perf_counter()
    warm_until, stop_at = start + warmup, start + warmup + duration
    await asyncio.gather(
        *(connection(host, port, request, warm_until, stop_at, out) for _ in range(concurrency))
    )
    elapsed = perf_counter() - warm_until
    ms = 1000.0
    result: dict[str, float | int] = {"count": len(out["ttfb"]), "errors": len(out["errors"])}
    if out["ttfb"]:
        result |= {
            "rps": len(out["ttfb"]) / elapsed,
            "ttfb_p50_ms": percentile(out["ttfb"], 50) * ms,
            "ttfb_p99_ms": percentile(out["ttfb"], 99) * ms,
            "total_p50_ms": percentile(out["total"], 50) * ms,
            "total_p99_ms": percentile(out["total"], 99) * ms,
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured, after the warm-up")
    parser.add_argument("--warmup", type=float, default=0.5)
    args = parser.parse_args()
    body = os.environ.get("BENCH_BODY", "").encode()
    if not body:
        print("ttfb_client: set BENCH_BODY to the request body", file=sys.stderr)
        return 2
    key = os.environ.get("BENCH_KEY", "sk-bench-client")
    result = uvloop.run(measure(args.url, body, key, args.concurrency, args.duration, args.warmup))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
