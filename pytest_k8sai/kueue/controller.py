"""Kueue as an operator with CRDs, webhooks and a controller: what a robust-controller check
reads off its CRDs, webhook configurations and pods, and an object only its webhook rejects.

Pure functions over API objects as dicts (``ApiClient.sanitize_for_serialization`` of the
typed ones), so the rules are tested without a cluster.
"""

from __future__ import annotations

from typing import Any

from pytest_k8sai.core.apis import KUEUE_API_VERSION, KUEUE_GROUP

# The CRDs a Kueue installation cannot work without: queues, their quota flavors, and the
# Workloads its controller makes for every queued Job.
CORE_PLURALS = ("clusterqueues", "localqueues", "workloads", "resourceflavors")
# Kueue's mutating webhook puts this finalizer on every new ClusterQueue (and its controller
# removes it once no Workload uses the queue): seeing it shows the mutating webhook answered.
RESOURCE_IN_USE_FINALIZER = f"{KUEUE_GROUP}/resource-in-use"
# Phrases the API server writes when a webhook (not the CRD schema) refuses a request.
DENIED_BY_WEBHOOK = ("admission webhook", "denied the request")


def crd_names(plurals: tuple[str, ...] = CORE_PLURALS) -> list[str]:
    return [f"{p}.{KUEUE_GROUP}" for p in plurals]


def crd_condition(crd: dict[str, Any], kind: str) -> str:
    """The status ("True", "False", "Unknown") of a CRD's condition, "" when it has none."""
    for cond in crd.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status", ""))
    return ""


def kueue_webhooks(configs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(configuration name, webhook) for each webhook whose rules name Kueue's API group."""
    out = []
    for cfg in configs:
        for hook in cfg.get("webhooks") or []:
            if any(
                KUEUE_GROUP in (rule.get("apiGroups") or []) for rule in hook.get("rules") or []
            ):
                out.append((cfg["metadata"]["name"], hook))
    return out


def covers(hook: dict[str, Any], resource: str, operation: str = "CREATE") -> bool:
    """True when one of the webhook's rules sends ``operation`` on Kueue's ``resource`` to it."""
    for rule in hook.get("rules") or []:
        groups = rule.get("apiGroups") or []
        resources = rule.get("resources") or []
        ops = rule.get("operations") or []
        if (
            (KUEUE_GROUP in groups or "*" in groups)
            and (resource in resources or "*" in resources)
            and (operation in ops or "*" in ops)
        ):
            return True
    return False


def target(hook: dict[str, Any]) -> str:
    """Where the API server sends the webhook's requests: a URL or namespace/service:path."""
    cc = hook.get("clientConfig") or {}
    if cc.get("url"):
        return str(cc["url"])
    svc = cc.get("service") or {}
    return f"service {svc.get('namespace', '?')}/{svc.get('name', '?')}{svc.get('path', '')}"


def without_ca_bundle(hooks: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Webhooks the API server could not verify: no caBundle in their clientConfig (the
    installer or cert injector never wrote it, so every call fails TLS)."""
    return [
        f"{cfg}/{hook.get('name', '?')}"
        for cfg, hook in hooks
        if not (hook.get("clientConfig") or {}).get("caBundle")
    ]


def other_resource(resource: str) -> str:
    """A resource name that is not ``resource``."""
    return "memory" if resource == "cpu" else "cpu"


def mismatched_cluster_queue(name: str, flavor: str, resource: str) -> dict[str, Any]:
    """A ClusterQueue that passes the CRD's schema and CEL rules but not Kueue's webhook: its
    flavor quotas ``other_resource(resource)`` while the group covers ``resource``. The CRD
    only checks that a flavor lists as many resources as are covered; the webhook checks that
    the i-th resource is the i-th covered one (Kueue's pkg/webhooks validateFlavorQuotas)."""
    return {
        "apiVersion": KUEUE_API_VERSION,
        "kind": "ClusterQueue",
        "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {},
            "resourceGroups": [
                {
                    "coveredResources": [resource],
                    "flavors": [
                        {
                            "name": flavor,
                            "resources": [{"name": other_resource(resource), "nominalQuota": "1"}],
                        }
                    ],
                }
            ],
        },
    }


def denial_problem(message: str, webhook_names: list[str]) -> str | None:
    """Why ``message`` (the API server's answer to a refused create) does not show a Kueue
    webhook refusing it, or None when it names one of ``webhook_names`` as the denier."""
    if not all(p in message for p in DENIED_BY_WEBHOOK):
        return (
            "the API server refused the object, but not through an admission webhook (the "
            f"CRD's schema, or something else): {message!r}"
        )
    if not any(f'"{n}"' in message for n in webhook_names):
        return (
            f"an admission webhook refused the object, but none of Kueue's "
            f"({', '.join(webhook_names) or 'none found'}): {message!r}"
        )
    return None


def pod_ready(pod: dict[str, Any]) -> bool:
    conds = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def not_ready(pods: list[dict[str, Any]]) -> list[str]:
    """Names and phases of the pods that are not Ready."""
    return [
        f"{p['metadata']['name']} ({p.get('status', {}).get('phase', '?')})"
        for p in pods
        if not pod_ready(p)
    ]
