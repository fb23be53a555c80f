"""Sidecar injection as a pure function: pod in, mutated pod out (no cluster)."""

from __future__ import annotations

import copy
import shlex
from typing import Any

import jsonpatch
import pytest
from switchyard_operator.models import CredentialsDelivery
from switchyard_operator.webhook import (
    BASE_URL_ANNOTATION,
    INJECTED_ANNOTATION,
    POLICY_ANNOTATION,
    PORT_ANNOTATION,
    InjectionError,
    SidecarSettings,
    WebhookConfig,
    inject_sidecar,
    policy_of,
)

SETTINGS = SidecarSettings(image="registry.example/switchyard:1.2.3")


def pod(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "chatbot-", "annotations": {POLICY_ANNOTATION: "chatbot", **(annotations or {})}},
        "spec": {"containers": [{"name": "app", "image": "chatbot:1"}], **spec},
    }


def sidecar(p: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = p["spec"]["initContainers"][0]
    return first


def test_native_sidecar_with_args_env_and_mounts() -> None:
    original = pod()
    out = inject_sidecar(original, "chatbot", SETTINGS)
    assert original == pod(), "the input is not mutated"
    router = sidecar(out)
    assert router["name"] == "switchyard-router"
    assert router["restartPolicy"] == "Always"  # native sidecar
    assert router["image"] == "registry.example/switchyard:1.2.3"
    assert router["command"] == ["switchyard-router"]
    assert shlex.join(router["args"][:10]) == (
        "--host 127.0.0.1 --port 8080 --config /etc/switchyard/table/table.yaml "
        "--credentials-dir /etc/switchyard/credentials --policy chatbot"
    )
    env = {e["name"]: e for e in router["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["SWITCHYARD_POLICY"]["value"] == "chatbot"
    mounts = {m["mountPath"]: m for m in router["volumeMounts"]}
    assert set(mounts) == {"/etc/switchyard/table", "/etc/switchyard/credentials"}
    assert all(m["readOnly"] and "subPath" not in m for m in mounts.values()), "subPath blocks updates"
    volumes = {v["name"]: v for v in out["spec"]["volumes"]}
    assert volumes[mounts["/etc/switchyard/table"]["name"]]["configMap"] == {"name": "chatbot-routes"}
    assert volumes[mounts["/etc/switchyard/credentials"]["name"]]["secret"] == {"secretName": "chatbot-credentials"}
    assert router["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"}
    assert out["metadata"]["annotations"][INJECTED_ANNOTATION] == "chatbot"
    assert out["metadata"]["labels"] == {"switchyard.dev/policy": "chatbot"}
    assert router["ports"] == [{"name": "router-health", "containerPort": 9464, "protocol": "TCP"}]
    assert router["args"][-4:] == ["--health-host", "$(POD_IP)", "--health-port", "9464"]
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


def test_the_settings_env_comes_last_and_bad_names_are_refused() -> None:
    proxied = SidecarSettings(env=[{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}])
    router = sidecar(inject_sidecar(pod(), "chatbot", proxied))
    assert router["env"][-1] == {"name": "HTTPS_PROXY", "value": "http://proxy:3128"}
    assert [e["name"] for e in router["env"][:-1]] == ["POD_NAME", "POD_NAMESPACE", "POD_IP", "SWITCHYARD_POLICY"]
    with pytest.raises(ValueError, match=r"env\.0\.name"):
        SidecarSettings(env=[{"name": "HTTPS PROXY", "value": "x"}])


def test_a_trust_bundle_is_mounted_and_named_in_ssl_cert_file() -> None:
    trusted = SidecarSettings(trustBundle={"configMap": "corp-ca", "key": "bundle.pem"})
    out = inject_sidecar(pod(), "chatbot", trusted)
    router = sidecar(out)
    assert {"name": "SSL_CERT_FILE", "value": "/etc/switchyard/trust/bundle.pem"} in router["env"]
    assert {"name": "switchyard-trust", "mountPath": "/etc/switchyard/trust", "readOnly": True} in router["volumeMounts"]
    assert {"name": "switchyard-trust", "configMap": {"name": "corp-ca"}} in out["spec"]["volumes"]
    clashing = pod()
    clashing["spec"]["volumes"] = [{"name": "switchyard-trust", "emptyDir": {}}]
    with pytest.raises(InjectionError, match="switchyard-trust"):
        inject_sidecar(clashing, "chatbot", trusted)
    with pytest.raises(ValueError, match="configMap"):
        SidecarSettings(trustBundle={"configMap": "Not A Name"})


def test_security_context_is_locked_down() -> None:
    context = sidecar(inject_sidecar(pod(), "chatbot", SETTINGS))["securityContext"]
    assert context == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_probes_use_the_health_listener_on_the_pod_ip() -> None:
    router = sidecar(inject_sidecar(pod(), "chatbot", SETTINGS))
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert router[probe]["httpGet"] == {"path": path, "port": "router-health", "scheme": "HTTP"}
    assert router["startupProbe"]["periodSeconds"] * router["startupProbe"]["failureThreshold"] >= 30
    # The API itself stays on loopback.
    assert router["args"][:2] == ["--host", "127.0.0.1"]


def test_loopback_only_probes_run_inside_the_pod() -> None:
    router = sidecar(inject_sidecar(pod(), "chatbot", SidecarSettings(healthPort=None)))
    assert "ports" not in router and "--health-port" not in router["args"]
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        spec = router[probe]
        assert "httpGet" not in spec and "tcpSocket" not in spec, "kubelet would dial the pod IP"
        command = spec["exec"]["command"]
        assert command[:4] == ["python", "-I", "-S", "-c"]
        assert "'127.0.0.1',8080" in command[4] and f"'{path}'" in command[4]


def test_probe_script_checks_the_status(unused_tcp_port: int) -> None:
    """The exec probe's script itself: exit 0 on 200, non-zero on 503 or nothing listening."""
    import http.server
    import subprocess
    import sys
    import threading

    settings = SidecarSettings(port=unused_tcp_port, healthPort=None)
    script = sidecar(inject_sidecar(pod(), "p", settings))["readinessProbe"]["exec"]["command"][4]
    run = [sys.executable, "-I", "-S", "-c", script]
    assert subprocess.run(run, capture_output=True, timeout=10, check=False).returncode != 0

    class Handler(http.server.BaseHTTPRequestHandler):
        status = 503

        def do_GET(self) -> None:
            self.send_response(Handler.status if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", unused_tcp_port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert subprocess.run(run, capture_output=True, timeout=10, check=False).returncode == 1
        Handler.status = 200
        assert subprocess.run(run, capture_output=True, timeout=10, check=False).returncode == 0
    finally:
        server.shutdown()
        server.server_close()


def test_sidecar_goes_first_and_existing_init_containers_and_volumes_stay() -> None:
    p = pod(initContainers=[{"name": "migrate", "image": "m"}], volumes=[{"name": "data", "emptyDir": {}}])
    out = inject_sidecar(p, "chatbot", SETTINGS)
    assert [c["name"] for c in out["spec"]["initContainers"]] == ["switchyard-router", "migrate"]
    assert [v["name"] for v in out["spec"]["volumes"]] == ["data", "switchyard-table", "switchyard-credentials"]


def test_base_url_added_unless_set_or_opted_out() -> None:
    p = pod()
    p["spec"]["containers"].append({"name": "worker", "image": "w", "env": [{"name": "OPENAI_BASE_URL", "value": "x"}]})
    out = inject_sidecar(p, "chatbot", SETTINGS)
    app, worker = out["spec"]["containers"]
    assert app["env"] == [{"name": "OPENAI_BASE_URL", "value": "http://127.0.0.1:8080/v1"}]
    assert worker["env"] == [{"name": "OPENAI_BASE_URL", "value": "x"}]
    opted_out = inject_sidecar(pod({BASE_URL_ANNOTATION: "false"}), "chatbot", SETTINGS)
    assert "env" not in opted_out["spec"]["containers"][0]


def test_settings_change_port_name_and_resources() -> None:
    settings = SidecarSettings.model_validate(
        {"port": 9090, "containerName": "llm", "resources": {"requests": {"cpu": "10m"}}, "baseUrlEnv": "LLM_URL"}
    )
    out = inject_sidecar(pod(), "p", settings)
    router = sidecar(out)
    assert router["name"] == "llm" and "9090" in router["args"]
    assert router["resources"] == {"requests": {"cpu": "10m"}}
    assert out["spec"]["containers"][0]["env"] == [{"name": "LLM_URL", "value": "http://127.0.0.1:9090/v1"}]
    moved = sidecar(inject_sidecar(pod(), "p", SidecarSettings(healthPort=15020)))
    assert moved["args"][-2:] == ["--health-port", "15020"]
    assert moved["ports"][0]["containerPort"] == 15020


def test_port_clashes_are_refused_and_the_annotation_moves_the_router() -> None:
    busy = pod()
    busy["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    with pytest.raises(InjectionError, match="port 8080 is declared"):
        inject_sidecar(busy, "chatbot", SETTINGS)
    busy["metadata"]["annotations"][PORT_ANNOTATION] = "18080"
    out = inject_sidecar(busy, "chatbot", SETTINGS)
    assert "18080" in sidecar(out)["args"]
    assert out["spec"]["containers"][0]["env"] == [{"name": "OPENAI_BASE_URL", "value": "http://127.0.0.1:18080/v1"}]
    health = pod()
    health["spec"]["containers"][0]["ports"] = [{"containerPort": 9464}]
    with pytest.raises(InjectionError, match="port 9464"):
        inject_sidecar(health, "chatbot", SETTINGS)
    for bad in ("http", "0", "9464"):
        with pytest.raises(InjectionError, match="not a free port"):
            inject_sidecar(pod({PORT_ANNOTATION: bad}), "chatbot", SETTINGS)


def test_a_pod_that_comes_with_any_part_of_the_injection_is_refused() -> None:
    # The operator trusts what admission put into a router pod (its policy, its health port),
    # so nothing of it may come pre-made: a second pass, a forged marker, a look-alike router.
    once = inject_sidecar(pod(), "chatbot", SETTINGS)
    with pytest.raises(InjectionError, match=f"already carries the annotation {INJECTED_ANNOTATION}"):
        inject_sidecar(once, "chatbot", SETTINGS)
    unmarked = copy.deepcopy(once)
    del unmarked["metadata"]["annotations"][INJECTED_ANNOTATION]
    with pytest.raises(InjectionError, match="already carries a container named switchyard-router"):
        inject_sidecar(unmarked, "chatbot", SETTINGS)
    lookalike = pod(containers=[{"name": "app", "image": "chatbot:1"}, {
        "name": "helper", "image": "x", "args": ["--policy", "team-b"],
        "ports": [{"name": "router-health", "containerPort": 9999}]}])
    with pytest.raises(InjectionError, match=r"a port named router-health \(container helper\)"):
        inject_sidecar(lookalike, "chatbot", SETTINGS)
    marked = pod({INJECTED_ANNOTATION: "team-b"})
    with pytest.raises(InjectionError, match=f"keep only the annotation {POLICY_ANNOTATION}"):
        inject_sidecar(marked, "chatbot", SETTINGS)


def test_keys_through_the_api_mount_no_credentials() -> None:
    injected = inject_sidecar(pod(), "chatbot", SETTINGS, CredentialsDelivery.API_WATCH)
    router = sidecar(injected)
    assert "--credentials-from-api" in router["args"] and "--credentials-dir" not in router["args"]
    assert [m["name"] for m in router["volumeMounts"]] == ["switchyard-table"]
    assert [v["name"] for v in injected["spec"]["volumes"]] == ["switchyard-table"]
    # Mounted (the default): into the router's container only, never the app's.
    mounted = inject_sidecar(pod(), "chatbot", SETTINGS)
    assert [m["name"] for m in sidecar(mounted)["volumeMounts"]] == ["switchyard-table", "switchyard-credentials"]
    assert "volumeMounts" not in mounted["spec"]["containers"][0]


def test_json_patch_of_the_difference_reproduces_the_mutation() -> None:
    """What kopf sends back: a JSON patch from the original to the mutated pod."""
    original = pod(initContainers=[{"name": "migrate", "image": "m"}])
    mutated = inject_sidecar(original, "chatbot", SETTINGS)
    ops = jsonpatch.JsonPatch.from_diff(original, mutated)
    assert ops.apply(original) == mutated


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [(None, None), ("", None), ("chatbot", "chatbot"), (" team-a.chat ", "team-a.chat")],
)
def test_policy_annotation(annotation: str | None, expected: str | None) -> None:
    p = pod()
    if annotation is None:
        del p["metadata"]["annotations"][POLICY_ANNOTATION]
    else:
        p["metadata"]["annotations"][POLICY_ANNOTATION] = annotation
    assert policy_of(p) == expected


@pytest.mark.parametrize("bad", ["Chatbot", "chat_bot", "-x", "a" * 250])
def test_bad_policy_names_are_refused(bad: str) -> None:
    with pytest.raises(InjectionError, match="not a RoutingPolicy name"):
        policy_of(pod({POLICY_ANNOTATION: bad}))


def test_host_network_and_volume_clashes_are_refused() -> None:
    with pytest.raises(InjectionError, match="hostNetwork"):
        inject_sidecar(pod(hostNetwork=True), "chatbot", SETTINGS)
    with pytest.raises(InjectionError, match="switchyard-table"):
        inject_sidecar(pod(volumes=[{"name": "switchyard-table", "emptyDir": {}}]), "chatbot", SETTINGS)


def test_config_file_round_trip(tmp_path: Any) -> None:
    path = tmp_path / "webhook.yaml"
    path.write_text(
        "sidecar:\n  image: r/s:1\n  resources: {requests: {cpu: 50m, memory: 64Mi}}\n"
        "server:\n  port: 9443\n  certDir: /certs\n"
    )
    config = WebhookConfig.load(path)
    assert config.sidecar.image == "r/s:1" and config.server.cert_dir == "/certs"
    path.write_text("sidecar: {imag: typo}\n")
    with pytest.raises(ValueError, match="imag"):
        WebhookConfig.load(path)
