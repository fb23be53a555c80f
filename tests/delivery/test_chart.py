"""The Helm chart: CRDs in sync, Helm's Lint, Install against the emulated API, schema validation.

helm-sdkpy (Helm's Go library) declares Python >= 3.12 but works on 3.11, which pip can only be
told on the command line: the session fixture installs it with --ignore-requires-python when it
is missing, and skips (saying so) only when the package registry cannot be reached. Lint and
Install run once per session in a subprocess (tests/delivery/helm_render.py), because Helm reads
HELM_DRIVER=memory from the environment its process starts with.
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from switchyard_operator.webhook import HANDLER_ID, WebhookConfig, inject_sidecar

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "switchyard"
NS = "switchyard"
# The oldest Kubernetes the chart supports (native sidecars on by default) and a recent one.
KUBERNETES_VERSIONS = ("1.29", "1.32")
# Custom resources: no Kubernetes schema to validate against (their own CRDs define them).
NO_SCHEMA = {
    "ServiceMonitor": "prometheus-operator CRD, not part of Kubernetes",
    "PodMonitor": "prometheus-operator CRD, not part of Kubernetes",
    "PrometheusRule": "prometheus-operator CRD, not part of Kubernetes",
    "Certificate": "cert-manager CRD, not part of Kubernetes",
    "Issuer": "cert-manager CRD, not part of Kubernetes",
    "KopfPeering": "kopf.dev CRD (crds/kopf.dev_peerings.yaml), not part of Kubernetes",
    "ClusterKopfPeering": "kopf.dev CRD (crds/kopf.dev_peerings.yaml), not part of Kubernetes",
}

FULL_VALUES: dict[str, Any] = {
    "webhook": {"certificates": {"source": "cert-manager"}},
    "monitoring": {
        "serviceMonitor": {"enabled": True},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True, "providerDownFor": "7m"},
        "dashboard": {"enabled": True},
    },
    "operator": {"watchNamespaces": ["team-a", "team-b"]},
    "endpoints": {"allowed": ["http://vllm.models.svc.cluster.local:8000", "https://*.openai.azure.com"]},
    "routerAccess": [{"namespace": "team-a", "serviceAccounts": ["chatbot", "batch"], "policies": ["chatbot"]}],
}
CASES = [
    {"name": "sy", "namespace": NS, "values": {}},
    {"name": "full", "namespace": NS, "values": FULL_VALUES},
    {"name": "loopback", "namespace": NS, "values": {"sidecar": {"healthPort": None}}},
    {"name": "nowebhook", "namespace": NS, "values": {"webhook": {"enabled": False}}},
    {"name": "bad", "namespace": NS, "values": {"operator": {"replicas": 0}}},
    {"name": "badlog", "namespace": NS, "values": {"logFormat": "yaml"}},
    {"name": "badproxy", "namespace": NS, "values": {"proxy": {"httpsProxy": "socks5://proxy:1080"}}},
    {"name": "badendpoint", "namespace": NS, "values": {"endpoints": {"allowed": ["https://x/?token=1"]}}},
    {"name": "json", "namespace": NS, "values": {"logFormat": "json"}},
    {"name": "traced", "namespace": NS,
     "values": {"tracing": {"otlpEndpoint": "http://otel-collector.observability:4318", "captureContent": True},
                "proxy": {"httpsProxy": "http://proxy.corp:3128"}}},
    {"name": "badtracing", "namespace": NS, "values": {"tracing": {"otlpEndpoint": "otel-collector:4317"}}},
    {"name": "trusted", "namespace": NS, "values": {"trustBundle": {"configMap": "corp-ca"}}},
    {"name": "proxied", "namespace": NS,
     "values": {"proxy": {"httpsProxy": "http://proxy.corp:3128", "noProxy": ".svc.cluster.local,vllm"}}},
    {"name": "unscrapable", "namespace": NS,
     "values": {"sidecar": {"healthPort": None}, "monitoring": {"podMonitor": {"enabled": True}}}},
    {"name": "tenancy", "namespace": NS, "values": {
        # Two teams sharing a namespace: each ServiceAccount gets its own policies only.
        "routerAccess": [
            {"namespace": "shared", "serviceAccounts": ["team-a-bot"], "policies": ["team-a", "team-a-batch"],
             "credentialsThroughAPI": ["team-a-batch"]},
            {"namespace": "shared", "serviceAccounts": ["team-b-bot"], "policies": ["team-b"]},
        ],
        "networkPolicy": {"apiServer": ["10.0.0.0/24"], "openOtherPorts": False}}},
    {"name": "twice", "namespace": NS, "values": {"routerAccess": [
        {"namespace": "team-a", "serviceAccounts": ["chatbot"], "policies": ["team-a"]},
        {"namespace": "team-a", "serviceAccounts": ["chatbot"], "policies": ["team-b"]}]}},
    {"name": "badapi", "namespace": NS, "values": {"routerAccess": [
        {"namespace": "team-a", "serviceAccounts": ["chatbot"], "policies": ["team-a"],
         "credentialsThroughAPI": ["team-b"]}]}},
]


def ensure_installed(module: str, requirement: str, *pip_args: str) -> None:
    """Install `requirement` into this interpreter if `module` is missing (registry down: skip)."""
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, check=False)
    if probe.returncode == 0:
        return
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", *pip_args, requirement],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if result.returncode != 0:
        unreachable = ("Could not find a version", "NewConnectionError", "Temporary failure", "Network is unreachable")
        if any(marker in result.stderr for marker in unreachable):
            pytest.skip(f"{requirement} is not installed and the package registry is unreachable: {result.stderr[-300:]}")
        pytest.fail(f"pip install {requirement} failed:\n{result.stderr}")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ensure_installed("helm_sdkpy", "helm-sdkpy", "--ignore-requires-python")
    cases = tmp_path_factory.mktemp("helm") / "cases.json"
    cases.write_text(json.dumps({"cases": CASES}))
    result = subprocess.run(
        [sys.executable, "-m", "tests.delivery.helm_render", str(cases)],
        cwd=ROOT, env={**os.environ, "HELM_DRIVER": "memory"},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.fixture(scope="session")
def kubernetes_validate() -> Any:
    ensure_installed("kubernetes_validate", "kubernetes-validate")
    import kubernetes_validate as module

    return module


def documents(rendered: dict[str, Any], case: str) -> list[dict[str, Any]]:
    result = rendered["cases"][case]
    assert "error" not in result, result.get("error")
    return [d for d in yaml.safe_load_all(result["manifest"]) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} found"
    return matches[0]


def kinds(docs: list[dict[str, Any]]) -> set[str]:
    return {d["kind"] for d in docs}


# --------------------------------------------------------------------------- static checks


def test_chart_crds_are_the_repository_crds() -> None:
    repo = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert chart == repo
    _, mismatch, errors = filecmp.cmpfiles(ROOT / "crds", CHART / "crds", repo, shallow=False)
    assert not mismatch and not errors, f"copy crds/ into helm/switchyard/crds/: {mismatch + errors}"


def test_default_values_match_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)
    jsonschema.validate(FULL_VALUES, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"webhook": {"certificates": {"source": "vault"}}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"operatr": {}}, schema)


def test_dashboard_is_generated() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "monitoring" / "dashboard.py"), "--check"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- Helm


def test_lint_is_clean(rendered: dict[str, Any]) -> None:
    lint = rendered["lint"]
    assert lint["TotalChartsLinted"] == 1
    # Severity: 1 info (only "icon is recommended"), 2 warning, 3 error (template failures).
    serious = [m for m in lint["Messages"] or [] if m["Severity"] >= 2]
    assert not serious, serious
    assert not lint["Errors"]


def test_schema_refuses_bad_values_at_install(rendered: dict[str, Any]) -> None:
    assert "replicas" in rendered["cases"]["bad"]["error"]
    assert "httpsProxy" in rendered["cases"]["badproxy"]["error"]
    assert "endpoints" in rendered["cases"]["badendpoint"]["error"]
    assert "loopback-only router cannot be scraped" in rendered["cases"]["unscrapable"]["error"]
    assert "team-b in credentialsThroughAPI of namespace team-a is not among its policies" in (
        rendered["cases"]["badapi"]["error"])
    assert "ServiceAccount team-a/chatbot is listed twice; merge its entries" in rendered["cases"]["twice"]["error"]


@pytest.mark.parametrize("case", ["sy", "full", "loopback", "proxied", "trusted", "tenancy"])
def test_every_manifest_is_valid_kubernetes(rendered: dict[str, Any], kubernetes_validate: Any, case: str) -> None:
    docs = documents(rendered, case)
    crds = [d for p in sorted((CHART / "crds").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    skipped = {}
    for doc in [*docs, *crds]:
        if doc["kind"] in NO_SCHEMA:
            skipped[doc["kind"]] = NO_SCHEMA[doc["kind"]]
            continue
        for version in KUBERNETES_VERSIONS if case == "sy" else KUBERNETES_VERSIONS[:1]:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {exc.message} at {list(exc.path)}")
    if case == "full":
        assert set(skipped) == {"ServiceMonitor", "PodMonitor", "PrometheusRule", "Certificate", "Issuer", "KopfPeering"}


def test_install_creates_the_objects_in_the_api(rendered: dict[str, Any]) -> None:
    stored = rendered["cases"]["sy"]["stored"]
    names = {(o["kind"], o["metadata"]["name"]) for o in stored if "kind" in o}
    assert ("Deployment", "sy-switchyard-operator") in names
    assert ("MutatingWebhookConfiguration", "sy-switchyard-sidecar-injector") in names
    assert {"llmproviders.switchyard.dev", "routingpolicies.switchyard.dev", "kopfpeerings.kopf.dev"} <= {
        n for k, n in names if k == "CustomResourceDefinition"
    }


def test_default_operator_deployment(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "sy")
    assert kinds(docs) == {
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ConfigMap",
        "MutatingWebhookConfiguration", "PodDisruptionBudget", "ClusterKopfPeering", "NetworkPolicy",
        "Role", "RoleBinding",  # the webhook certificate's Secret, by name, in the release namespace
    }, "monitoring and cert-manager are off by default"
    deployment = find(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]} and context["runAsUser"] == 10001
    args = container["args"]
    assert args[0].startswith('exec switchyard-operator "$@" --priority "$(od ')
    assert args[1:] == [
        "switchyard-operator", "--all-namespaces", "--peering=switchyard",
        "--liveness=http://0.0.0.0:8081/healthz", "--metrics-port=9090", "--webhook=/etc/switchyard/webhook/config.yaml",
    ]
    assert find(docs, "ClusterKopfPeering")["metadata"]["name"] == "switchyard"
    pdb = find(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_priority_command_runs_in_a_posix_shell() -> None:
    """The wrapper that gives each replica its own peering priority, run by /bin/sh."""
    script = 'exec echo "$@" --priority "$(od -An -N3 -tu4 /dev/urandom | tr -d \' \')"'
    out = subprocess.run(["/bin/sh", "-c", script, "x", "--all-namespaces"], capture_output=True, text=True, check=True)
    words = out.stdout.split()
    assert words[:2] == ["--all-namespaces", "--priority"] and 0 <= int(words[2]) < 2**24


def rules_by_resource(role: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                key = f"{group or 'core'}/{resource}"
                if rule.get("resourceNames"):
                    key += f"[{','.join(rule['resourceNames'])}]"
                out.setdefault(key, set()).update(rule["verbs"])
    return out


# Everything the operator's design needs (docs/security.md says why), per (group/resource[names]).
# A rendered rule outside this, or with more verbs, fails the test.
OPERATOR_NEEDS: dict[str, set[str]] = {
    "core/namespaces": {"list", "watch"},  # kopf finds the namespaces it serves
    "apiextensions.k8s.io/customresourcedefinitions": {"list", "watch"},  # kopf's resource scan
    "kopf.dev/clusterkopfpeerings": {"get", "list", "watch", "patch"},
    "kopf.dev/kopfpeerings": {"get", "list", "watch", "patch"},
    "switchyard.dev/llmproviders": {"get", "list", "watch", "patch"},  # patch: kopf's finalizer
    "switchyard.dev/routingpolicies": {"get", "list", "watch", "patch"},
    "switchyard.dev/llmproviders/status": {"patch"},
    "switchyard.dev/routingpolicies/status": {"patch"},
    # list/watch with the switchyard.dev/credentials selector; create/patch its <policy>-credentials
    "core/secrets": {"list", "watch", "create", "patch"},
    "core/configmaps": {"get", "list", "watch", "create", "patch"},  # its <policy>-routes
    "core/events": {"create"},
    "events.k8s.io/events": {"create"},
    "core/pods": {"get", "list", "watch"},  # router pods, pulled for their usage
    "authorization.k8s.io/subjectaccessreviews": {"create"},  # may this pod use that policy?
}


def operator_rules(docs: list[dict[str, Any]], sa: str) -> dict[tuple[str, str | None, str], dict[str, set[str]]]:
    """(kind, namespace where it applies, name) of each role bound to the operator's account -> its rules."""
    out: dict[tuple[str, str | None, str], dict[str, set[str]]] = {}
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding") or not any(
            s["kind"] == "ServiceAccount" and s["name"] == sa for s in binding["subjects"]
        ):
            continue
        namespace, ref = binding["metadata"].get("namespace"), binding["roleRef"]
        (role,) = [d for d in docs if d["kind"] == ref["kind"] and d["metadata"]["name"] == ref["name"]
                   and (ref["kind"] == "ClusterRole" or d["metadata"].get("namespace") == namespace)]
        out[(ref["kind"], namespace, ref["name"])] = rules_by_resource(role)
    return out


def broader_than_needed(rules: dict[str, set[str]], webhook_secret: str, injector: str) -> list[str]:
    needs = {
        **OPERATOR_NEEDS,
        f"core/secrets[{webhook_secret}]": {"get", "patch"},  # the self-managed webhook certificate
        f"admissionregistration.k8s.io/mutatingwebhookconfigurations[{injector}]": {"get", "patch"},
    }
    return [f"{key}: {sorted(verbs - needs.get(key, set()))}" for key, verbs in rules.items()
            if verbs - needs.get(key, set())]


@pytest.mark.parametrize("case", ["sy", "full", "nowebhook"])
def test_operator_rbac_is_no_broader_than_the_design(rendered: dict[str, Any], case: str) -> None:
    docs = documents(rendered, case)
    sa = f"{case}-switchyard"
    roles = operator_rules(docs, sa)
    assert roles
    for (kind, namespace, _), rules in roles.items():
        assert broader_than_needed(rules, f"{case}-switchyard-webhook-tls", f"{case}-switchyard-sidecar-injector") == [], (
            kind, namespace)
        for key, verbs in rules.items():
            assert "*" not in key and "*" not in verbs
            if key.startswith("core/secrets"):
                assert not verbs & {"delete", "deletecollection", "update"}, "the operator deletes no Secret"
                assert "get" not in verbs or "[" in key, "no Secret is read by name but its own certificate"
    for role in (d for d in docs if d["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def test_operator_rbac_is_least_privilege(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "sy")
    cluster = rules_by_resource(find(docs, "ClusterRole", "sy-switchyard-operator-cluster"))
    namespaced = rules_by_resource(find(docs, "ClusterRole", "sy-switchyard-operator"))
    assert cluster == {
        "core/namespaces": {"list", "watch"},
        "apiextensions.k8s.io/customresourcedefinitions": {"list", "watch"},
        "authorization.k8s.io/subjectaccessreviews": {"create"},  # a pod's right to its policy
        "kopf.dev/clusterkopfpeerings": {"get", "list", "watch", "patch"},
        "admissionregistration.k8s.io/mutatingwebhookconfigurations[sy-switchyard-sidecar-injector]": {"get", "patch"},
    }
    assert namespaced == {
        "switchyard.dev/llmproviders": {"get", "list", "watch", "patch"},
        "switchyard.dev/routingpolicies": {"get", "list", "watch", "patch"},
        "switchyard.dev/llmproviders/status": {"patch"},
        "switchyard.dev/routingpolicies/status": {"patch"},
        "core/secrets": {"list", "watch", "create", "patch"},
        "core/configmaps": {"get", "list", "watch", "create", "patch"},
        "core/events": {"create"},
        "core/pods": {"get", "list", "watch"},  # router pods, pulled for their usage
        "events.k8s.io/events": {"create"},
        "kopf.dev/kopfpeerings": {"get", "list", "watch", "patch"},
    }
    certs = rules_by_resource(find(docs, "Role", "sy-switchyard-webhook-certs"))
    assert certs == {"core/secrets": {"create"}, "core/secrets[sy-switchyard-webhook-tls]": {"get", "patch"}}
    binding = find(docs, "ClusterRoleBinding", "sy-switchyard-operator")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sy-switchyard", "namespace": NS}]


# What a router may ever be granted: each rule names its objects, and reads (or `use`s) them.
ROUTER_VERBS = {"switchyard.dev/routingpolicies": {"use"}, "core/configmaps": {"get", "watch"},
                "core/secrets": {"get", "watch"}}


def test_router_rbac_is_least_privilege(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "tenancy")
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Role" and "-router-" in d["metadata"]["name"]}
    assert set(roles) == {"tenancy-switchyard-router-team-a-bot", "tenancy-switchyard-router-team-b-bot"}
    roles = {name.rsplit("-router-", 1)[1]: role for name, role in roles.items()}
    assert rules_by_resource(roles["team-a-bot"]) == {
        "switchyard.dev/routingpolicies[team-a,team-a-batch]": {"use"},
        "core/configmaps[team-a-routes,team-a-batch-routes]": {"get", "watch"},
        # Only the policy that delivers its keys through the API: its Secret, by name.
        "core/secrets[team-a-batch-credentials]": {"get", "watch"},
    }
    assert rules_by_resource(roles["team-b-bot"]) == {
        "switchyard.dev/routingpolicies[team-b]": {"use"},
        "core/configmaps[team-b-routes]": {"get", "watch"},
    }
    for role in roles.values():
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    allowed = ROUTER_VERBS.get(f"{group or 'core'}/{resource}")
                    assert allowed is not None, f"routers need nothing of {group}/{resource}"
                    assert set(rule["verbs"]) <= allowed, f"{resource}: {rule['verbs']} is broader than {allowed}"
            assert rule.get("resourceNames"), f"a router rule without resourceNames: {rule}"
    binding = find(docs, "RoleBinding", "tenancy-switchyard-router-team-b-bot")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "team-b-bot", "namespace": "shared"}]
    assert binding["roleRef"]["name"] == "tenancy-switchyard-router-team-b-bot"


def test_network_policies(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "tenancy")
    operator = find(docs, "NetworkPolicy", "tenancy-switchyard-operator")["spec"]
    assert operator["policyTypes"] == ["Ingress"]
    webhook, metrics = operator["ingress"]
    assert webhook == {"ports": [{"port": "webhook", "protocol": "TCP"}], "from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]}
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}, "podSelector": {}}
    assert metrics == {"ports": [{"port": "metrics", "protocol": "TCP"}], "from": [monitoring]}
    health = find(docs, "NetworkPolicy", "tenancy-switchyard-router-health")
    assert health["metadata"]["namespace"] == "shared"  # once per namespace
    spec = health["spec"]
    assert spec["podSelector"] == {"matchExpressions": [{"key": "switchyard.dev/policy", "operator": "Exists"}]}
    (only,) = spec["ingress"]  # openOtherPorts: false
    assert only["ports"] == [{"port": 9464, "protocol": "TCP"}]
    the_operator = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "switchyard",
                                                    "app.kubernetes.io/instance": "tenancy",
                                                    "app.kubernetes.io/component": "operator"}}}
    assert only["from"] == [the_operator, monitoring]

    # The defaults: the webhook port open to any source (the API server's address is the
    # cluster's), and the app's own ports left open beside the routers' health port.
    full = documents(rendered, "full")
    (webhook, _) = find(full, "NetworkPolicy", "full-switchyard-operator")["spec"]["ingress"]
    assert "from" not in webhook
    health_port, others = find(full, "NetworkPolicy", "full-switchyard-router-health")["spec"]["ingress"]
    assert health_port["ports"] == [{"port": 9464, "protocol": "TCP"}]
    assert others == {"ports": [
        {"port": 1, "endPort": 9463, "protocol": "TCP"}, {"port": 9465, "endPort": 65535, "protocol": "TCP"},
        {"port": 1, "endPort": 65535, "protocol": "UDP"}, {"port": 1, "endPort": 65535, "protocol": "SCTP"}]}
    assert not [d for d in documents(rendered, "loopback") if d["kind"] == "NetworkPolicy" and "health" in d["metadata"]["name"]]


def test_named_namespaces_get_roles_and_no_cluster_wide_secret_access(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "full")
    roles = operator_rules(docs, "full-switchyard")
    assert {k[1] for k in roles if k[0] == "Role"} == {"team-a", "team-b"}  # cert-manager: no certificate Role
    for (kind, _, _), rules in roles.items():
        if kind == "ClusterRole":
            assert not any(k.startswith(("core/secrets", "core/configmaps")) for k in rules), rules
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert "--allow-endpoint=http://vllm.models.svc.cluster.local:8000" in args
    assert "--allow-endpoint=https://*.openai.azure.com" in args


def test_default_allows_official_hosts_only(rendered: dict[str, Any]) -> None:
    args = find(documents(rendered, "sy"), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not any(a.startswith("--allow-endpoint") for a in args)


def test_webhook_configuration_matches_the_operator(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "sy")
    (webhook,) = find(docs, "MutatingWebhookConfiguration")["webhooks"]
    service = webhook["clientConfig"]["service"]
    assert service == {"name": "sy-switchyard-webhook", "namespace": NS, "path": f"/{HANDLER_ID}", "port": 443}
    assert webhook["sideEffects"] == "None" and webhook["failurePolicy"] == "Ignore"
    assert webhook["rules"][0]["resources"] == ["pods"] and webhook["rules"][0]["operations"] == ["CREATE"]
    assert webhook["namespaceSelector"]["matchLabels"] == {"switchyard.dev/injection": "enabled"}
    assert {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NS, "kube-system"]} in (
        webhook["namespaceSelector"]["matchExpressions"]
    )
    svc = find(docs, "Service", "sy-switchyard-webhook")
    assert {"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"} in svc["spec"]["ports"]

    # The operator reads the rendered config with the same model (unknown keys refused).
    config = WebhookConfig.model_validate(yaml.safe_load(find(docs, "ConfigMap", "sy-switchyard-webhook")["data"]["config.yaml"]))
    assert config.sidecar.image == "ghcr.io/switchyard-dev/switchyard:0.1.0"
    assert config.sidecar.health_port == 9464
    assert config.sidecar.resources == {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
    managed = config.server.self_managed
    assert managed is not None and config.server.cert_dir is None
    assert (managed.service_name, managed.namespace, managed.webhook_configuration) == (
        "sy-switchyard-webhook", NS, "sy-switchyard-sidecar-injector"
    )
    container = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "webhook", "containerPort": config.server.port, "protocol": "TCP"} in container["ports"]
    assert config.server.work_dir.startswith("/tmp/"), "the only writable path (emptyDir)"


def test_cert_manager_monitoring_and_watched_namespaces(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "full")
    certificate = find(docs, "Certificate")
    assert certificate["spec"]["issuerRef"] == {"kind": "Issuer", "name": "full-switchyard-selfsigned"}
    assert "full-switchyard-webhook.switchyard.svc" in certificate["spec"]["dnsNames"]
    assert find(docs, "Issuer")["spec"] == {"selfSigned": {}}
    injector = find(docs, "MutatingWebhookConfiguration")
    assert injector["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": f"{NS}/full-switchyard-webhook"}
    config = WebhookConfig.model_validate(yaml.safe_load(find(docs, "ConfigMap", "full-switchyard-webhook")["data"]["config.yaml"]))
    assert config.server.cert_dir == "/etc/switchyard/webhook-tls" and config.server.self_managed is None
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    tls = next(v for v in pod["volumes"] if v["name"] == "webhook-tls")
    assert tls["secret"]["secretName"] == certificate["spec"]["secretName"]

    # Watched namespaces: -n per namespace, a Role + RoleBinding + KopfPeering in each.
    args = pod["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--all-namespaces" not in args
    roles = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "full-switchyard-operator"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(p["metadata"]["namespace"] for p in docs if p["kind"] == "KopfPeering") == ["team-a", "team-b"]
    cluster = rules_by_resource(find(docs, "ClusterRole", "full-switchyard-operator-cluster"))
    assert "kopf.dev/clusterkopfpeerings" not in cluster
    assert not any(k.startswith("admissionregistration") for k in cluster), "cert-manager injects the caBundle"

    # The routers' Role: `use` on their policy and its table, by name, and no write at all.
    router = find(docs, "Role", "full-switchyard-router-chatbot")
    assert router["metadata"]["namespace"] == "team-a"
    assert rules_by_resource(router) == {
        "switchyard.dev/routingpolicies[chatbot]": {"use"},
        "core/configmaps[chatbot-routes]": {"get", "watch"},
    }
    assert rules_by_resource(find(docs, "Role", "full-switchyard-router-batch")) == rules_by_resource(router)
    binding = find(docs, "RoleBinding", "full-switchyard-router-batch")
    assert [s["name"] for s in binding["subjects"]] == ["batch"]


def test_monitoring_objects(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "full")
    monitor = find(docs, "ServiceMonitor")
    service = find(docs, "Service")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert any(p["name"] == "metrics" for p in service["spec"]["ports"])
    pods = find(docs, "PodMonitor")
    assert pods["spec"]["podMetricsEndpoints"][0]["port"] == "router-health"

    rules = find(docs, "PrometheusRule")["spec"]
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert {
        "SwitchyardProviderDown", "SwitchyardBudgetWarning", "SwitchyardBudgetExceeded",
        "SwitchyardHighFallbackRate", "SwitchyardTableNotPropagated",
    } <= set(alerts)
    assert alerts["SwitchyardProviderDown"]["for"] == "7m"
    assert "switchyard_circuit_state" in alerts["SwitchyardProviderDown"]["expr"]
    assert "switchyard_provider_budget_usd" in alerts["SwitchyardBudgetExceeded"]["expr"]
    assert "> 0.2" in alerts["SwitchyardHighFallbackRate"]["expr"]
    assert "count by (namespace, policy, hash) (switchyard_table_info)" in alerts["SwitchyardTableNotPropagated"]["expr"]
    assert "${" not in json.dumps(rules), "every placeholder substituted"
    assert "{{ $labels.provider }}" in alerts["SwitchyardProviderDown"]["annotations"]["summary"]

    dashboard = json.loads(find(docs, "ConfigMap", "full-switchyard-dashboard")["data"]["switchyard.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for series in (
        "gen_ai_client_operation_duration_seconds_bucket", "switchyard_fallbacks_total", "switchyard_tokens_total",
        "switchyard_cost_usd_total", "switchyard_circuit_state", "switchyard_table_info",
    ):
        assert series in exprs, series
    assert "histogram_quantile(0.95" in exprs and "histogram_quantile(0.5" in exprs


def test_proxy_values_reach_the_operators_probes_and_every_injected_router(rendered: dict[str, Any]) -> None:
    expected = [
        {"name": "HTTPS_PROXY", "value": "http://proxy.corp:3128"},
        {"name": "NO_PROXY", "value": ".svc.cluster.local,vllm"},
    ]
    for case, env in (("sy", []), ("proxied", expected)):
        docs = documents(rendered, case)
        container = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        assert [e for e in container["env"] if e["name"].endswith("_PROXY")] == env
        config = yaml.safe_load(find(docs, "ConfigMap", f"{case}-switchyard-webhook")["data"]["config.yaml"])
        router = inject_sidecar(
            {"metadata": {}, "spec": {"containers": [{"name": "app"}]}}, "chatbot",
            WebhookConfig.model_validate(config).sidecar,
        )["spec"]["initContainers"][0]
        assert [e for e in router["env"] if e["name"].endswith("_PROXY")] == env


def test_one_tracing_value_reaches_the_operator_and_every_injected_router(rendered: dict[str, Any]) -> None:
    tracing = [
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.observability:4318"},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"},
        {"name": "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "value": "true"},
    ]
    for case, expected in (("sy", []), ("traced", tracing)):
        docs = documents(rendered, case)
        container = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        assert [e for e in container["env"] if e["name"].startswith("OTEL_")] == expected
        config = yaml.safe_load(find(docs, "ConfigMap", f"{case}-switchyard-webhook")["data"]["config.yaml"])
        router = inject_sidecar(
            {"metadata": {}, "spec": {"containers": [{"name": "app"}]}}, "chatbot",
            WebhookConfig.model_validate(config).sidecar,
        )["spec"]["initContainers"][0]
        assert [e for e in router["env"] if e["name"].startswith("OTEL_")] == expected
    # Beside the proxy's variables, not instead of them.
    assert {"name": "HTTPS_PROXY", "value": "http://proxy.corp:3128"} in router["env"]
    assert "otlpEndpoint" in rendered["cases"]["badtracing"]["error"]


def test_json_logs_for_the_operator_and_every_injected_router(rendered: dict[str, Any]) -> None:
    for case, expected in (("sy", "text"), ("json", "json")):
        docs = documents(rendered, case)
        args = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        assert ("--log-format=json" in args) is (expected == "json")
        config = yaml.safe_load(find(docs, "ConfigMap", f"{case}-switchyard-webhook")["data"]["config.yaml"])
        sidecar = WebhookConfig.model_validate(config).sidecar
        router = inject_sidecar({"metadata": {}, "spec": {"containers": [{"name": "app"}]}}, "p", sidecar)
        args = router["spec"]["initContainers"][0]["args"]
        assert args[args.index("--log-format") + 1] == expected
    assert "logFormat" in rendered["cases"]["badlog"]["error"]


def test_a_trust_bundle_reaches_the_operators_probes_and_every_injected_router(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "trusted")
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "SSL_CERT_FILE", "value": "/etc/switchyard/trust/ca-certificates.crt"} in container["env"]
    assert {"name": "trust-bundle", "mountPath": "/etc/switchyard/trust", "readOnly": True} in container["volumeMounts"]
    assert {"name": "trust-bundle", "configMap": {"name": "corp-ca"}} in pod["volumes"]
    config = yaml.safe_load(find(docs, "ConfigMap", "trusted-switchyard-webhook")["data"]["config.yaml"])
    bundle = WebhookConfig.model_validate(config).sidecar.trust_bundle
    assert bundle is not None and (bundle.config_map, bundle.key) == ("corp-ca", "ca-certificates.crt")
    plain = find(documents(rendered, "sy"), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert not any(e["name"] == "SSL_CERT_FILE" for e in plain["env"])


def test_loopback_only_sidecar(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "loopback")
    config = WebhookConfig.model_validate(yaml.safe_load(find(docs, "ConfigMap")["data"]["config.yaml"]))
    assert config.sidecar.health_port is None


def test_webhook_off(rendered: dict[str, Any]) -> None:
    docs = documents(rendered, "nowebhook")
    assert "MutatingWebhookConfiguration" not in kinds(docs)
    container = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert not any(a.startswith("--webhook") for a in container["args"])
    assert "readinessProbe" not in container
    assert not any(k.startswith("admissionregistration") for k in rules_by_resource(find(docs, "ClusterRole", "nowebhook-switchyard-operator-cluster")))
