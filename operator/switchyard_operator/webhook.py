"""Sidecar injection: a mutating admission webhook that puts the router beside annotated pods.

A pod annotated ``switchyard.dev/policy: <policy>`` gets, at creation:

- the router as a *native sidecar*: an init container with ``restartPolicy: Always`` placed
  first, so it starts (and passes its startup probe) before later init containers and the app,
  keeps running beside them, and stops after them;
- two volumes, mounted into the router's container only: the ConfigMap ``<policy>-routes`` at
  /etc/switchyard/table and the Secret ``<policy>-credentials`` at /etc/switchyard/credentials
  (whole directories, no subPath, so the kubelet's updates reach the router's hot reload). The
  app's containers never see the keys, and the pod's ServiceAccount needs no access to the
  Secret. A policy with ``credentialsDelivery: APIWatch`` gets no credentials volume: its router
  reads the Secret through the API (``--credentials-from-api``);
- ``OPENAI_BASE_URL=http://127.0.0.1:<port>/v1`` in every app container that does not set it,
  unless the pod is annotated ``switchyard.dev/inject-base-url: "false"``;
- the label ``switchyard.dev/policy: <policy>`` (for selectors: PodMonitor, kubectl -l);
- the annotation ``switchyard.dev/injected: <policy>``.

Before any of that, the pod must have the right to the policy: its ServiceAccount must be
allowed the verb ``use`` on the RoutingPolicy (a SubjectAccessReview; the chart's
``routerAccess`` grants it). A pod that arrives already carrying what the webhook adds (the
injected annotation, a container named like the router or declaring its health port) is
refused: the operator pulls usage from such pods and trusts what admission put there, so
nothing may come pre-made. Reviews other than a pod CREATE are refused before kopf sees them
(admission.py): kopf would keep a memory per object of every UPDATE it is sent.

The router's API listens on 127.0.0.1 only: nothing outside the pod may spend its API keys.
Kubelet ``httpGet`` and ``tcpSocket`` probes connect to the pod IP, which a loopback listener
does not answer (``probe.httpGet.host`` is dialled from the node's network namespace, so
127.0.0.1 there is the node). Two correct ways, by ``healthPort``:

- set (default 9464): the router's second listener (``--health-port``, on the pod IP) serves
  only /healthz, /readyz, /metrics and /usage (the operator pulls spend), no API and no keys.
  The kubelet probes it with ``httpGet`` and Prometheus scrapes it (the port is named
  ``router-health``).
- None: nothing but loopback. The probes are ``exec`` probes inside the sidecar: the image's
  Python with ``-I -S`` (no site-packages, about 20 ms) GETs /readyz or /healthz on 127.0.0.1
  with ``http.client``. Metrics then cannot be scraped, nor usage pulled.

Ports are shared by every container of a pod: a pod whose containers declare the router's port
or health port is refused with a message (the ``switchyard.dev/router-port`` annotation moves
the router's API port for that pod).

``inject_sidecar`` is a pure function (pod in, mutated copy out) tested without a cluster. The
kopf part is opt-in: ``register(registry, config)`` adds the mutating handler and a startup
handler that sets ``settings.admission.server`` (``switchyard-operator --webhook CONFIG``).
The chart owns the MutatingWebhookConfiguration (service reference, namespace selector, failure
policy); kopf does not manage it, so two replicas and rolling updates never rewrite or remove
it. Certificates come from cert-manager (mounted files) or from ``certs.py`` (self-managed:
one CA and serving certificate in a Secret shared by the replicas, caBundle patched in).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import kopf
import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .access import may_use_policy
from .models import CredentialsDelivery

JSON = dict[str, Any]

PREFIX = "switchyard.dev"
POLICY_ANNOTATION = f"{PREFIX}/policy"
INJECTED_ANNOTATION = f"{PREFIX}/injected"
BASE_URL_ANNOTATION = f"{PREFIX}/inject-base-url"
PORT_ANNOTATION = f"{PREFIX}/router-port"
HEALTH_PORT_NAME = "router-health"
POLICY_LABEL = f"{PREFIX}/policy"
TABLE_DIR = "/etc/switchyard/table"
CREDENTIALS_DIR = "/etc/switchyard/credentials"
TABLE_VOLUME = "switchyard-table"
CREDENTIALS_VOLUME = "switchyard-credentials"
TRUST_DIR = "/etc/switchyard/trust"
TRUST_VOLUME = "switchyard-trust"
HANDLER_ID = "inject_router"  # also the URL path of the webhook: /inject_router

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Longest policy name whose "-credentials" Secret is still a valid name (253 characters).
MAX_POLICY_NAME = 253 - len("-credentials")


class InjectionError(ValueError):
    """The pod asks for injection in a way that cannot work (refused at admission)."""


class _Settings(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ProbeTiming(_Settings):
    period_seconds: int = Field(10, ge=1)
    timeout_seconds: int = Field(3, ge=1)
    failure_threshold: int = Field(3, ge=1)


class EnvVar(_Settings):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str


class TrustBundle(_Settings):
    """A ConfigMap with the CA certificates provider TLS is checked against (trust-manager's
    Bundle puts one in every namespace). It replaces the image's roots: include the public ones."""

    config_map: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    key: str = Field("ca-certificates.crt", pattern=r"^[-._a-zA-Z0-9]+$")


class SidecarSettings(_Settings):
    """What the chart's `sidecar` values become (rendered into the webhook's config file)."""

    container_name: str = "switchyard-router"
    image: str = "ghcr.io/switchyard-dev/switchyard:0.1.0"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    port: int = Field(8080, ge=1, le=65535)
    run_as_user: int = Field(10001, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    resources: JSON = Field(
        default_factory=lambda: {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        }
    )
    base_url_env: str = "OPENAI_BASE_URL"
    # The router's pod-IP listener for probes and metrics (/healthz, /readyz, /metrics only).
    # None: loopback only, exec probes, no scraping.
    health_port: int | None = Field(9464, ge=1, le=65535)
    startup: ProbeTiming = ProbeTiming(period_seconds=1, timeout_seconds=3, failure_threshold=60)
    readiness: ProbeTiming = ProbeTiming()
    liveness: ProbeTiming = ProbeTiming(period_seconds=20, timeout_seconds=3, failure_threshold=3)
    # Added to the router's env (the chart's `proxy` values: HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
    env: list[EnvVar] = []
    trust_bundle: TrustBundle | None = None


class SelfManagedCerts(_Settings):
    """certs.py keeps one CA + serving certificate in this Secret and patches the caBundle."""

    secret_name: str
    namespace: str
    service_name: str
    webhook_configuration: str
    validity_days: int = Field(3650, ge=1)


class ServerSettings(_Settings):
    port: int = Field(9443, ge=1, le=65535)
    # cert-manager: the mounted Secret's directory with tls.crt, tls.key and ca.crt.
    cert_dir: str | None = None
    self_managed: SelfManagedCerts | None = None
    # Where self-managed certificates are written for the TLS server (an emptyDir).
    work_dir: str = "/tmp/switchyard-webhook"


class WebhookConfig(_Settings):
    sidecar: SidecarSettings = SidecarSettings()
    server: ServerSettings = ServerSettings()

    @classmethod
    def load(cls, path: Path) -> WebhookConfig:
        return cls.model_validate(yaml.safe_load(path.read_text()) or {})


# --------------------------------------------------------------------------- the mutation


def policy_of(pod: JSON) -> str | None:
    """The policy a pod asks for (None: not annotated, nothing to do)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(POLICY_ANNOTATION)
    if value is None:
        return None
    policy = str(value).strip()
    if not policy:
        return None
    if len(policy) > MAX_POLICY_NAME or not _DNS_SUBDOMAIN.fullmatch(policy):
        raise InjectionError(
            f"annotation {POLICY_ANNOTATION}={value!r} is not a RoutingPolicy name "
            "(a DNS subdomain, lower case)"
        )
    return policy


def premade(pod: JSON, settings: SidecarSettings) -> str | None:
    """What of the injection a pod already carries (None: nothing), so it can be refused."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if INJECTED_ANNOTATION in annotations:
        return f"the annotation {INJECTED_ANNOTATION}"
    spec = pod.get("spec") or {}
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        if container.get("name") == settings.container_name:
            return f"a container named {settings.container_name}"
        if any(port.get("name") == HEALTH_PORT_NAME for port in container.get("ports") or []):
            return f"a port named {HEALTH_PORT_NAME} (container {container.get('name')})"
    return None


def _exec_probe(path: str, port: int, timing: ProbeTiming) -> JSON:
    script = (
        "import http.client,sys;"
        f"c=http.client.HTTPConnection('127.0.0.1',{port},timeout={timing.timeout_seconds});"
        f"c.request('GET','{path}');"
        "sys.exit(0 if c.getresponse().status==200 else 1)"
    )
    return {
        "exec": {"command": ["python", "-I", "-S", "-c", script]},
        "periodSeconds": timing.period_seconds,
        "timeoutSeconds": timing.timeout_seconds,
        "failureThreshold": timing.failure_threshold,
    }


def _probe(path: str, settings: SidecarSettings, timing: ProbeTiming) -> JSON:
    if settings.health_port is None:
        return _exec_probe(path, settings.port, timing)
    return {
        "httpGet": {"path": path, "port": HEALTH_PORT_NAME, "scheme": "HTTP"},
        "periodSeconds": timing.period_seconds,
        "timeoutSeconds": timing.timeout_seconds,
        "failureThreshold": timing.failure_threshold,
    }


def _field_env(name: str, path: str) -> JSON:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def security_context(run_as_user: int) -> JSON:
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def refuse_premade(pod: JSON, settings: SidecarSettings) -> None:
    found = premade(pod, settings)
    if found is not None:
        raise InjectionError(
            f"the pod already carries {found}: the webhook adds the router itself, so remove it "
            f"from the pod template and keep only the annotation {POLICY_ANNOTATION}"
        )


def sidecar_container(
    policy: str, settings: SidecarSettings, delivery: CredentialsDelivery = CredentialsDelivery.VOLUME
) -> JSON:
    keys = (
        ["--credentials-dir", CREDENTIALS_DIR]
        if delivery is CredentialsDelivery.VOLUME
        else ["--credentials-from-api"]
    )
    container: JSON = {
        "name": settings.container_name,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "restartPolicy": "Always",
        "command": ["switchyard-router"],
        "args": [
            "--host", "127.0.0.1",
            "--port", str(settings.port),
            "--config", f"{TABLE_DIR}/table.yaml",
            *keys,
            "--policy", policy,
            "--log-level", settings.log_level,
            "--log-format", settings.log_format,
        ],
        "env": [
            _field_env("POD_NAME", "metadata.name"),
            _field_env("POD_NAMESPACE", "metadata.namespace"),
            _field_env("POD_IP", "status.podIP"),
            {"name": "SWITCHYARD_POLICY", "value": policy},
            *(var.model_dump() for var in settings.env),
        ],
        "resources": copy.deepcopy(settings.resources),
        "securityContext": security_context(settings.run_as_user),
        "startupProbe": _probe("/readyz", settings, settings.startup),
        "readinessProbe": _probe("/readyz", settings, settings.readiness),
        "livenessProbe": _probe("/healthz", settings, settings.liveness),
        "volumeMounts": [{"name": TABLE_VOLUME, "mountPath": TABLE_DIR, "readOnly": True}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if delivery is CredentialsDelivery.VOLUME:
        container["volumeMounts"].append(
            {"name": CREDENTIALS_VOLUME, "mountPath": CREDENTIALS_DIR, "readOnly": True}
        )
    if settings.trust_bundle is not None:
        # Read by OpenSSL when the router starts: every provider's certificate is checked against it.
        bundle = f"{TRUST_DIR}/{settings.trust_bundle.key}"
        container["env"].append({"name": "SSL_CERT_FILE", "value": bundle})
        container["volumeMounts"].append({"name": TRUST_VOLUME, "mountPath": TRUST_DIR, "readOnly": True})
    if settings.health_port is not None:
        # Probes and scraping come to the pod IP: the health port listens there only.
        container["args"] += ["--health-host", "$(POD_IP)", "--health-port", str(settings.health_port)]
        container["ports"] = [
            {"name": HEALTH_PORT_NAME, "containerPort": settings.health_port, "protocol": "TCP"}
        ]
    return container


def volumes(
    policy: str,
    trust: TrustBundle | None = None,
    delivery: CredentialsDelivery = CredentialsDelivery.VOLUME,
) -> list[JSON]:
    mounted = [{"name": TABLE_VOLUME, "configMap": {"name": f"{policy}-routes"}}]
    if delivery is CredentialsDelivery.VOLUME:
        mounted.append({"name": CREDENTIALS_VOLUME, "secret": {"secretName": f"{policy}-credentials"}})
    if trust is not None:
        mounted.append({"name": TRUST_VOLUME, "configMap": {"name": trust.config_map}})
    return mounted


def _with_port_override(pod: JSON, settings: SidecarSettings) -> SidecarSettings:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(PORT_ANNOTATION)
    if value is None:
        return settings
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535 or port == settings.health_port:
        raise InjectionError(f"annotation {PORT_ANNOTATION}={value!r} is not a free port number")
    return settings.model_copy(update={"port": port})


def inject_sidecar(
    pod: JSON,
    policy: str,
    settings: SidecarSettings,
    delivery: CredentialsDelivery = CredentialsDelivery.VOLUME,
) -> JSON:
    """The pod with the router sidecar, its volumes and the app's base URL (a new dict).

    Raises InjectionError for pods that come with part of the injection already, and for pods
    the sidecar cannot serve (host network: loopback would be the node's; volume name clashes).
    """
    out = copy.deepcopy(pod)
    refuse_premade(pod, settings)
    spec: JSON = out.setdefault("spec", {})
    if spec.get("hostNetwork"):
        raise InjectionError(
            "pods with hostNetwork cannot have the router sidecar: its loopback port would be the node's"
        )
    settings = _with_port_override(pod, settings)
    taken = {
        port.get("containerPort")
        for c in [*spec.get("initContainers", []), *spec.get("containers", [])]
        for port in c.get("ports", [])
    }
    for port in (settings.port, settings.health_port):
        if port in taken:
            raise InjectionError(
                f"port {port} is declared by a container of this pod and the router needs it: "
                f"set the annotation {PORT_ANNOTATION} to a free port (or change the chart's sidecar ports)"
            )
    existing = {v.get("name") for v in spec.get("volumes", [])}
    clash = existing & {TABLE_VOLUME, CREDENTIALS_VOLUME, TRUST_VOLUME}
    if clash:
        raise InjectionError(f"the pod already has volumes named {sorted(clash)}")

    spec["initContainers"] = [sidecar_container(policy, settings, delivery), *spec.get("initContainers", [])]
    spec["volumes"] = [*spec.get("volumes", []), *volumes(policy, settings.trust_bundle, delivery)]
    metadata: JSON = out.setdefault("metadata", {})
    annotations: JSON = metadata.setdefault("annotations", {})
    if str(annotations.get(BASE_URL_ANNOTATION, "true")).lower() != "false":
        base_url = f"http://127.0.0.1:{settings.port}/v1"
        for container in spec.get("containers", []):
            env: list[JSON] = container.setdefault("env", [])
            if not any(e.get("name") == settings.base_url_env for e in env):
                env.append({"name": settings.base_url_env, "value": base_url})
    annotations[INJECTED_ANNOTATION] = policy
    # A label too (selectors cannot see annotations): PodMonitor, `kubectl get -l`.
    metadata.setdefault("labels", {})[POLICY_LABEL] = policy
    return out


# --------------------------------------------------------------------------- kopf wiring


async def _delivery(kube: Any, namespace: str, policy: str) -> CredentialsDelivery:
    """What the policy chose (Volume while it does not exist yet, or says nothing)."""
    body = await kube.get(f"/apis/{PREFIX}/v1alpha1/namespaces/{namespace}/routingpolicies/{policy}")
    value = ((body or {}).get("spec") or {}).get("credentialsDelivery")
    api = value == CredentialsDelivery.API_WATCH
    return CredentialsDelivery.API_WATCH if api else CredentialsDelivery.VOLUME


def _mutate(config: WebhookConfig) -> Callable[..., Awaitable[None]]:
    async def inject_router(
        body: kopf.Body, patch: kopf.Patch, warnings: list[str], memo: Any, logger: kopf.Logger, **_: Any
    ) -> None:
        pod: JSON = copy.deepcopy(dict(body))
        try:
            policy = policy_of(pod)
            if policy is None:
                return
            refuse_premade(pod, config.sidecar)
            namespace = str((pod.get("metadata") or {}).get("namespace") or "")
            account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
            kube = memo.runtime.kube
            if not await may_use_policy(kube, namespace, account, policy):
                raise kopf.AdmissionError(
                    f"ServiceAccount {namespace}/{account} may not use RoutingPolicy {policy}: grant it "
                    f"the verb 'use' on routingpolicies/{policy} (the chart's routerAccess does), or "
                    "run the pod as a ServiceAccount that has it",
                    code=403,
                )
            delivery = await _delivery(kube, namespace, policy)
            mutated = inject_sidecar(pod, policy, config.sidecar, delivery)
        except InjectionError as exc:
            raise kopf.AdmissionError(str(exc), code=400) from exc
        if not (pod.get("spec") or {}).get("automountServiceAccountToken", True):
            if delivery is CredentialsDelivery.API_WATCH:
                raise kopf.AdmissionError(
                    f"RoutingPolicy {policy} delivers keys through the API (credentialsDelivery: "
                    "APIWatch), but automountServiceAccountToken is false: the router could not read them",
                    code=400,
                )
            warnings.append(
                "automountServiceAccountToken is false: the router follows its table through the "
                "mounted file only (changes arrive with the kubelet's sync)"
            )

        def replace(raw: Any) -> None:
            raw.clear()
            raw.update(copy.deepcopy(mutated))

        patch.fns.append(replace)

    return inject_router


def register(registry: kopf.OperatorRegistry, config: WebhookConfig) -> None:
    """Add the mutating handler and the startup handler that configures the webhook server."""
    from .admission import CreateOnly
    from .certs import webhook_server

    kopf.on.mutate(
        "", "v1", "pods",
        id=HANDLER_ID,
        operations=["CREATE"],
        annotations={POLICY_ANNOTATION: kopf.PRESENT},
        registry=registry,
    )(_mutate(config))

    async def configure_webhook_server(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        settings.admission.server = CreateOnly(webhook_server(config.server, memo))
        settings.admission.managed = None  # the chart owns the MutatingWebhookConfiguration

    kopf.on.startup(id="configure_webhook_server", registry=registry)(configure_webhook_server)
