"""AI conformance, gang_scheduling: a multi-pod GPU job is admitted whole or not at all.

Like the upstream check (kubernetes-sigs/ai-conformance TestGangScheduling), with GPUs instead
of CPU: a ClusterQueue holds Q GPUs. Job A (Q pods x 1 GPU) is admitted as one gang (its
Workload's podSetAssignments cover all Q pods) and all Q pods are created and scheduled. Job B
(Q + 1 pods) never fits the quota: it stays suspended with no pod created and its Workload
holds no quota, also once A has finished and the whole quota is free. Then, with A done and B
deleted, the LocalQueue drains.

Kueue's admission is real on every tier. Where A's pods land on KWOK nodes nothing runs behind
them, so the evidence is API-level; where they run on a node with a kubelet, it is runtime.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from kubernetes import client

from pytest_k8sai.clusters.objects import ObjectTracker
from pytest_k8sai.core.apis import KUEUE_GROUP
from pytest_k8sai.kueue import gang
from pytest_k8sai.kueue import objects as kueue
from pytest_k8sai.workloads.devicecheck import is_kwok_node
from pytest_k8sai.workloads.jobs import gpu_job

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.aic("gang_scheduling"),
    pytest.mark.requires("kueue", "gpu"),
]

QUOTA_GPUS = 2  # Q: the ClusterQueue's GPUs; A asks for all of them, B for one more
RUN_SECONDS = 3.0  # A's pods run this long (KWOK: its annotations; real nodes: sleep)
# How long B must stay untouched after it is created. Kueue tries a Workload at once and
# again on every change of its ClusterQueue's usage, so 10 s covers many attempts while A holds
# the quota. The hold also lasts until FREE_HOLD_S after A completes: Kueue requeues B when A's
# quota is released, and B must not fit a quota that is entirely free either.
HOLD_S = 10.0
FREE_HOLD_S = 3.0
STEP_TIMEOUT_S = 60.0
# B's Workload goes when kube-controller-manager's garbage collector follows its owner Job: at
# once on a running cluster, but up to ~20 s on one started moments before (measured on the
# local tier: the collector watches Kueue's Workloads only after its first discovery resync).
# Kueue then updates the LocalQueue's counts within about a second.
DRAIN_TIMEOUT_S = 60.0
POLL_S = 0.05
T = TypeVar("T")


def _wait(what: str, probe: Callable[[], T | None], timeout_s: float = STEP_TIMEOUT_S) -> T:
    deadline = time.monotonic() + timeout_s
    while (value := probe()) is None or value is False:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}", pytrace=False)
        time.sleep(POLL_S)
    return value


def _pods_of(cluster, namespace: str, job: str) -> list[Any]:
    pods = cluster.core.list_namespaced_pod(namespace).items
    return [
        p
        for p in pods
        if any(o.kind == "Job" and o.name == job for o in p.metadata.owner_references or [])
    ]


def _job_complete(cluster, namespace: str, job: str) -> bool:
    status = cluster.batch.read_namespaced_job_status(job, namespace).status
    return any(c.type == "Complete" and c.status == "True" for c in status.conditions or [])


def _job_failed(cluster, namespace: str, job: str) -> bool:
    status = cluster.batch.read_namespaced_job_status(job, namespace).status
    return any(c.type == "Failed" and c.status == "True" for c in status.conditions or [])


def test_gpu_gang_admitted_whole_or_not_at_all(
    cluster, k8s_namespace, k8sai_run_id, slo, aic
):  # fmt: skip
    ns = k8s_namespace

    def wl_of(job: str) -> dict[str, Any] | None:
        return kueue.workload_for_job(cluster.api_client, ns, job, cluster.kueue_version)

    def admitted(job: str) -> dict[str, Any] | None:
        wl = wl_of(job)
        return wl if kueue.is_admitted(wl) else None

    with ObjectTracker(cluster.api_client, k8sai_run_id, cluster.kueue_version) as objs:
        lq = kueue.create_gpu_queue(
            objs, ns, QUOTA_GPUS, name="gang", resource=cluster.gpu_resource
        )

        # --- A: Q pods x 1 GPU, exactly the quota: admitted as one gang.
        job_a = gpu_job(
            "gang-a", ns, run_seconds=RUN_SECONDS, gpus=1, queue=lq, pods=cluster.profile.workload,
            resource=cluster.gpu_resource, parallelism=QUOTA_GPUS, run_id=k8sai_run_id,
        )  # fmt: skip
        created_a = time.monotonic()
        cluster.batch.create_namespaced_job(ns, job_a)
        wl_a = _wait("Job gang-a's Workload to be Admitted", lambda: admitted("gang-a"))
        admitted_a = time.monotonic()
        assert gang.pods_requested(wl_a) == QUOTA_GPUS, (
            f"Workload {wl_a['metadata']['name']} asks for {gang.pods_requested(wl_a)} pods, "
            f"Job gang-a has {QUOTA_GPUS}"
        )
        assigned = gang.pods_assigned(wl_a)
        assert assigned == QUOTA_GPUS, (
            f"Kueue admitted {assigned} of gang-a's {QUOTA_GPUS} pods: "
            f"status.admission={wl_a['status'].get('admission')}"
        )
        usage = gang.assigned_usage(wl_a, cluster.gpu_resource)
        assert usage == str(QUOTA_GPUS), (
            f"gang-a's admission reserves {usage} {cluster.gpu_resource}, not {QUOTA_GPUS}"
        )

        def all_scheduled() -> list[Any] | None:
            pods = _pods_of(cluster, ns, "gang-a")
            done = len(pods) == QUOTA_GPUS and all(p.spec.node_name for p in pods)
            return pods if done else None

        pods_a = _wait(f"all {QUOTA_GPUS} pods of gang-a to be scheduled", all_scheduled)
        scheduled_a = time.monotonic()
        nodes_a = sorted({p.spec.node_name for p in pods_a})

        # --- B: Q + 1 pods, one more than the quota: must not be admitted in part.
        job_b = gpu_job(
            "gang-b", ns, run_seconds=RUN_SECONDS, gpus=1, queue=lq, pods=cluster.profile.workload,
            resource=cluster.gpu_resource, parallelism=QUOTA_GPUS + 1, run_id=k8sai_run_id,
        )  # fmt: skip
        cluster.batch.create_namespaced_job(ns, job_b)
        hold_from = time.monotonic()
        wl_b = _wait("Kueue to create a Workload for Job gang-b", lambda: wl_of("gang-b"))
        a_done_at: float | None = None
        polls = 0
        while True:
            polls += 1
            now = time.monotonic()
            pods_b = _pods_of(cluster, ns, "gang-b")
            assert not pods_b, (
                f"{len(pods_b)} pod(s) of gang-b ({QUOTA_GPUS + 1} pods, quota {QUOTA_GPUS} GPUs) "
                f"were created {now - hold_from:.1f}s after it: "
                f"{[p.metadata.name for p in pods_b]}"
            )
            wl_b = wl_of("gang-b") or wl_b
            assert not gang.holds_quota(wl_b), (
                f"Workload {wl_b['metadata']['name']} of gang-b reserves quota it cannot fit: "
                f"{kueue.workload_conditions(wl_b)}"
            )
            suspended = cluster.batch.read_namespaced_job("gang-b", ns).spec.suspend
            assert suspended is True, f"Job gang-b was unsuspended (suspend={suspended})"
            if a_done_at is None:
                assert not _job_failed(cluster, ns, "gang-a"), "Job gang-a failed"
                if _job_complete(cluster, ns, "gang-a"):
                    a_done_at = now
            if (
                now - hold_from >= HOLD_S
                and a_done_at is not None
                and (now - a_done_at >= FREE_HOLD_S)
            ):
                break
            if now - hold_from > STEP_TIMEOUT_S + RUN_SECONDS:
                pytest.fail(
                    f"Job gang-a did not complete within {STEP_TIMEOUT_S + RUN_SECONDS:.0f}s",
                    pytrace=False,
                )
            time.sleep(0.2)
        held_s = time.monotonic() - hold_from
        pending_reason = next(
            (
                c.get("message", "")
                for c in wl_b.get("status", {}).get("conditions", [])
                if c.get("type") == "QuotaReserved"
            ),
            "",
        )

        # --- Drain: A is done, B deleted; the LocalQueue must count nothing left.
        cluster.batch.delete_namespaced_job("gang-b", ns, propagation_policy="Background")
        drain_from = time.monotonic()
        custom = client.CustomObjectsApi(cluster.api_client)

        def drained() -> bool:
            lq_obj = custom.get_namespaced_custom_object(
                KUEUE_GROUP, cluster.kueue_version, ns, "localqueues", lq
            )
            wls = custom.list_namespaced_custom_object(
                KUEUE_GROUP, cluster.kueue_version, ns, "workloads"
            )["items"]
            return gang.queue_drained(lq_obj) and not gang.unfinished(wls)

        _wait(
            f"LocalQueue {lq} to drain (no pending, reserving or admitted Workload)",
            drained,
            DRAIN_TIMEOUT_S,
        )
        drain_ms = (time.monotonic() - drain_from) * 1000

    # Evidence: the admission is Kueue's on every tier; the pods ran only on a real node.
    to_dict = cluster.api_client.sanitize_for_serialization
    kwok = [n for n in nodes_a if is_kwok_node(to_dict(cluster.core.read_node(n)))]
    if kwok:
        aic.tier(
            "api",
            f"Kueue admitted a {QUOTA_GPUS}-pod GPU gang whole and held a {QUOTA_GPUS + 1}-pod "
            f"one with no pod; the gang's pods were placed on KWOK node(s) {', '.join(kwok)} "
            "(no container runs there)",
        )
    else:
        aic.tier(
            "runtime",
            f"Kueue admitted a {QUOTA_GPUS}-pod GPU gang whole; its pods ran to completion on "
            f"{', '.join(nodes_a)} (kubelet + container runtime); a {QUOTA_GPUS + 1}-pod gang "
            "got no pod",
        )
    aic.note(
        f"ClusterQueue quota {QUOTA_GPUS} {cluster.gpu_resource}: gang-a ({QUOTA_GPUS} x 1 GPU) "
        f"admitted with podSetAssignments count {assigned}, all pods scheduled; gang-b "
        f"({QUOTA_GPUS + 1} x 1 GPU) suspended, 0 pods, no quota for {held_s:.1f}s (incl. "
        f"{FREE_HOLD_S:g}s with the quota free); Kueue says: {pending_reason or '(no message)'}; "
        f"LocalQueue drained {drain_ms:.0f} ms after gang-b was deleted"
    )
    slo.info(
        "gang A admission latency",
        (admitted_a - created_a) * 1000,
        unit="ms",
        n=1,
        source=f"Job create -> Workload Admitted ({QUOTA_GPUS} pods x 1 GPU), polled every "
        f"{POLL_S * 1000:.0f} ms",
    )
    slo.info(
        "gang A all pods scheduled",
        (scheduled_a - created_a) * 1000,
        unit="ms",
        n=QUOTA_GPUS,
        source="Job create -> every pod has spec.nodeName, polled",
    )
    slo.info(
        "gang B pods created during hold",
        0,
        unit="pods",
        n=polls,
        source=f"pods owned by gang-b ({QUOTA_GPUS + 1} x 1 GPU, quota {QUOTA_GPUS}), listed "
        f"{polls} times over {held_s:.1f}s",
    )
    slo.info(
        "gang queue drain time",
        drain_ms,
        unit="ms",
        n=1,
        source="gang-b deleted -> LocalQueue pending/reserving/admitted all 0 and no unfinished "
        "Workload, polled; includes the garbage collector removing gang-b's Workload (slow on a "
        "cluster started seconds before)",
    )
