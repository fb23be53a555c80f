"""The image as it ships: the real Dockerfile built, and run as Kubernetes runs the injected router.

Built by `image/build.sh` (`make image`; buildah, no Docker engine) and run by runc under the
securityContext the webhook gives the router: uid 10001, read-only root filesystem, no
capabilities. A chatbot with the official OpenAI SDK, in the network namespace the router and the
simulator share (a pod's), calls the router, which calls the simulator: all three from the image
but the SDK. Needs root, buildah, debootstrap and runc: skipped when buildah is absent, unless
SWITCHYARD_REQUIRE_IMAGE=1 (CI), which turns every reason to skip into a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from switchyard_operator.webhook import CREDENTIALS_DIR, TABLE_DIR, SidecarSettings, sidecar_container

from .image_runtime import (
    ROOT,
    Mount,
    Runtime,
    build,
    image_config,
    missing_tools,
    mounted_rootfs,
    tree_bytes,
)

REQUIRED = os.environ.get("SWITCHYARD_REQUIRE_IMAGE") == "1"
# A first build on a machine makes the Debian base too (about two minutes in all).
pytestmark = pytest.mark.timeout(900)
# What the application adds to its base: the venv with Switchyard and its dependencies.
VENV = "opt/switchyard"
VENV_BUDGET_MB = 100  # 69 MB in December 2026; the kubernetes client alone would add 126


def skip_reason() -> str | None:
    if "buildah" in missing_tools():
        return "buildah is not installed (apt-get install buildah debootstrap runc: .ci/run does)"
    if os.geteuid() != 0:
        return "buildah (vfs storage) and runc need root here"
    return None


@pytest.fixture(scope="module")
def image() -> str:
    reason = skip_reason()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"SWITCHYARD_REQUIRE_IMAGE=1, but {reason}")
        pytest.skip(reason)
    assert not missing_tools(), f"install {' '.join(missing_tools())} (apt-get; .ci/run does)"
    return build()


@pytest.fixture(scope="module")
def rootfs(image: str) -> Iterator[Path]:
    with mounted_rootfs(image) as path:
        yield path


@pytest.fixture
def runtime(image: str, rootfs: Path, tmp_path: Path) -> Iterator[Runtime]:
    # The securityContext the webhook gives the injected router, as the runtime enforces it.
    security = sidecar_container("demo", SidecarSettings())["securityContext"]
    rt = Runtime(rootfs, image_config(image), security, tmp_path / "runc", tmp_path / "bundles")
    yield rt
    rt.close()


def test_the_image_runs_as_10001_on_a_read_only_root(image: str, runtime: Runtime) -> None:
    assert image_config(image)["User"] == "10001:10001"
    assert runtime.security["readOnlyRootFilesystem"] is True
    probe = (
        "import os, json\n"
        "root = next(line.split()[3] for line in open('/proc/self/mounts') if line.split()[1] == '/')\n"
        "open('/tmp/scratch', 'w').write('ok')\n"
        "try:\n    open('/opt/switchyard/x', 'w'); wrote = True\n"
        "except OSError as exc:\n    wrote = exc.strerror\n"
        "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'root': root.split(','), 'wrote': wrote}))\n"
    )
    code, out, err = asyncio.run(runtime.run("probe", ["python", "-c", probe]))
    assert code == 0, err
    seen = json.loads(out)
    assert (seen["uid"], seen["gid"]) == (10001, 10001)
    assert "ro" in seen["root"]
    assert seen["wrote"] == "Read-only file system"


def test_operator_help(runtime: Runtime) -> None:
    code, out, err = asyncio.run(runtime.run("operator", ["switchyard-operator", "--help"]))
    assert code == 0, err
    assert out.startswith("usage: switchyard-operator")
    assert "--webhook" in out


def test_the_operator_logs_in_with_its_service_account_without_the_kubernetes_client(
    runtime: Runtime, tmp_path: Path
) -> None:
    """The image leaves the kubernetes client out; in a pod the operator needs none of it."""
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    for name, text in (("token", "sa-token-in-image"), ("namespace", "switchyard"), ("ca.crt", "")):
        (sa / name).write_text(text)
    probe = (
        "import importlib.util, json, logging, os, kopf\n"
        "from switchyard_operator.login import connection\n"
        "info = connection(kopf.OperatorSettings(), logging.getLogger(), os.environ)\n"
        "print(json.dumps([importlib.util.find_spec('kubernetes') is None, info.server, info.token,"
        " info.default_namespace]))\n"
    )
    code, out, err = asyncio.run(runtime.run(
        "login", ["python", "-c", probe],
        env={"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
        mounts=[Mount(sa, "/var/run/secrets/kubernetes.io/serviceaccount")],
    ))
    assert code == 0, err
    assert json.loads(out) == [True, "https://10.96.0.1:443", "sa-token-in-image", "switchyard"]


def demo_keys() -> dict[str, str]:
    """The samples' demo providers name their keys; compile takes missing ones from the environment."""
    keys = {}
    for doc in yaml.safe_load_all((ROOT / "samples" / "demo" / "providers.yaml").read_text()):
        for cred in doc["spec"]["credentials"]:
            name = cred["secretKeyRef"]["key"]
            keys[name] = f"test-{name.lower().replace('_', '-')}-0123456789"
    return keys


def test_compile_the_samples(runtime: Runtime) -> None:
    samples = [Mount(ROOT / "samples", "/samples")]
    code, out, err = asyncio.run(runtime.run("compile", ["switchyard", "compile", "-f", "/samples"], mounts=samples))
    assert code == 0, err
    docs = [d for d in yaml.safe_load_all(out) if d]
    tables = {d["metadata"]["name"]: yaml.safe_load(d["data"]["table.yaml"]) for d in docs if d["kind"] == "ConfigMap"}
    policies = [d["metadata"]["name"] for d in yaml.safe_load_all((ROOT / "samples" / "policy.yaml").read_text())
                if d and d["kind"] == "RoutingPolicy"]
    assert sorted(tables) == sorted(f"{p}-routes" for p in policies)
    assert all(t["routes"] for t in tables.values())


CHATBOT = """
import json, sys, urllib.request
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1] + "/v1", api_key="the-router-holds-the-keys", max_retries=0)
raw = client.chat.completions.with_raw_response.create(
    model=sys.argv[2], messages=[{"role": "user", "content": "Hello from the pod"}])
reply = raw.parse()
metrics = urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=10).read().decode()
print(json.dumps({"provider": raw.headers.get("x-switchyard-provider"),
                  "content": reply.choices[0].message.content, "metrics": metrics}))
"""


async def chatbot(network_of: int, router: str, route: str) -> dict[str, Any]:
    """The official SDK in the pod's network namespace, as the chatbot container would be."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    process = await asyncio.create_subprocess_exec(
        "nsenter", f"--net=/proc/{network_of}/ns/net", sys.executable, "-c", CHATBOT, router, route,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


def test_the_router_serves_a_request_through_the_simulator(runtime: Runtime, tmp_path: Path) -> None:
    asyncio.run(serve_through_the_simulator(runtime, tmp_path))


async def serve_through_the_simulator(runtime: Runtime, tmp_path: Path) -> None:
    # `switchyard compile` in the image writes the demo's table and keys, as README says.
    out = tmp_path / "compiled"
    out.mkdir()
    os.chown(out, 10001, 10001)
    keys = demo_keys()
    code, _, err = await runtime.run(
        "compile-demo", ["switchyard", "compile", "-f", "/samples/demo", "--output-dir", "/out",
                         "--allow-endpoint", "http://127.0.0.1:9100"],
        env=keys, mounts=[Mount(ROOT / "samples", "/samples"), Mount(out, "/out", writable=True)],
    )
    assert code == 0, err
    table = yaml.safe_load((out / "table.yaml").read_text())
    route = table["routes"][0]
    first = route["targets"][0]["provider"]

    # The pod: the simulator (the demo's providers point at its default port) owns the network
    # namespace, the router joins it with the webhook's command, mounts and security context.
    sim = await runtime.start("sim", ["switchyard", "sim"])
    router = None
    try:
        assert b"listening on" in await sim.line(), (await sim.stop())[1]
        injected = sidecar_container("demo", SidecarSettings(health_port=None))
        args = [a for a in injected["args"] if a != "--policy" and a != "demo"]  # no API: files only
        router = await runtime.start(
            "router", [*injected["command"], *args], join_network_of=sim.pid,
            mounts=[Mount(out, TABLE_DIR), Mount(out / "credentials", CREDENTIALS_DIR)],
        )
        assert b"listening" in await router.line(), (await router.stop())[1]
        port = args[args.index("--port") + 1]
        seen = await chatbot(sim.pid, f"http://127.0.0.1:{port}", route["name"])
        assert seen["provider"] == first
        assert seen["content"]
        served = re.findall(r'^switchyard_requests_total\{(.*)\} (\S+)$', seen["metrics"], re.M)
        assert any(f'route="{route["name"]}"' in labels and float(n) >= 1 for labels, n in served), served
    finally:
        if router is not None:
            code, err = await router.stop()
            assert code == 0, err.decode()[-3000:]
            for key in keys.values():
                assert key.encode() not in err
        await sim.stop()


def test_the_image_stays_small(rootfs: Path) -> None:
    venv = tree_bytes(rootfs / VENV) / 1e6
    total = tree_bytes(rootfs) / 1e6
    assert venv < VENV_BUDGET_MB, f"/{VENV} is {venv:.0f} MB of {total:.0f} MB: see what grew"
