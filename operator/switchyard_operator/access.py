"""The right to a policy: may this ServiceAccount run a router of that RoutingPolicy?

Asked of the API server (a SubjectAccessReview), so the cluster's RBAC decides: the account
needs the verb `use` on `routingpolicies/<policy>` in the pod's namespace (the chart's
`routerAccess` grants it by name). `use` is not a verb the API serves: it grants nothing
but this, and in particular no read of the policy's Secret. The webhook asks before it injects
a router; the operator asks again (cached) before it pulls a pod's usage, so a pod admitted
while the webhook was not answering counts for nothing it could not have been given.
"""

from __future__ import annotations

from .kube import Kube
from .models import GROUP

REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
VERB = "use"


def service_account_user(namespace: str, account: str) -> str:
    return f"system:serviceaccount:{namespace}:{account}"


async def may_use_policy(kube: Kube, namespace: str, account: str, policy: str) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": service_account_user(namespace, account),
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": namespace,
                "verb": VERB,
                "group": GROUP,
                "resource": "routingpolicies",
                "name": policy,
            },
        },
    }
    answer = await kube.create(REVIEWS, review)
    return bool((answer.get("status") or {}).get("allowed"))
