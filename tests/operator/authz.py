"""RBAC as the API server's authorizer applies it, over the Roles and bindings in the emulator.

Requests with a bearer token the emulator knows (`Emulator.tokens`: token -> ServiceAccount) are
authorized the way a cluster authorizes a pod's ServiceAccount: allowed when a RoleBinding in the
request's namespace, or a ClusterRoleBinding, names the account (or one of its groups) and binds
a rule that matches the verb, API group, resource (with its subresource) and, when the rule
lists resourceNames, the object's name. A list or watch names its object through a
`metadata.name=` field selector, as kubectl and the router do. `create` never matches a rule with
resourceNames (the API server authorizes it before the name exists). The same function answers
SubjectAccessReviews.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]
ROLE_KINDS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")


@dataclass(frozen=True)
class Attributes:
    user: str
    verb: str
    group: str
    resource: str  # "pods", or "pods/status"
    namespace: str | None
    name: str | None

    @property
    def groups(self) -> set[str]:
        parts = self.user.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            return {"system:serviceaccounts", f"system:serviceaccounts:{parts[2]}", "system:authenticated"}
        return {"system:authenticated"}

    def describe(self) -> str:
        where = f' in the namespace "{self.namespace}"' if self.namespace else " at the cluster scope"
        return (
            f'User "{self.user}" cannot {self.verb} resource "{self.resource}" in API group '
            f'"{self.group}"{where}'
        )


def rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    def has(field: str, value: str) -> bool:
        values = rule.get(field) or []
        return "*" in values or value in values

    if not (has("verbs", attrs.verb) and has("apiGroups", attrs.group) and has("resources", attrs.resource)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (attrs.name is not None and attrs.verb != "create" and attrs.name in names)


def _subject_matches(subject: Mapping[str, Any], attrs: Attributes, binding_namespace: str | None) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return attrs.user == f"system:serviceaccount:{namespace}:{subject.get('name')}"
    if kind == "User":
        return attrs.user == subject.get("name")
    return kind == "Group" and subject.get("name") in attrs.groups


def allowed(objects: Iterable[tuple[str, JSON]], attrs: Attributes) -> bool:
    """`objects`: (plural, body) of every stored Role, ClusterRole and binding."""
    stored = list(objects)
    roles = {
        (plural, (body["metadata"].get("namespace") if plural == "roles" else None), body["metadata"]["name"]): body
        for plural, body in stored
        if plural in ("roles", "clusterroles")
    }
    for plural, binding in stored:
        if plural not in ("rolebindings", "clusterrolebindings"):
            continue
        namespace = binding["metadata"].get("namespace") if plural == "rolebindings" else None
        if namespace is not None and namespace != attrs.namespace:
            continue  # a RoleBinding grants only in its own namespace
        if not any(_subject_matches(s, attrs, namespace) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        role_plural = "roles" if ref.get("kind") == "Role" else "clusterroles"
        role = roles.get((role_plural, namespace if role_plural == "roles" else None, ref.get("name")))
        if role is not None and any(rule_allows(rule, attrs) for rule in role.get("rules") or []):
            return True
    return False


def review(objects: Iterable[tuple[str, JSON]], body: Mapping[str, Any]) -> JSON:
    """A SubjectAccessReview answered."""
    spec = body.get("spec") or {}
    res = spec.get("resourceAttributes") or {}
    resource = res.get("resource", "")
    if res.get("subresource"):
        resource += "/" + res["subresource"]
    attrs = Attributes(
        user=spec.get("user", ""),
        verb=res.get("verb", ""),
        group=res.get("group", ""),
        resource=resource,
        namespace=res.get("namespace") or None,
        name=res.get("name") or None,
    )
    ok = allowed(objects, attrs)
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": dict(spec),
        "status": {"allowed": ok, **({} if ok else {"reason": attrs.describe()})},
    }
