"""Typed builders for Kueue objects (kueue.x-k8s.io/v1beta2, the version Kueue stores).

Specs are pydantic models, so a setup written as data is validated before anything is created.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from kubernetes import client
from pydantic import BaseModel, ConfigDict, Field

from pytest_k8sai.clusters.objects import ObjectTracker
from pytest_k8sai.core import mutants
from pytest_k8sai.core.apis import (
    KUEUE_API_VERSION,
    KUEUE_GROUP,
    KUEUE_PRIORITY_CLASS_LABEL,
    KUEUE_QUEUE_LABEL,
    KUEUE_VERSION,
)
from pytest_k8sai.core.errors import ClusterError

API_VERSION = KUEUE_API_VERSION
QUEUE_LABEL = KUEUE_QUEUE_LABEL
PRIORITY_CLASS_LABEL = KUEUE_PRIORITY_CLASS_LABEL


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Quota(_Spec):
    name: str  # resource name, e.g. nvidia.com/gpu
    nominal: str
    borrowing_limit: str | None = None
    lending_limit: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "nominalQuota": self.nominal}
        if self.borrowing_limit is not None:
            out["borrowingLimit"] = self.borrowing_limit
        if self.lending_limit is not None:
            out["lendingLimit"] = self.lending_limit
        return out


class ClusterQueueSpec(_Spec):
    name: str
    flavor: str
    quotas: list[Quota]
    queueing_strategy: Literal["BestEffortFIFO", "StrictFIFO"] = "BestEffortFIFO"
    cohort: str | None = None
    # Namespaces whose LocalQueues may point here; {} would mean every namespace.
    namespace_selector: dict[str, Any] = Field(default_factory=dict)
    preemption: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "namespaceSelector": self.namespace_selector,
            "queueingStrategy": self.queueing_strategy,
            "resourceGroups": [
                {
                    "coveredResources": [q.name for q in self.quotas],
                    "flavors": [
                        {"name": self.flavor, "resources": [q.body() for q in self.quotas]}
                    ],
                }
            ],
        }
        if self.cohort:
            spec["cohortName"] = self.cohort
        if self.preemption:
            spec["preemption"] = self.preemption
        body = {
            "apiVersion": API_VERSION,
            "kind": "ClusterQueue",
            "metadata": {"name": self.name},
            "spec": spec,
        }
        # Every ClusterQueue the suites create passes here (setups, the smoke and slicing
        # suites' quota queues), so a mutant's ClusterQueue change reaches all of them.
        overlay = mutants.changes().cluster_queues
        return mutants.deep_merge(body, overlay) if overlay else body


def resource_flavor(
    name: str,
    node_labels: dict[str, str] | None = None,
    tolerations: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if node_labels:
        spec["nodeLabels"] = node_labels
    if tolerations:
        spec["tolerations"] = tolerations
    return {
        "apiVersion": API_VERSION,
        "kind": "ResourceFlavor",
        "metadata": {"name": name},
        "spec": spec,
    }


def local_queue(name: str, namespace: str, cluster_queue: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "LocalQueue",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterQueue": cluster_queue},
    }


def workload_conditions(workload: dict[str, Any]) -> dict[str, str]:
    """type -> status of a Workload's conditions."""
    return {c["type"]: c["status"] for c in workload.get("status", {}).get("conditions", [])}


def is_admitted(workload: dict[str, Any] | None) -> bool:
    conds = workload_conditions(workload or {})
    return conds.get("QuotaReserved") == "True" and conds.get("Admitted") == "True"


def workload_for_job(
    api: client.ApiClient, namespace: str, job: str, version: str = KUEUE_VERSION
) -> dict[str, Any] | None:
    """The Workload Kueue made for Job ``job`` (found by owner reference), or None yet."""
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        KUEUE_GROUP, version, namespace, "workloads"
    )["items"]
    for wl in items:
        if any(o.get("name") == job for o in wl["metadata"].get("ownerReferences", [])):
            return dict(wl)
    return None


def create_gpu_queue(
    objs: ObjectTracker,
    namespace: str,
    gpus: int,
    name: str = "lq",
    resource: str = "nvidia.com/gpu",
) -> str:
    """One flavor, one ClusterQueue with ``gpus`` GPUs (of ``resource``) open to ``namespace``
    only, and a LocalQueue ``name`` in it; all tracked by ``objs``. Returns the LocalQueue
    name."""
    return create_quota_queue(objs, namespace, {resource: gpus}, name)


def create_quota_queue(
    objs: ObjectTracker, namespace: str, quotas: dict[str, int], name: str = "lq"
) -> str:
    """Like create_gpu_queue, with a nominal quota per resource (e.g. MIG slice resources)."""
    objs.create(resource_flavor(f"{namespace}-flavor"), "resourceflavors")
    cq = ClusterQueueSpec(
        name=f"{namespace}-cq",
        flavor=f"{namespace}-flavor",
        quotas=[Quota(name=r, nominal=str(k)) for r, k in quotas.items()],
        namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
    )
    objs.create(cq.body(), "clusterqueues")
    objs.create(local_queue(name, namespace, cq.name), "localqueues", namespace=namespace)
    wait_cluster_queues_active(objs.custom.api_client, [cq.name], version=objs.kueue_version)
    return name


def workload_priority_class(name: str, value: int) -> dict[str, Any]:
    # value sits at the top level of a WorkloadPriorityClass, not under spec.
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkloadPriorityClass",
        "metadata": {"name": name},
        "value": value,
        "description": "pytest-k8sai priority class",
    }


# How long a new ClusterQueue may take to turn Active: Kueue reconciles it within ~100 ms here;
# 30 s leaves room for a loaded control plane. Callers may pass a profile's bound instead.
CLUSTER_QUEUE_ACTIVE_TIMEOUT_S = 30.0


def _active_states(
    api: client.ApiClient, names: list[str], version: str = KUEUE_VERSION
) -> dict[str, str]:
    """Name -> "" once Active=True, else its Active condition (reason, message) in words."""
    custom = client.CustomObjectsApi(api)
    out = {}
    for name in names:
        cq = custom.get_cluster_custom_object(
            KUEUE_GROUP, version, "clusterqueues", name, _request_timeout=10
        )
        conds = {c["type"]: c for c in cq.get("status", {}).get("conditions", [])}
        active = conds.get("Active")
        if active is None:
            out[name] = "no Active condition yet"
        elif active.get("status") != "True":
            why = ": ".join(str(x) for x in (active.get("reason"), active.get("message")) if x)
            out[name] = f"Active={active.get('status')}" + (f" ({why})" if why else "")
        else:
            out[name] = ""
    return out


def cluster_queues_active(
    api: client.ApiClient, names: list[str], version: str = KUEUE_VERSION
) -> bool:
    """True once every named ClusterQueue reports condition Active=True."""
    return not any(_active_states(api, names, version).values())


def wait_cluster_queues_active(
    api: client.ApiClient,
    names: list[str],
    timeout_s: float = CLUSTER_QUEUE_ACTIVE_TIMEOUT_S,
    version: str = KUEUE_VERSION,
) -> None:
    """Block until the named ClusterQueues are Active: a Workload queued before that is
    marked inadmissible and waits for Kueue's next requeue (up to 1 s) instead of admission.
    After ``timeout_s`` a ClusterError names each queue not Active and its last condition."""
    deadline = time.monotonic() + timeout_s
    while names:
        states = _active_states(api, names, version)
        waiting = {n: s for n, s in states.items() if s}
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise ClusterError(
                f"ClusterQueues not Active within {timeout_s:g} s: "
                + "; ".join(f"{n}: {s}" for n, s in waiting.items())
                + ". Is the Kueue manager running and its ResourceFlavors created?"
            )
        time.sleep(0.05)
