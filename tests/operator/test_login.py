"""The operator's login: a pod's ServiceAccount without the kubernetes client, a kubeconfig with
or without it, and a clear refusal when neither gives a credential."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import kopf
import pytest
import yaml
from switchyard_operator import login

LOG = logging.getLogger("test")
IN_CLUSTER = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def account(tmp_path: Path, token: str = "sa-token-0001\n") -> Path:
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    (folder / "token").write_text(token)
    (folder / "namespace").write_text("switchyard\n")
    (folder / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return folder


def kubeconfig(tmp_path: Path, user: dict[str, object]) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "c", "cluster": {"server": "https://api.example.test:6443"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "team"}}],
        "users": [{"name": "u", "user": user}],
    }))
    return path


@pytest.fixture
def outside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Not in a pod, no kubeconfig yet: a home of our own."""
    for name in (*IN_CLUSTER, "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_in_a_pod_the_service_account_without_the_kubernetes_client(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(login, "has_client", lambda: pytest.fail("the client is not needed in a pod"))
    info = login.connection(kopf.OperatorSettings(), LOG, IN_CLUSTER, account(tmp_path))
    assert info.server == "https://10.96.0.1:443"
    assert info.token == "sa-token-0001"
    assert info.default_namespace == "switchyard"
    assert info.ca_path == str(tmp_path / "serviceaccount" / "ca.crt")


def test_an_ipv6_service_address_is_bracketed(tmp_path: Path):
    env = {"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443"}
    info = login.in_cluster(kopf.OperatorSettings(), env, account(tmp_path))
    assert info is not None and info.server == "https://[fd00:10:96::1]:443"


def test_no_token_file_is_not_a_pod(tmp_path: Path):
    assert login.in_cluster(kopf.OperatorSettings(), IN_CLUSTER, tmp_path / "none") is None
    assert login.in_cluster(kopf.OperatorSettings(), {}, account(tmp_path)) is None


def test_a_kubeconfig_token_without_the_client(outside: Path, monkeypatch):
    monkeypatch.setattr(login, "has_client", lambda: False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(outside, {"token": "kc-token-0002"})))
    info = login.connection(kopf.OperatorSettings(), LOG, {}, outside / "none")
    assert (info.server, info.token, info.default_namespace) == ("https://api.example.test:6443", "kc-token-0002", "team")


def test_an_exec_plugin_without_the_client_is_refused_with_the_fix(outside: Path, monkeypatch):
    monkeypatch.setattr(login, "has_client", lambda: False)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws"}}
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(outside, user)))
    with pytest.raises(kopf.LoginError, match=r"exec or auth-provider plugins: pip install 'switchyard\[operator,kubeconfig\]'"):
        login.connection(kopf.OperatorSettings(), LOG, {}, outside / "none")


def test_neither_a_pod_nor_a_kubeconfig(outside: Path, monkeypatch):
    monkeypatch.setattr(login, "has_client", lambda: False)
    with pytest.raises(kopf.LoginError, match=r"not in a pod.*set KUBECONFIG"):
        login.connection(kopf.OperatorSettings(), LOG, {}, outside / "none")


def test_an_exec_plugin_with_the_client_runs_the_plugin(outside: Path):
    """With the `kubeconfig` extra the kubernetes client runs the plugin, in a fresh process (it
    reads KUBECONFIG when imported)."""
    assert login.has_client(), "the test extra installs the kubeconfig extra"
    credential = {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"token": "exec-token-0003"}}
    plugin = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
                       "args": ["-c", f"print({json.dumps(json.dumps(credential))})"]}}
    script = (
        "import json, logging, kopf\n"
        "from switchyard_operator.login import connection\n"
        "info = connection(kopf.OperatorSettings(), logging.getLogger(), {})\n"
        "print(json.dumps([info.server, info.token]))\n"
    )
    env = {"KUBECONFIG": str(kubeconfig(outside, plugin)), "HOME": str(outside), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ["https://api.example.test:6443", "exec-token-0003"]
