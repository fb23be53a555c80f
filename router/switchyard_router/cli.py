"""`switchyard-router`: serve the OpenAI-compatible API on loopback."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from .envconfig import EnvConfigError
from .redact import RedactingFilter
from .server import Router
from .sources import Sources
from .table import TableError

log = logging.getLogger("switchyard.router")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="switchyard-router",
        description="OpenAI-compatible router over many LLM providers. Without --config the "
        "routing table comes from environment variables (see .env.example).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument("--config", type=Path, help="routing table as YAML (or the operator's ConfigMap)")
    parser.add_argument(
        "--env-file", type=Path, default=None, help="environment file (default: .env when present)"
    )
    parser.add_argument("--credentials-dir", type=Path, help="directory with one file per API key")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    if args.env_file is None and Path(".env").exists():
        args.env_file = Path(".env")
    return args


async def serve(router: Router, sources: Sources, host: str, port: int) -> None:
    runner = router.runner()
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    print(
        f"switchyard-router listening on http://{host}:{port} table={router.table and router.table.digest}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: reload(router, sources))
    await stop.wait()
    # Stop accepting, let requests in flight finish, then close upstream sessions.
    await runner.cleanup()


def reload(router: Router, sources: Sources) -> None:
    try:
        table, credentials = sources.load()
    except (TableError, EnvConfigError) as exc:
        router.metrics.table_loads.labels("rejected").inc()
        log.error("new routing table rejected, still serving the last good one: %s", exc)
        return
    router.load(table, credentials)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level, handlers=[handler])
    sources = Sources(args.config, args.env_file, args.credentials_dir)
    try:
        table, credentials = sources.load()
    except (TableError, EnvConfigError) as exc:
        print(f"switchyard-router: {exc}", file=sys.stderr)
        return 2
    router = Router()
    router.load(table, credentials)
    handler.addFilter(RedactingFilter(router.redactor))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        pass
    asyncio.run(serve(router, sources, args.host, args.port))
    return 0
