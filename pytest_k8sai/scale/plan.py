"""A scenario expanded into the objects one run creates and the workloads it submits, when.

Names and timing follow Kueue's generator (test/performance/scheduler/runner/generator): cohort
``<class>-<i>``, ClusterQueue ``<class>-<set>-<j>-<cohort>``, and each workload set creates its
``count`` rounds one template at a time, waiting ``creation_interval_ms`` *before* each create,
with every set of every queue running in parallel. One namespace holds all LocalQueues (Kueue
uses one per ClusterQueue; admission does not depend on it), and cluster-scoped names carry the
run's prefix so runs never collide. The Kueue object bodies come from kueue.objects.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.kueue import objects as kueue
from pytest_k8sai.kueue.setups import GPU
from pytest_k8sai.scale.scenario import QueueSet, Scenario

# Job names become a label value (job-name), which is limited to 63 characters.
MAX_NAME = 63


@dataclass(frozen=True)
class Submission:
    offset_s: float  # after the start of submission
    cluster_queue: str
    local_queue: str
    class_name: str
    runtime_s: float
    request: int  # GPUs
    priority: int
    priority_class: str  # WorkloadPriorityClass name
    name: str  # unique in the run's namespace


@dataclass(frozen=True)
class Totals:
    """Figures for reports, known before anything runs."""

    workloads: int
    workloads_by_class: dict[str, int]
    gpu_seconds_by_class: dict[str, float]  # request x runtime, summed
    cohorts: int
    cluster_queues: int
    quota_gpus: int
    quota_gpus_by_queue_class: dict[str, int]
    node_gpus: int
    submit_span_s: float  # offset of the last submission
    peak_rate_per_s: int  # most submissions scheduled within any 1 s
    # All GPU-seconds over all quota: no run can finish its work sooner than this.
    busy_lower_bound_s: float
    # Classes whose request is more GPUs than one node has (Kueue's own baseline asks 20): as
    # a one-pod Job they would never run. The scale tier submits pod-less Workloads
    # (workloads.py), which Kueue admits on quota alone, so this is for the record only.
    classes_over_one_node: list[str]


@dataclass(frozen=True)
class ScalePlan:
    flavor: dict[str, Any]
    priority_classes: list[dict[str, Any]]
    cluster_queues: list[dict[str, Any]]
    local_queues: list[dict[str, Any]]
    queue_class_of: dict[str, str]  # ClusterQueue name -> its queue set's class_name
    submissions: list[Submission]  # by offset; ties keep generation order
    totals: Totals

    @property
    def cluster_objects(self) -> list[tuple[dict[str, Any], str]]:
        """(body, plural) of the cluster-scoped objects, in creation order."""
        return [
            (self.flavor, "resourceflavors"),
            *((p, "workloadpriorityclasses") for p in self.priority_classes),
            *((cq, "clusterqueues") for cq in self.cluster_queues),
        ]


def priority_class_name(prefix: str, value: int) -> str:
    return f"{prefix}-p{value}" if value >= 0 else f"{prefix}-pm{-value}"


def _peak_rate(offsets: list[float]) -> int:
    """The most offsets within any window [t, t + 1 s) (``offsets`` sorted)."""
    peak, lo = 0, 0
    for hi, t in enumerate(offsets):
        while offsets[lo] <= t - 1.0:
            lo += 1
        peak = max(peak, hi - lo + 1)
    return peak


def plan(scenario: Scenario, prefix: str, namespace: str, resource: str = GPU) -> ScalePlan:
    """Every object and submission of one run; K8saiError if a generated name is too long."""
    flavor = f"{prefix}-gpu"
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    cqs: list[dict[str, Any]] = []
    lqs: list[dict[str, Any]] = []
    queue_class_of: dict[str, str] = {}
    quota_by_class: Counter[str] = Counter()
    # (offset_ms, generation order, submission): integer ms, so offsets do not drift.
    pending: list[tuple[int, int, Submission]] = []
    cohorts = 0
    for cs in scenario.cohorts:
        for ci in range(cs.count):
            cohort = f"{cs.class_name}-{ci}"
            cohorts += 1
            for qsi, qs in enumerate(cs.queue_sets):
                for qi in range(qs.count):
                    lq = f"{qs.class_name}-{qsi}-{qi}-{cohort}"
                    spec = kueue.ClusterQueueSpec(
                        name=f"{prefix}-{lq}",
                        flavor=flavor,
                        quotas=[
                            kueue.Quota(
                                name=resource,
                                nominal=str(qs.nominal_quota),
                                borrowing_limit=None
                                if qs.borrowing_limit is None
                                else str(qs.borrowing_limit),
                            )
                        ],
                        cohort=f"{prefix}-{cohort}",
                        namespace_selector=selector,
                        preemption={
                            "reclaimWithinCohort": qs.reclaim_within_cohort,
                            "withinClusterQueue": qs.within_cluster_queue,
                        },
                    )
                    cqs.append(spec.body())
                    lqs.append(kueue.local_queue(lq, namespace, spec.name))
                    queue_class_of[spec.name] = qs.class_name
                    quota_by_class[qs.class_name] += qs.nominal_quota
                    for offset_ms, sub in _queue_submissions(qs, spec.name, lq, prefix):
                        pending.append((offset_ms, len(pending), sub))
    pending.sort(key=lambda p: (p[0], p[1]))
    subs = [p[2] for p in pending]
    _check_names(scenario, [*(cq["metadata"]["name"] for cq in cqs), *(s.name for s in subs)])
    priorities = sorted({s.priority for s in subs})
    pcs = [kueue.workload_priority_class(priority_class_name(prefix, v), v) for v in priorities]
    return ScalePlan(
        flavor=kueue.resource_flavor(flavor),
        priority_classes=pcs,
        cluster_queues=cqs,
        local_queues=lqs,
        queue_class_of=queue_class_of,
        submissions=subs,
        totals=_totals(scenario, subs, cohorts, len(cqs), dict(quota_by_class)),
    )


def _queue_submissions(
    qs: QueueSet, cluster_queue: str, local_queue: str, prefix: str
) -> list[tuple[int, Submission]]:
    """(offset in ms, submission) for every workload one ClusterQueue receives."""
    out = []
    for wsi, ws in enumerate(qs.workload_sets):
        per_round = len(ws.workloads)
        for si in range(ws.count):
            for ti, wl in enumerate(ws.workloads):
                offset_ms = (si * per_round + ti + 1) * ws.creation_interval_ms  # wait first
                sub = Submission(
                    offset_s=offset_ms / 1000,
                    cluster_queue=cluster_queue,
                    local_queue=local_queue,
                    class_name=wl.class_name,
                    runtime_s=wl.runtime_ms / 1000,
                    request=wl.request,
                    priority=wl.priority,
                    priority_class=priority_class_name(prefix, wl.priority),
                    name=f"{local_queue}-{wl.class_name}-{wsi}-{si}-{ti}",
                )
                out.append((offset_ms, sub))
    return out


def _check_names(scenario: Scenario, names: list[str]) -> None:
    longest = max(names, key=len)
    if len(longest) > MAX_NAME:
        raise K8saiError(
            f"Scale scenario '{scenario.name}': the generated name '{longest}' has "
            f"{len(longest)} characters, more than {MAX_NAME}. Shorten the class_name fields "
            "or the run's prefix."
        )


def _totals(
    scenario: Scenario,
    subs: list[Submission],
    cohorts: int,
    cluster_queues: int,
    quota_by_class: dict[str, int],
) -> Totals:
    by_class = Counter(s.class_name for s in subs)
    gpu_ms: Counter[str] = Counter()  # integer GPU-milliseconds: sums without rounding drift
    for s in subs:
        gpu_ms[s.class_name] += s.request * round(s.runtime_s * 1000)
    gpu_s = {c: ms / 1000 for c, ms in sorted(gpu_ms.items())}
    per_node = scenario.nodes.gpus_per_node
    quota = scenario.quota_gpus
    offsets = [s.offset_s for s in subs]
    return Totals(
        workloads=len(subs),
        workloads_by_class=dict(sorted(by_class.items())),
        gpu_seconds_by_class=gpu_s,
        cohorts=cohorts,
        cluster_queues=cluster_queues,
        quota_gpus=quota,
        quota_gpus_by_queue_class=quota_by_class,
        node_gpus=scenario.nodes.gpus,
        submit_span_s=offsets[-1] if offsets else 0.0,
        peak_rate_per_s=_peak_rate(offsets),
        busy_lower_bound_s=sum(gpu_s.values()) / quota if quota else float("inf"),
        classes_over_one_node=sorted({s.class_name for s in subs if s.request > per_node}),
    )
