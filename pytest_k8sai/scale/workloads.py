"""Pod-less Kueue Workloads: what the scale tier submits instead of Jobs, and the two status
patches with which the runner plays the part of a job controller.

Why pod-less. The scale tier judges Kueue's admission at size, as Kueue's own scheduler
performance test does (test/performance/scheduler/runner/generator/generator.go creates bare
Workload objects with one pod set and no Job; runner/controller/controller.go finishes them).
A Workload needs no node and no pod, so Kueue's baseline "large" class (20 GPUs, more than one
8-GPU node) is admitted exactly as there, and kube-scheduler, the Job controller and KWOK's pod
stages, which would cost the 2-core machine more than Kueue itself at 15,000 workloads, stay
out of the figures. Pod start-up is the PR tier's and ClusterLoader2's subject, not this one.

With no Job, two things a job controller does fall to the runner:
- finish: once an admitted Workload has run its run time, set ``Finished=True``; Kueue then
  releases its quota. Applied server-side with the runner's own field manager, so it adds one
  condition (conditions are a map keyed by type) without replacing what Kueue wrote.
- give back an evicted Workload's quota: Kueue marks a preempted Workload ``Evicted=True`` and
  waits for its owner to stop it and clear the reservation (``QuotaReserved=False``,
  ``Admitted=False``, no ``status.admission``); only then is it requeued. A JSON merge patch
  replaces the conditions list whole, so it carries the Workload's resourceVersion: a
  concurrent change by Kueue makes it fail with 409 instead of being overwritten.
"""

from __future__ import annotations

from typing import Any

from pytest_k8sai.core.apis import KUEUE_GROUP, KUEUE_VERSION
from pytest_k8sai.scale.plan import Submission

# Labels as Kueue's runner puts on its Workloads (class and run time), in our own prefix.
CLASS_LABEL = "k8sai.io/scale-class"
RUNTIME_LABEL = "k8sai.io/scale-runtime-ms"
POD_SET = "main"  # Kueue's default pod set name
FIELD_MANAGER = "k8sai-scale-runner"  # owns the Finished condition it applies
FINISHED_REASON = "ByTest"  # Kueue's runner uses the same reason
EVICTED_REASON = "Pending"  # as Kueue's runner: back to pending after the eviction
EVICTED_MESSAGE = "Evicted; quota given back by the k8sai scale runner"

Obj = dict[str, Any]


def workload(
    sub: Submission,
    namespace: str,
    resource: str,
    labels: dict[str, str] | None = None,
    version: str = KUEUE_VERSION,
) -> Obj:
    """A Workload of one pod asking ``sub.request`` of ``resource``, in ``sub.local_queue``,
    at ``sub.priority`` (the WorkloadPriorityClass named as well, as Kueue does for a Job, so
    Kueue's metrics carry it; the number is what Kueue orders by)."""
    spec: Obj = {
        "queueName": sub.local_queue,
        "priority": sub.priority,
        "podSets": [
            {
                "name": POD_SET,
                "count": 1,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "c", "resources": {"requests": {resource: str(sub.request)}}}
                        ],
                    }
                },
            }
        ],
    }
    if version == "v1beta1":
        # v1beta1 names the class by name and source instead of a reference.
        spec["priorityClassName"] = sub.priority_class
        spec["priorityClassSource"] = f"{KUEUE_GROUP}/workloadpriorityclass"
    else:
        spec["priorityClassRef"] = {
            "group": KUEUE_GROUP,
            "kind": "WorkloadPriorityClass",
            "name": sub.priority_class,
        }
    return {
        "apiVersion": f"{KUEUE_GROUP}/{version}",
        "kind": "Workload",
        "metadata": {
            "name": sub.name,
            "namespace": namespace,
            "labels": {
                **(labels or {}),
                CLASS_LABEL: sub.class_name,
                RUNTIME_LABEL: str(round(sub.runtime_s * 1000)),
            },
        },
        "spec": spec,
    }


def _condition(ctype: str, status: str, reason: str, message: str, now: str, gen: int) -> Obj:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
        "observedGeneration": gen,
    }


def finished_apply(
    name: str, namespace: str, now: str, generation: int = 1, version: str = KUEUE_VERSION
) -> Obj:
    """Server-side apply body (manager :data:`FIELD_MANAGER`) for ``Finished=True``.
    ``now`` is RFC 3339 in seconds, as the API's metav1.Time is."""
    return {
        "apiVersion": f"{KUEUE_GROUP}/{version}",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": namespace},
        "status": {
            "conditions": [
                _condition(
                    "Finished",
                    "True",
                    FINISHED_REASON,
                    "By the k8sai scale runner",
                    now,
                    generation,
                )
            ]
        },
    }


def unreserve_patch(wl: Obj, now: str) -> Obj:
    """JSON merge patch that gives back an evicted Workload's quota: its conditions with
    ``QuotaReserved`` and ``Admitted`` False, ``status.admission`` removed, guarded by its
    resourceVersion. Every other condition (Evicted, Preempted, ...) is kept as it is."""
    meta = wl.get("metadata") or {}
    gen = int(meta.get("generation") or 1)
    conds = [dict(c) for c in (wl.get("status") or {}).get("conditions") or []]
    wanted = {
        "QuotaReserved": _condition(
            "QuotaReserved", "False", EVICTED_REASON, EVICTED_MESSAGE, now, gen
        ),
        "Admitted": _condition(
            "Admitted", "False", "NoReservation", "The workload has no reservation", now, gen
        ),
    }
    out = []
    for c in conds:
        new = wanted.pop(c.get("type", ""), None)
        # Unchanged status keeps its transition time, as apimeta.SetStatusCondition does.
        out.append(c if new is None or c.get("status") == new["status"] else new)
    out += wanted.values()  # conditions the Workload did not have yet
    return {
        "metadata": {"resourceVersion": meta.get("resourceVersion")},
        "status": {"admission": None, "conditions": out},
    }


def needs_unreserve(wl: Obj) -> bool:
    """Evicted while still holding quota (and not finished): the runner must give it back."""
    conds = {
        c.get("type"): c.get("status") for c in (wl.get("status") or {}).get("conditions") or []
    }
    return (
        conds.get("Evicted") == "True"
        and conds.get("Finished") != "True"
        and (
            conds.get("QuotaReserved") == "True" or bool((wl.get("status") or {}).get("admission"))
        )
    )
