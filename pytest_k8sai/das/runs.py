"""Run one arm of a GPU slicing experiment once: Whisper jobs on whole GPUs or on MIG slices
(optionally queued by Kueue), each followed to completion, then the figures of the paper's
Tables 5 and 6.

Generator (trace, planner) -> runner (this) -> recorder (measure.joblatency) -> checker (suite).

Experiments (paper section 4.2, plus its future work):
- ``limited`` (Table 5): 4 medium + 4 large jobs, none waits; the per-job cost of a slice.
- ``full`` (Table 6): the 32-job trace; the concurrency gain of slicing.
- ``kueue``: the 32-job trace on slices, admitted by Kueue against a ClusterQueue whose quota
  covers the slice resources.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.clusters.objects import ObjectTracker, run_namespace
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.profiles import Profile
from pytest_k8sai.das import slices as das
from pytest_k8sai.das.mig_catalogue import MIG_RESOURCE_PREFIX, load_catalogue
from pytest_k8sai.das.placement import PlacementRecorder, PlacementReport, analyse, wait_fitting
from pytest_k8sai.das.planner import Plan, best_packing, whole_gpu_best
from pytest_k8sai.das.provenance import own_slices
from pytest_k8sai.das.sizing import limited_per_model
from pytest_k8sai.das.slowdown import load_slowdown
from pytest_k8sai.kueue.objects import create_quota_queue
from pytest_k8sai.measure.joblatency import (
    MODEL_LABEL,
    JobRecord,
    JobStats,
    summarize,
)
from pytest_k8sai.workloads.jobs import paced, whisper_job
from pytest_k8sai.workloads.whisper import WhisperJob, WhisperTrace

Log = Callable[[str], None]
MODELS = ("medium", "large")  # the paper's DAS runs create medium, large, medium, ...


@dataclass(frozen=True)
class Arm:
    name: str
    title: str
    sliced: bool
    kueue: bool = False
    # The real DAS slices just in time beside the suite's own layout (local tier with DAS).
    das: bool = False


WHOLE = Arm("whole", "Whole GPUs", sliced=False)
SLICED = Arm("sliced", "MIG slices", sliced=True)
KUEUE_SLICED = Arm("kueue-sliced", "MIG slices + Kueue", sliced=True, kueue=True)
DAS_SLICED = Arm("das-sliced", "Real DAS slices", sliced=True, das=True)
# Namespaces carrying this label are rewritten by the local tier's DAS webhook (the local
# provider registers it with this selector and names it in endpoints["das_namespace_label"]).
DAS_NAMESPACE_ENDPOINT = "das_namespace_label"


def local_das(profile: Profile) -> bool:
    """The local tier runs the real DAS beside the suite's own slice layout: a third arm."""
    return own_slices(profile) and profile.capabilities.das


def das_arm(profile: Profile) -> Arm:
    """The arm whose pods DAS places: its own arm on the local tier, the sliced arm on a DAS
    cluster."""
    return DAS_SLICED if local_das(profile) else SLICED


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    jobs: tuple[WhisperJob, ...]
    arms: tuple[Arm, ...]


def experiments(profile: Profile, trace: WhisperTrace) -> dict[str, Experiment]:
    # Table 5 runs every job at once on whole GPUs: on a cluster with fewer than the paper's
    # 8 GPUs the experiment shrinks to what fits, so no job waits.
    per_model = limited_per_model(profile, len(MODELS))
    full = tuple(trace.alternating(MODELS))
    arms = (WHOLE, SLICED, DAS_SLICED) if local_das(profile) else (WHOLE, SLICED)
    return {
        "limited": Experiment(
            "limited",
            f"Limited concurrency, {per_model} jobs per model (paper Table 5)",
            tuple(trace.alternating(MODELS, per_model)),
            arms,
        ),
        "full": Experiment("full", "Full trace (paper Table 6)", full, arms),
        "kueue": Experiment("kueue", "Full trace, Kueue admitting slices", full, (KUEUE_SLICED,)),
    }


def slice_plan(profile: Profile, jobs: Sequence[WhisperJob]) -> Plan:
    """The planner's best layout for ``jobs`` on the profile's GPUs. Raises (before anything
    is created) for an unknown GPU product or MIG profile, or a mix that cannot run at all."""
    gpus = profile.capabilities.gpu_nodes
    gpu = load_catalogue().gpu(gpus.product)
    slices = profile.das_suite.slices
    missing = sorted({j.model for j in jobs} - set(slices))
    if missing:
        raise K8saiError(
            f"Profile field 'das_suite.slices' names no MIG profile for model(s) {missing} "
            f"(it has {dict(slices)})."
        )
    demand: dict[str, int] = {}
    for j in jobs:
        demand[slices[j.model]] = demand.get(slices[j.model], 0) + 1
    return best_packing(gpu, profile.total_gpus, demand)


def _peak(intervals: Sequence[tuple[float, float]]) -> int:
    """Most intervals [start, end) open at once; at equal instants ends count first."""
    events = [(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals]
    now = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        now += step
        peak = max(peak, now)
    return peak


def peak_concurrency(records: Mapping[str, JobRecord]) -> int:
    """Most pods running at once: intervals [Running seen, Succeeded/Failed seen), or the Job's
    completion when the pod's end was not seen."""
    spans = []
    for r in records.values():
        end = r.pod_finished if r.pod_finished is not None else r.completed
        if r.pod_running is not None and end is not None:
            spans.append((r.pod_running, end))
    return _peak(spans)


def peak_admitted(
    records: Mapping[str, JobRecord], resource_of: Mapping[str, str]
) -> dict[str, int]:
    """Per resource, most Jobs Kueue held admitted at once (admission -> completion or
    eviction), to hold against the ClusterQueue's quota."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for r in records.values():
        if r.model not in resource_of:
            continue
        for start, stop in r.admissions:
            end = stop if stop is not None else r.completed
            if end is not None:
                spans.setdefault(resource_of[r.model], []).append((start, end))
    return {res: _peak(s) for res, s in spans.items()}


@dataclass
class ArmResult:
    experiment: str
    arm: Arm
    run: int
    stats: JobStats
    records: dict[str, JobRecord]
    written_s: dict[str, float]  # wall seconds each job was told to run (simulated tiers)
    resource_of: dict[str, str]  # model -> the resource its jobs asked for
    best: int  # the planner's best concurrency for this mix and arm
    layout: str
    peak: int
    wall_s: float
    quota: dict[str, int] = field(default_factory=dict)  # Kueue arm: resource -> nominal
    # Real DAS only.
    claims: dict[str, das.ClaimRecord] | None = None
    leftover_claims: list[str] | None = None
    webhook_problems: list[str] | None = None
    # Where kube-scheduler places the pods (every tier but real DAS): bindings, waits.
    placement: PlacementReport | None = None
    # Sliced arms: the planner's best layout, resource -> slices (what the local tier's nodes
    # offer unless a mutant sets another layout; placement.capacity is what they offered).
    planned: dict[str, int] = field(default_factory=dict)

    @property
    def packing_efficiency(self) -> float:
        return self.peak / self.best if self.best else float("nan")


def _run_seconds(profile: Profile, arm: Arm, jobs: Sequence[WhisperJob]) -> dict[str, float]:
    # The suite's own slices (local tier) run the fitted slowdown; real slices run at their speed.
    slowdown = load_slowdown() if arm.sliced and own_slices(profile) else None
    out = {}
    for j in jobs:
        factor = slowdown.factor(profile.das_suite.slices[j.model]) if slowdown else 1.0
        out[j.name] = j.exec_seconds * factor / profile.time_compression
    return out


def _check_webhook(pods: Iterable[dict[str, Any]], resource_of: Mapping[str, str]) -> list[str]:
    """What DAS's webhook failed to do to the arm's pods (as first seen on the watch)."""
    problems = []
    for raw in pods:
        model = (raw["metadata"].get("labels") or {}).get(MODEL_LABEL)
        if model in resource_of:
            problems += das.webhook_problems(raw, {resource_of[model]: 1})
    return problems


def _das_labels(cluster: ClusterHandle, arm: Arm) -> dict[str, str]:
    """What the namespace of an arm DAS slices for needs for DAS's webhook to see its pods:
    the local tier's own arm takes the label its provider registered the webhook with; on an
    existing cluster, the labels preflight read from the webhook's selector."""
    if arm.das:
        label = cluster.endpoints.get(DAS_NAMESPACE_ENDPOINT, "")
        return dict([label.split("=", 1)]) if "=" in label else {}
    return dict(cluster.das_namespace_labels)


def run_arm(
    cluster: ClusterHandle,
    exp: Experiment,
    arm: Arm,
    *,
    run: int,
    run_id: str,
    log: Log = print,
) -> ArmResult:
    """Run ``exp``'s jobs on ``arm`` once, in a namespace of its own."""
    profile = cluster.profile
    suite = profile.das_suite
    plan = slice_plan(profile, exp.jobs) if arm.sliced else None  # errors before creating
    resource_of = {
        m: MIG_RESOURCE_PREFIX + suite.slices[m] if arm.sliced else suite.whole_gpu_resource
        for m in {j.model for j in exp.jobs}
    }
    run_s = _run_seconds(profile, arm, exp.jobs)
    # DAS runs only off the suite's own slices; it rewrites every nvidia.com/* request (whole
    # GPUs included) and das-scheduler places the pods.
    das_places = (not own_slices(profile) and profile.capabilities.das) or arm.das
    real_das = arm.sliced and das_places
    quota = (
        {MIG_RESOURCE_PREFIX + p: k for p, k in plan.placed.items()} if plan and arm.kueue else {}
    )
    with contextlib.ExitStack() as stack:
        slice_nodes: list[str] = []
        if plan is not None and own_slices(profile) and not arm.das:
            slice_nodes = stack.enter_context(
                das.simulated_slice_nodes(cluster.api_client, profile, plan, run_id)
            )
            log(f"[k8sai] das {exp.name}/{arm.name}: slice nodes {slice_nodes}: {plan.describe()}")
        ns = stack.enter_context(
            run_namespace(
                cluster,
                run_id,
                prefix=f"das-{exp.name}-{arm.name}",
                labels=_das_labels(cluster, arm) if real_das else {},
            )
        )
        queue = None
        if arm.kueue:
            objs = stack.enter_context(
                ObjectTracker(cluster.api_client, run_id, cluster.kueue_version)
            )
            queue = create_quota_queue(objs, ns, quota)
        claims = (
            stack.enter_context(das.ClaimWatcher(cluster.api_client, suite.das_namespace, ns))
            if real_das
            else None
        )
        recorder = PlacementRecorder(
            cluster.api_client,
            ns,
            resources=set(resource_of.values()),
            kueue=arm.kueue,
            cluster_queues=[f"{ns}-cq"] if queue else [],
            kueue_version=cluster.kueue_version,
        )
        bodies = {
            job.name: whisper_job(
                profile,
                job.name,
                ns,
                model=job.model,
                run_s=run_s[job.name],
                audio_s=job.audio_seconds,
                queue=queue,
                resource=resource_of[job.model],
                # DAS releases a slice in use (claim inUse, after the kubelet's Allocate) only
                # when its pod is deleted (das-daemonset's pod-deletion watcher removes the CDI
                # spec, which deletes the claim): a finished Job's pod would hold its slice.
                ttl_after_finished_s=0 if real_das else None,
                run_id=run_id,
            )
            for job in exp.jobs
        }
        # The nodes' slices as kube-scheduler sees them when the jobs arrive (static layouts;
        # under DAS, das-scheduler places pods on slices it makes, so this is not read).
        offered = None
        if not das_places:
            tolerations = next(iter(bodies.values()))["spec"]["template"]["spec"].get(
                "tolerations", []
            )
            # The suite's new slice nodes must be schedulable before any job exists; existing
            # nodes are taken as they are.
            offered = wait_fitting(
                cluster.core, slice_nodes, set(resource_of.values()), tolerations
            )
        recorder.start()
        try:
            started = time.monotonic()
            for job in paced(exp.jobs, suite.submit_qps):
                cluster.batch.create_namespaced_job(ns, bodies[job.name])
            log(f"[k8sai] das {exp.name}/{arm.name} run {run}: {len(exp.jobs)} jobs in {ns}")
            recorder.wait_complete(set(run_s), suite.job_timeout_s)
            wall = time.monotonic() - started
        finally:
            recorder.stop()
        records = recorder.records()
        placement = analyse(recorder.placements(), offered) if offered is not None else None
        leftover = problems = None
        if claims is not None:
            problems = _check_webhook(recorder.pods_as_created(), resource_of)
            leftover = claims.wait_released(suite.release_timeout_s)
            if leftover:  # reported by the claims test; removed so the next run starts clean
                log(f"[k8sai] das {exp.name}/{arm.name}: deleting {len(leftover)} leftover claims")
                for why in claims.delete(leftover):
                    log(f"[k8sai] could not delete AllocationClaim {why}")
    best = plan.best_concurrency if plan else whole_gpu_best(len(exp.jobs), profile.total_gpus)
    return ArmResult(
        experiment=exp.name,
        arm=arm,
        run=run,
        stats=summarize(records, MODELS),
        records=records,
        written_s=run_s,
        resource_of=resource_of,
        best=best,
        layout=(
            "real DAS, slices made just in time"
            if arm.das
            else plan.describe()
            if plan
            else f"{profile.total_gpus} whole GPUs"
        ),
        peak=peak_concurrency(records),
        wall_s=wall,
        quota=quota,
        claims=claims.claims() if claims is not None else None,
        leftover_claims=leftover,
        webhook_problems=problems,
        placement=placement,
        planned={MIG_RESOURCE_PREFIX + p: k for p, k in plan.placed.items()} if plan else {},
    )
