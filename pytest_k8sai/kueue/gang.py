"""What a gang-scheduling check reads off Kueue's objects: how many pods an admission covers,
whether a Workload holds quota, and whether a LocalQueue has drained.

Pure functions over the objects as the API returns them (dicts), so the rules are tested
without a cluster.
"""

from __future__ import annotations

from typing import Any

from pytest_k8sai.kueue.objects import workload_conditions


def pods_requested(workload: dict[str, Any]) -> int:
    """Pods the Workload asks for: the sum of its podSets' counts."""
    return sum(int(ps.get("count", 1)) for ps in workload.get("spec", {}).get("podSets", []))


def pods_assigned(workload: dict[str, Any]) -> int:
    """Pods Kueue's admission covers: the sum of status.admission.podSetAssignments[].count.

    An assignment without ``count`` covers its whole podSet (Kueue leaves it out on older
    versions), so that podSet's own count is used; no admission at all is 0."""
    admission = workload.get("status", {}).get("admission") or {}
    counts = {
        ps["name"]: int(ps.get("count", 1)) for ps in workload.get("spec", {}).get("podSets", [])
    }
    total = 0
    for psa in admission.get("podSetAssignments", []):
        count = psa.get("count")
        total += int(count) if count is not None else counts.get(psa.get("name", ""), 0)
    return total


def assigned_usage(workload: dict[str, Any], resource: str) -> str | None:
    """The quantity of ``resource`` the admission reserves in its first podSet that names it
    (as written by Kueue, e.g. "2"), or None when the admission does not cover it."""
    admission = workload.get("status", {}).get("admission") or {}
    for psa in admission.get("podSetAssignments", []):
        usage = psa.get("resourceUsage") or {}
        if resource in usage:
            return str(usage[resource])
    return None


def holds_quota(workload: dict[str, Any] | None) -> bool:
    """True when the Workload reserves quota (QuotaReserved or Admitted is True): the state a
    gang that does not fit must never reach."""
    conds = workload_conditions(workload or {})
    return conds.get("QuotaReserved") == "True" or conds.get("Admitted") == "True"


def is_finished(workload: dict[str, Any]) -> bool:
    return workload_conditions(workload).get("Finished") == "True"


def unfinished(workloads: list[dict[str, Any]]) -> list[str]:
    """Names of the Workloads that are not Finished (pending, reserving or admitted)."""
    return [wl["metadata"]["name"] for wl in workloads if not is_finished(wl)]


def queue_counts(local_queue: dict[str, Any]) -> dict[str, int] | None:
    """A LocalQueue's pending, reserving and admitted Workload counts, or None before Kueue
    has written its status."""
    status = local_queue.get("status")
    if not status:
        return None
    return {
        key: int(status.get(key, 0))
        for key in ("pendingWorkloads", "reservingWorkloads", "admittedWorkloads")
    }


def queue_drained(local_queue: dict[str, Any]) -> bool:
    """True when the LocalQueue's status counts no pending, reserving or admitted Workload."""
    counts = queue_counts(local_queue)
    return counts is not None and not any(counts.values())
