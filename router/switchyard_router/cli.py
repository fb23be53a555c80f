"""`switchyard-router`: serve the OpenAI-compatible API, keep the table current, report spend."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from . import tracing
from .callers import CallerConfigError, check_exposure, load_tokens
from .egress import Egress
from .envconfig import EnvConfigError
from .kube import KubeClient, KubeConfig
from .redact import RedactingFilter
from .reload import APIWatch, cancel, reload_from, start, watch_files
from .reporting import UsagePublisher
from .server import Router
from .sources import Sources
from .table import TableError
from .tracing import TracingConfigError

log = logging.getLogger("switchyard.router")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="switchyard-router",
        description="OpenAI-compatible router over many LLM providers. Without --config the "
        "routing table comes from environment variables (see .env.example).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument("--config", type=Path, help="routing table as YAML (or the operator's ConfigMap)")
    p.add_argument("--env-file", type=Path, help="environment file (default: .env when present)")
    p.add_argument("--credentials-dir", type=Path, help="directory with one file per API key")
    p.add_argument(
        "--credentials-from-api",
        action="store_true",
        help="with --policy: read the keys from <policy>-credentials through the API",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--log-format",
        default=os.environ.get("SWITCHYARD_LOG_FORMAT", "text"),
        choices=["text", "json"],
        help="json: one object a line (time, level, logger, message) for a log pipeline",
    )
    p.add_argument("--health-port", type=int, help="also serve /healthz, /readyz, /metrics on this port")
    p.add_argument(
        "--health-host",
        default="0.0.0.0",
        help="address of the health port (default: 0.0.0.0; the injected sidecar passes the pod IP)",
    )
    p.add_argument("--watch-interval", type=float, default=1.0, help="seconds between file checks")
    p.add_argument(
        "--policy",
        default=os.environ.get("SWITCHYARD_POLICY"),
        help="RoutingPolicy served: with API access, watch <policy>-routes and <policy>-credentials",
    )
    p.add_argument(
        "--report-interval",
        type=float,
        default=15.0,
        help="seconds between the operator's pulls of /usage on the health port (default: 15)",
    )
    p.add_argument(
        "--final-report-wait",
        type=float,
        default=10.0,
        help="on a stop, seconds to keep the health port open until the operator has pulled the "
        "final usage report (only when it pulled within the last 10 intervals; default: 10)",
    )
    p.add_argument("--kube-api", help="API server URL (default: in-cluster service account)")
    p.add_argument(
        "--kube-namespace", default=os.environ.get("POD_NAMESPACE"), help="namespace for --kube-api"
    )
    p.add_argument("--kube-token-file", type=Path, help="bearer token file for --kube-api")
    p.add_argument(
        "--exact-tokens",
        action="store_true",
        help="count prompts with tiktoken near a context window (costs memory per encoding)",
    )
    p.add_argument("--caller-tokens-file", type=Path, help="tokens callers must send (one per line)")
    p.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="listen on a non-loopback address without caller tokens (not recommended)",
    )
    args = p.parse_args(argv)
    if args.log_format not in ("text", "json"):  # argparse checks a flag's value, not a default
        p.error(f"SWITCHYARD_LOG_FORMAT={args.log_format!r} is invalid: expected text or json")
    if args.env_file is None and Path(".env").exists():
        args.env_file = Path(".env")
    return args


def kube_config(args: argparse.Namespace) -> KubeConfig | None:
    if args.kube_api:
        return KubeConfig(args.kube_api, args.kube_namespace or "default", args.kube_token_file)
    return KubeConfig.in_cluster(dict(os.environ))


async def serve(router: Router, sources: Sources, args: argparse.Namespace) -> None:
    api = router.runner()
    await api.setup()
    await web.TCPSite(api, args.host, args.port, backlog=1024).start()
    publisher = UsagePublisher(router)
    health = None
    if args.health_port:
        health = router.health_runner({"/usage": publisher.handle})
        await health.setup()
        await web.TCPSite(health, args.health_host, args.health_port).start()
    digest = router.table.digest if router.table else None
    # Everything built so far (modules, the table, the app) lives as long as the process: keep
    # it out of the collector's scans, which would otherwise walk it again and again under load.
    gc.freeze()
    print(f"switchyard-router listening on http://{args.host}:{args.port} table={digest}", flush=True)

    background: list[Coroutine[Any, Any, None]] = []
    config = kube_config(args)
    kube = KubeClient(config) if config and args.policy else None
    load = sources.load
    if kube is not None:
        follower = APIWatch(
            router,
            kube,
            args.policy,
            config=args.config,
            credentials_dir=args.credentials_dir,
            credentials_from_api=args.credentials_from_api,
        )
        load = follower.load
        background.append(follower.run())
    if sources.config is not None or sources.credentials_dir is not None:
        background.append(watch_files(router, sources, args.watch_interval, load))
    tasks = start(background)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: reload_from(router, load, "SIGHUP"))
    await stop.wait()
    await cancel(tasks)
    # Stop accepting, let requests in flight finish, then hand the final total to the operator.
    await api.cleanup()
    publisher.finish()
    if health is not None:
        # An operator that pulled within its stale window is likely up (or failing over): wait.
        pulled = publisher.recently_pulled(10 * args.report_interval)
        if pulled and not await publisher.hand_over(args.final_report_wait):
            log.error(
                "the operator did not pull the final usage report within %gs: what was served "
                "since its last pull is lost",
                args.final_report_wait,
            )
        await health.cleanup()
    if kube is not None:
        await kube.close()


def log_handler(log_format: str) -> logging.Handler:
    handler = logging.StreamHandler()
    if log_format == "json":
        from pythonjsonlogger.orjson import OrjsonFormatter

        names = {"levelname": "level", "name": "logger"}
        handler.setFormatter(
            OrjsonFormatter("{levelname}{name}{message}", style="{", timestamp="time", rename_fields=names)
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handler = log_handler(args.log_format)
    logging.basicConfig(level=args.log_level, handlers=[handler])
    # Following a policy, keys come from its credentials only, never from the environment.
    sources = Sources(args.config, args.env_file, args.credentials_dir, keys_from_env=not args.policy)
    try:
        env = sources.environment()
        tokens = load_tokens(args.caller_tokens_file, env)
        egress = Egress(env)
        check_exposure(args.host, tokens, args.allow_unauthenticated)
        # Following a policy through the API, the table (or the keys) arrive by the watch:
        # start not ready.
        api = bool(args.policy) and kube_config(args) is not None
        if args.policy and not api and (args.config is None or args.credentials_from_api):
            needs = "its table: give --config FILE, or" if args.config is None else "its keys from"
            raise EnvConfigError(
                f"--policy {args.policy} needs {needs} API access (in-cluster, or --kube-api URL)"
            )
        tracing.configure()  # the SDK is imported only when an OTLP endpoint is set
        loaded = None if api and (args.config is None or args.credentials_from_api) else sources.load()
    except (TableError, EnvConfigError, CallerConfigError, TracingConfigError) as exc:
        print(f"switchyard-router: {exc}", file=sys.stderr)
        return 2
    router = Router(caller_tokens=tokens, policy=args.policy, exact_tokens=args.exact_tokens, egress=egress)
    if loaded is not None:
        router.load(*loaded)
    handler.addFilter(RedactingFilter(router.redactor))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        pass
    asyncio.run(serve(router, sources, args))
    tracing.stop()  # the spans still buffered go out
    return 0
