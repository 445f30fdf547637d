"""What kube-scheduler decided for the pods of one slicing run: where each pod was bound, and
how long it stayed Pending while a slice it fits on was free.

These are the scheduler's own decisions, so they are verdicts on every tier where
kube-scheduler places the pods on a static layout (the local tier's KWOK slice nodes, an
existing MIG cluster without DAS). Under DAS, das-scheduler places the pods on slices it makes
just in time; the AllocationClaim checks cover that.

Observed from the suite's Pod watch (``PlacementRecorder`` adds to ``JobLatencyRecorder`` on
the same stream, so the order of two pods' events is the API server's):

- *bound*: the first event showing ``spec.nodeName``;
- *freed*: the first event in phase Succeeded or Failed, or the pod's deletion. kube-scheduler
  stops counting a pod against its node then (its pod informer selects
  ``status.phase!=Succeeded,status.phase!=Failed``), as ``runs.peak_concurrency`` does.

Node capacity is each node's ``status.allocatable`` of the resources the run's pods ask for,
read before the jobs are created. A node *fits* a pod when it is Ready, schedulable and
every NoSchedule/NoExecute taint on it is tolerated by the jobs' pod template; requests other
than the slice (the jobs ask for none) are not modelled. Only this run's pods are counted
against a node: on a shared cluster other tenants' pods on the same slices would make the
free count, and so the wait figure, an overestimate.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from kubernetes import client

from pytest_k8sai.core.apis import KUEUE_VERSION
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.measure.joblatency import JobLatencyRecorder

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")


@dataclasses.dataclass
class PodPlacement:
    """One pod asking for a tracked resource; monotonic seconds at event arrival."""

    name: str
    resource: str
    count: int
    created: float
    bound: float | None = None
    node: str | None = None
    freed: float | None = None  # terminal or deleted


@dataclasses.dataclass(frozen=True)
class NodeSlices:
    name: str
    allocatable: dict[str, int]  # tracked resource -> count (absent: the node has none)
    fits: bool  # Ready, schedulable, taints tolerated by the jobs' pods


def pod_request(pod: Obj, resources: Collection[str]) -> tuple[str, int] | None:
    """The tracked resource the pod's containers ask for, and how many; None if none."""
    for c in (pod.get("spec") or {}).get("containers") or ():
        res = c.get("resources") or {}
        asked = (res.get("requests") or {}) | (res.get("limits") or {})
        for name in resources:
            if name in asked:
                return name, int(str(asked[name]))
    return None


def observe_pod(
    pods: dict[str, PodPlacement],
    event_type: str,
    pod: Obj,
    t: float,
    resources: Collection[str],
) -> None:
    """Apply one Pod watch event (a dict as the API sends it) that arrived at ``t``."""
    name = (pod.get("metadata") or {}).get("name")
    if not name:
        return
    rec = pods.get(name)
    if rec is None:
        asked = pod_request(pod, resources)
        if asked is None:
            return
        rec = pods[name] = PodPlacement(name, asked[0], asked[1], created=t)
    node = (pod.get("spec") or {}).get("nodeName")
    if node and rec.bound is None:
        rec.bound, rec.node = t, node
    phase = (pod.get("status") or {}).get("phase")
    if rec.freed is None and (event_type == "DELETED" or phase in TERMINAL):
        rec.freed = t


class PlacementRecorder(JobLatencyRecorder):
    """``JobLatencyRecorder`` that also keeps each pod's binding and release (one Pod watch
    for both: no second stream, and no reordering between them)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        *,
        resources: Collection[str],
        kueue: bool,
        cluster_queues: list[str] | None = None,
        kueue_version: str = KUEUE_VERSION,
    ) -> None:
        super().__init__(
            api_client,
            namespace,
            kueue=kueue,
            cluster_queues=cluster_queues,
            kueue_version=kueue_version,
        )
        self.resources = frozenset(resources)
        self._pods: dict[str, PodPlacement] = {}
        self._first_seen: dict[str, Obj] = {}
        self._pods_lock = threading.Lock()

    def on_event(self, kind: str, event_type: str, obj: Obj, t: float) -> None:
        super().on_event(kind, event_type, obj, t)
        if kind == "Pod":
            with self._pods_lock:
                observe_pod(self._pods, event_type, obj, t, self.resources)
                name = (obj.get("metadata") or {}).get("name")
                if name and name not in self._first_seen:
                    self._first_seen[name] = obj

    def pods_as_created(self) -> list[Obj]:
        """Each pod as first seen (its spec after admission webhooks), even if it has been
        deleted since (Jobs with ttlSecondsAfterFinished)."""
        with self._pods_lock:
            return list(self._first_seen.values())

    def placements(self) -> dict[str, PodPlacement]:
        with self._pods_lock:
            return {n: dataclasses.replace(p) for n, p in self._pods.items()}


def tolerated(taint: Obj, tolerations: Sequence[Obj]) -> bool:
    """kube-scheduler's TaintToleration match for one taint."""
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        op = tol.get("operator") or "Equal"
        if not tol.get("key"):
            if op == "Exists":
                return True
            continue
        if tol.get("key") != taint.get("key"):
            continue
        if op == "Exists" or (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def node_slices(
    nodes: Sequence[Obj], resources: Collection[str], tolerations: Sequence[Obj]
) -> dict[str, NodeSlices]:
    """Per node (dicts as the API lists them), its allocatable tracked resources and whether
    the jobs' pods fit on it at all. Nodes offering none of the resources are left out."""
    out = {}
    for node in nodes:
        name = node["metadata"]["name"]
        status, spec = node.get("status") or {}, node.get("spec") or {}
        alloc = {
            r: int(str(v))
            for r, v in (status.get("allocatable") or {}).items()
            if r in resources and int(str(v)) > 0
        }
        if not alloc:
            continue
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or ()
        )
        taints_ok = all(
            tolerated(taint, tolerations)
            for taint in spec.get("taints") or ()
            if taint.get("effect") in ("NoSchedule", "NoExecute")
        )
        fits = ready and not spec.get("unschedulable") and taints_ok
        out[name] = NodeSlices(name, alloc, fits)
    return out


def read_node_slices(
    core: client.CoreV1Api, resources: Collection[str], tolerations: Sequence[Obj]
) -> dict[str, NodeSlices]:
    resp = core.list_node(_preload_content=False, _request_timeout=30)
    return node_slices(json.loads(resp.data).get("items") or [], resources, tolerations)


def wait_fitting(
    core: client.CoreV1Api,
    names: Collection[str],
    resources: Collection[str],
    tolerations: Sequence[Obj],
    timeout_s: float = 30.0,
    period_s: float = 0.1,
) -> dict[str, NodeSlices]:
    """Read the nodes until every one named fits the jobs' pods; return the last reading.

    A new node is Ready before it is schedulable: the API server's NodeTaint admission gives
    it ``node.kubernetes.io/not-ready:NoSchedule``, which the node lifecycle controller
    removes a moment later. Jobs created in between would wait for that, not for a slice."""
    deadline = time.monotonic() + timeout_s
    while True:
        nodes = read_node_slices(core, resources, tolerations)
        unfit = sorted(n for n in names if n not in nodes or not nodes[n].fits)
        if not unfit:
            return nodes
        if time.monotonic() > deadline:
            raise ClusterError(
                f"Slice nodes {unfit} not schedulable for the jobs within {timeout_s:g} s "
                "(Ready, not cordoned, every NoSchedule/NoExecute taint tolerated)."
            )
        time.sleep(period_s)


@dataclasses.dataclass(frozen=True)
class PlacementReport:
    """kube-scheduler's decisions for one run's pods (see the module docstring)."""

    pods: int  # pods seen asking for a tracked resource
    unbound: list[str]  # never bound while watched
    # Bindings that put more of a resource on a node than it has (allocatable 0 included:
    # a pod on a node without its MIG profile), as "pod -> node: resource used/allocatable".
    overcommits: list[str]
    # Pod -> seconds it was Pending while some fitting node had a free slice of its resource.
    wait_with_free_s: dict[str, float]
    # Pods that were Pending at some time with no fitting slice free: they queued for one.
    queued: list[str]
    capacity: dict[str, int]  # resource -> slices on fitting nodes

    def worst_wait(self) -> tuple[str, float]:
        """The pod that waited longest with a fitting slice free, and how long (s)."""
        if not self.wait_with_free_s:
            return "-", 0.0
        name = max(self.wait_with_free_s, key=lambda n: (self.wait_with_free_s[n], n))
        return name, self.wait_with_free_s[name]


def analyse(pods: Mapping[str, PodPlacement], nodes: Mapping[str, NodeSlices]) -> PlacementReport:
    """Replay the pods' create/bind/free events in time order against the nodes' slices.

    At one instant a pod's creation comes first, then releases, then bindings (a slice freed
    and re-bound at the same instant is not an over-commit, as in ``runs._peak``); a pod
    bound and freed at the same instant is bound first. Between two instants, each Pending
    pod either fits on some node with enough of its resource free (its wait counts) or not
    (it queued). Observation ends at the last event.
    """
    events: list[tuple[float, int, str]] = []
    for p in pods.values():
        events.append((p.created, 0, p.name))
        if p.bound is not None:
            events.append((p.bound, 2, p.name))
        if p.freed is not None:
            same = p.bound is not None and p.freed <= p.bound
            events.append((max(p.freed, p.bound or p.freed), 3 if same else 1, p.name))
    events.sort()
    used: dict[tuple[str, str], int] = {}
    pending: set[str] = set()
    gone: set[str] = set()
    over: list[str] = []
    wait = {n: 0.0 for n in pods}
    queued: set[str] = set()
    t0 = events[0][0] if events else 0.0

    def alloc(node: str | None, res: str) -> int:
        ns = nodes.get(node or "")
        return ns.allocatable.get(res, 0) if ns else 0

    def fits_now(p: PodPlacement) -> bool:
        return any(
            ns.fits and ns.allocatable.get(p.resource, 0) - used.get((n, p.resource), 0) >= p.count
            for n, ns in nodes.items()
        )

    i = 0
    while i < len(events):
        t = events[i][0]
        while i < len(events) and events[i][0] == t:
            _, kind, name = events[i]
            p = pods[name]
            if kind == 0 and name not in gone:
                pending.add(name)
            elif kind == 2:
                pending.discard(name)
                key = (p.node or "", p.resource)
                used[key] = used.get(key, 0) + p.count
                if used[key] > alloc(p.node, p.resource):
                    over.append(
                        f"{name} -> {p.node}: {p.resource} {used[key]}/"
                        f"{alloc(p.node, p.resource)} at +{t - t0:.3f} s"
                    )
            else:  # freed: releases its slice if bound, else stops waiting
                pending.discard(name)
                gone.add(name)
                if p.bound is not None:
                    key = (p.node or "", p.resource)
                    used[key] = used.get(key, 0) - p.count
            i += 1
        if i < len(events):
            dt = events[i][0] - t
            for name in pending:
                if fits_now(pods[name]):
                    wait[name] += dt
                elif dt > 0:
                    queued.add(name)
    capacity: dict[str, int] = {}
    for ns in nodes.values():
        if ns.fits:
            for r, k in ns.allocatable.items():
                capacity[r] = capacity.get(r, 0) + k
    return PlacementReport(
        pods=len(pods),
        unbound=sorted(n for n, p in pods.items() if p.bound is None),
        overcommits=over,
        wait_with_free_s=wait,
        queued=sorted(queued),
        capacity=capacity,
    )
