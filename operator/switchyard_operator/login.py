"""The operator's login to the API server, without the kubernetes client where it is not needed.

The kubernetes client is most of the image (126 of 204 MB installed) and a pod needs none of
it: in a pod the operator reads its ServiceAccount's token, CA and namespace and finds the API
server in KUBERNETES_SERVICE_HOST/PORT, as the client does. Outside a pod it reads the kubeconfig:
with the client when it is installed (the `kubeconfig` extra: exec and auth-provider plugins such
as EKS's, GKE's or OIDC's), else with kopf's reader (tokens, client certificates, CA files or data).
A kubeconfig whose user kopf's reader finds no credential in is refused with that fix.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import kopf

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EXTRA = "pip install 'switchyard[operator,kubeconfig]'"


def has_client() -> bool:
    return importlib.util.find_spec("kubernetes") is not None


def in_cluster(
    settings: kopf.OperatorSettings, environ: Mapping[str, str], account: Path = SERVICE_ACCOUNT
) -> kopf.ConnectionInfo | None:
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token = account / "token"
    if not host or not port or not token.exists():
        return None
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    ca, namespace = account / "ca.crt", account / "namespace"
    return kopf.ConnectionInfo(
        server=f"https://{host}:{port}",
        ca_path=str(ca) if ca.exists() else None,
        token=token.read_text().strip() or None,
        default_namespace=(namespace.read_text().strip() or None) if namespace.exists() else None,
        trust_env=settings.networking.trust_env,
    )


def connection(
    settings: kopf.OperatorSettings,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
    environ: Mapping[str, str] = os.environ,
    account: Path = SERVICE_ACCOUNT,
) -> kopf.ConnectionInfo:
    """In a pod, its ServiceAccount; elsewhere the kubeconfig. kopf logs in again on a 401, which
    reads the (rotated) token file anew."""
    info = in_cluster(settings, environ, account)
    if info is not None:
        return info
    if has_client():
        client: kopf.ConnectionInfo | None = kopf.login_via_client(logger=logger, settings=settings)
        if client is not None:
            return client
    info = kopf.login_with_kubeconfig(settings=settings)
    if info is None:
        raise kopf.LoginError(
            f"no ServiceAccount token in {account} (not in a pod) and no kubeconfig: "
            "set KUBECONFIG or create ~/.kube/config"
        )
    if not (info.token or info.certificate_path or info.certificate_data or info.username):
        raise kopf.LoginError(
            "the kubeconfig's current user has no token, client certificate or password that "
            f"switchyard-operator can read; for exec or auth-provider plugins: {EXTRA}"
        )
    return info
