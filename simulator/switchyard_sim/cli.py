"""Command line: `switchyard sim` / `python -m switchyard_sim`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from .server import Simulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchyard sim",
        description="Simulated LLM providers (OpenAI, Anthropic, Gemini wire formats) on one port. "
        "Provider NAME is served under /NAME: OpenAI base URL http://HOST:PORT/NAME/v1, "
        "Anthropic and Gemini base URL http://HOST:PORT/NAME. Faults: PUT /_sim/faults/NAME.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9100, help="port to bind, 0 for any (default 9100)")
    parser.add_argument("--seed", type=int, default=0, help="seed for faults and ids (default 0)")
    return parser


async def serve(host: str, port: int, seed: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    simulator = Simulator(seed=seed)
    url = await simulator.start(host, port)
    print(f"switchyard-sim listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await simulator.stop()


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        _run(serve(args.host, args.port, args.seed))
    except OSError as exc:  # e.g. the port is taken
        print(f"switchyard-sim: {exc}", file=sys.stderr)
        return 1
    return 0
