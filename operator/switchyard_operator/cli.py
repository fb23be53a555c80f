"""`switchyard-operator`: run the Switchyard operator (kopf) against the current cluster."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import kopf
from switchyard_router import tracing

DESCRIPTION = """\
Compile LLMProvider and RoutingPolicy resources into the routers' ConfigMap and Secret,
probe providers' health and report it in their status.

Logs in with the standard kubeconfig ($KUBECONFIG or ~/.kube/config) or, inside a Pod,
with its service account. Several replicas coordinate through a kopf peering object
(crds/kopf.dev_peerings.yaml and samples/peering.yaml): only the highest-priority one
handles resources. --standalone skips peering (a single replica, or development).
"""


DEFAULT_PEERING = "switchyard"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="switchyard-operator",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], metavar="NS",
        help="serve this namespace (repeatable; globs such as team-* work)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="serve the whole cluster")
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--peering", default=None, metavar="NAME",
        help="peering object for high availability (default: switchyard); a KopfPeering per "
        "namespace, or a ClusterKopfPeering with --all-namespaces",
    )
    peering.add_argument("--standalone", action="store_true", help="run without peering")
    parser.add_argument("--priority", type=int, default=0, help="peering priority of this replica")
    parser.add_argument(
        "--liveness", metavar="URL", help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument(
        "--metrics-port", type=int, metavar="PORT",
        help="serve Prometheus metrics (provider spend, budget, health) on this port",
    )
    parser.add_argument(
        "--webhook", type=Path, metavar="CONFIG",
        help="also serve the sidecar-injection webhook, configured by this YAML file (see webhook.py)",
    )
    parser.add_argument(
        "--allow-endpoint", action="append", default=[], metavar="URL",
        help="also let keys go to baseURLs under this URL prefix (repeatable), e.g. "
        "https://llm-proxy.corp.example, http://vllm.models.svc:8000, https://*.openai.azure.com, "
        "http://127.0.0.1:*; each type's official https host needs no entry (docs/security.md)",
    )
    parser.add_argument(
        "--log-format", choices=["text", "json"], default="text",
        help="json: one object a line, as kopf writes them, for a log pipeline",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more logs")
    parser.add_argument("--debug", action="store_true", help="debug logs")
    args = parser.parse_args(argv)
    if args.standalone and args.priority:
        # kopf ignores priorities without peering: a replica set up to lose an election would
        # handle resources next to the winner.
        parser.error("argument --priority: not allowed with argument --standalone (no peering, no priority)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from . import handlers  # noqa: F401  registers the handlers
    from .endpoints import EndpointError, EndpointPolicy

    try:
        endpoints = EndpointPolicy.parse(args.allow_endpoint)
    except EndpointError as exc:
        print(f"switchyard-operator: --allow-endpoint: {exc}", file=sys.stderr)
        return 2
    try:  # reconciles and probes traced when an OTLP endpoint is set (OTEL_* variables)
        tracing.configure(service="switchyard-operator")
    except tracing.TracingConfigError as exc:
        print(f"switchyard-operator: {exc}", file=sys.stderr)
        return 2

    if args.webhook is not None:
        from .webhook import WebhookConfig, register

        register(kopf.get_default_registry(), WebhookConfig.load(args.webhook))

    if args.metrics_port:
        from .metrics import serve

        serve(args.metrics_port)
    log_format = kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL
    # JSON lines name the resource each message is about (under "k8s").
    refkey = "k8s" if args.log_format == "json" else None
    kopf.configure(verbose=args.verbose, debug=args.debug, log_format=log_format, log_refkey=refkey)
    asyncio.run(
        kopf.operator(
            clusterwide=args.all_namespaces,
            namespaces=args.namespace,
            # kopf makes peering mandatory whenever a name is passed, even with standalone=True
            # (every watch then waits for a peering object that is never looked for).
            peering_name=None if args.standalone else (args.peering or DEFAULT_PEERING),
            standalone=args.standalone,
            priority=args.priority,
            liveness_endpoint=args.liveness,
            memo=kopf.Memo(connection=None, endpoints=endpoints),
        )
    )
    tracing.stop()  # the spans still buffered go out
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
