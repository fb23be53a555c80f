"""Lint the chart and install it against the emulated API; print the results as JSON.

    HELM_DRIVER=memory python -m tests.delivery.helm_render CASES.json

Runs in its own process: Helm's Go library reads HELM_DRIVER from the environment the process
starts with (memory keeps releases out of protobuf Secrets, which kmock cannot parse). The
emulated API server (tests/operator/emulator.py) runs in this process's event loop, next to
helm-sdkpy's calls (which run in threads). CASES.json: {"cases": [{"name", "namespace",
"values"}]}. Output: {"lint": ..., "cases": {name: {"manifest": str, "stored": [objects]}}}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import helm_sdkpy
from kmock import ResourceInfo, Server

from tests.operator.emulator import Emulator

CHART = Path(__file__).resolve().parents[2] / "helm" / "switchyard"
VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}

# Kinds the chart creates beyond the bundled Kubernetes ones: its CRDs' and optional add-ons'.
CUSTOM = [
    ("switchyard.dev/v1alpha1", "llmproviders", "LLMProvider", True),
    ("switchyard.dev/v1alpha1", "routingpolicies", "RoutingPolicy", True),
    ("kopf.dev/v1", "kopfpeerings", "KopfPeering", True),
    ("kopf.dev/v1", "clusterkopfpeerings", "ClusterKopfPeering", False),
    ("monitoring.coreos.com/v1", "servicemonitors", "ServiceMonitor", True),
    ("monitoring.coreos.com/v1", "podmonitors", "PodMonitor", True),
    ("monitoring.coreos.com/v1", "prometheusrules", "PrometheusRule", True),
    ("cert-manager.io/v1", "issuers", "Issuer", True),
    ("cert-manager.io/v1", "certificates", "Certificate", True),
]


class ChartEmulator(Emulator):
    """Reports Kubernetes 1.32 (kmock: 1.26; native sidecars need 1.29) and the core group as v1."""

    async def _serve_server_version(self, request: Any) -> dict[str, str]:
        return {
            "major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "", "gitTreeState": "clean",
            "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.3", "compiler": "gc",
            "platform": "linux/amd64",
        }


    async def _serve_version(self, request: Any) -> Any:
        # kmock names the core group's version "/v1"; clients (Helm's REST mapper) want "v1".
        payload = await super()._serve_version(request)
        if isinstance(payload, dict) and payload.get("groupVersion") == "/v1":
            payload["groupVersion"] = "v1"
        return payload


def kubeconfig(url: str) -> str:
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulated", "cluster": {"server": url}}],
        "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "tests"}}],
        "users": [{"name": "tests", "user": {"token": "tests"}}],
        "current-context": "emulated",
    })


def stored_objects(emulator: Emulator) -> list[dict[str, Any]]:
    out = []
    for key in list(emulator.objects):
        obj = emulator.objects[key]
        if not obj.deleted:
            out.append(dict(obj.raw))
    return out


async def run(cases: list[dict[str, Any]]) -> dict[str, Any]:
    results: dict[str, Any] = {"cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for index, case in enumerate(cases):
            emulator = ChartEmulator()
            emulator.resources.load_bundled()
            for group_version, plural, kind, namespaced in CUSTOM:
                emulator.resources[f"{group_version}/{plural}"] = ResourceInfo(
                    kind=kind, singular=kind.lower(), namespaced=namespaced, verbs=VERBS,
                    subresources={"status"} if group_version.startswith("switchyard") else set(),
                )
            async with emulator, Server(emulator):
                config_path = Path(tmp) / f"kubeconfig-{index}.json"
                config_path.write_text(kubeconfig(str(emulator.url)))
                config = helm_sdkpy.Configuration(namespace=case["namespace"], kubeconfig=str(config_path))
                if index == 0:
                    results["lint"] = await helm_sdkpy.Lint(config).run(str(CHART))
                try:
                    release = await helm_sdkpy.Install(config).run(
                        case["name"], str(CHART), values=case["values"],
                        create_namespace=False, wait=False, timeout=60,
                    )
                except helm_sdkpy.exceptions.HelmError as exc:
                    results["cases"][case["name"]] = {"error": str(exc)}
                    continue
                results["cases"][case["name"]] = {
                    "manifest": release.get("manifest", ""),
                    "stored": stored_objects(emulator),
                }
    return results


def main() -> int:
    if os.environ.get("HELM_DRIVER") != "memory":
        print("run with HELM_DRIVER=memory in the environment", file=sys.stderr)
        return 2
    cases = json.loads(Path(sys.argv[1]).read_text())["cases"]
    print(json.dumps(asyncio.run(run(cases)), default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
