"""MIG slices on a cluster: simulated slice layouts on the local tier, and the checks of the
Dynamic Accelerator Slicer (DAS, openshift/instaslice-operator) on a real cluster.

Local tier: the GPU operator's mixed strategy exposes each MIG profile as an extended resource
(``nvidia.com/mig-1g.5gb: 16``) on the node. ``simulated_slice_nodes`` adds KWOK nodes that
expose the planner's layout that way (no whole GPUs) for one experiment and deletes them after;
the profile's own GPU nodes are never changed, so other suites in the session see them as they
were, also after a crash. kube-scheduler places the pods by those counts. This checks the suite
and the scheduling effect of slicing; DAS itself does not run there.

Real DAS (the ``next`` branch design): a mutating webhook rewrites container limits
``nvidia.com/mig-<profile>`` to ``mig.das.com/<profile>`` and sets ``schedulerName:
das-scheduler``; the scheduler creates one AllocationClaim (inference.redhat.com/v1alpha1,
namespaced in the operator's namespace, ``spec.podRef`` naming the pod) per slice and moves it
through ``status.state`` staged/created/processing/inUse; the slice is released when the claim
is deleted after the pod ends.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters.base import RUN_ID_LABEL
from pytest_k8sai.clusters.local import kwok_nodes
from pytest_k8sai.core import mutants
from pytest_k8sai.core.apis import DAS_CLAIM_CRD, DAS_CLAIMS, DAS_GROUP, DAS_VERSION
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.core.profiles import Profile
from pytest_k8sai.das.mig_catalogue import MIG_RESOURCE_PREFIX, CatalogueError, load_catalogue
from pytest_k8sai.das.planner import Plan

MIG_CAPABLE_LABEL = "nvidia.com/mig.capable"
MIG_STRATEGY_LABEL = "nvidia.com/mig.strategy"
SLICE_NODE_PREFIX = "kwok-mig"
CLAIMS = DAS_CLAIMS
CLAIM_CRD = DAS_CLAIM_CRD
DAS_WEBHOOK = "das-mutating-webhook-configuration"
DAS_SCHEDULER = "das-scheduler"
DAS_RESOURCE_PREFIX = "mig.das.com/"
NODE_READY_TIMEOUT_S = 30.0


# -- local tier: simulated slice layouts ------------------------------------------------------


def slice_node_bodies(profile: Profile, plan: Plan, run_id: str) -> list[dict[str, Any]]:
    """One KWOK node per profile GPU node that gets slices, exposing them as mixed-strategy
    resources and no whole GPUs."""
    spec = profile.capabilities.gpu_nodes
    tag = secrets.token_hex(3)
    bodies = []
    layout = mutated_layout(profile) or plan.slices_per_node(spec.gpus_per_node)
    for i, counts in enumerate(layout):
        if not counts:
            continue
        node_spec = spec.model_copy(
            update={"extra_resources": {MIG_RESOURCE_PREFIX + p: k for p, k in counts.items()}}
        )
        bodies.append(
            kwok_nodes.gpu_node(
                f"{SLICE_NODE_PREFIX}-{i}-{tag}",
                node_spec,
                whole_gpus=0,
                extra_labels={
                    MIG_CAPABLE_LABEL: "true",
                    MIG_STRATEGY_LABEL: "mixed",
                    RUN_ID_LABEL: run_id,
                },
            )
        )
    return bodies


def mutated_layout(profile: Profile) -> list[dict[str, int]] | None:
    """Per node, profile -> slices of the active mutant's ``slices.gpus`` layout (None when
    no mutant sets one). Each GPU's profiles must exist on the profile's GPU product and fit
    its memory and compute slices; the planner's placement rules are not applied, as a
    hand-made MIG configuration may not follow them either."""
    changes = mutants.changes().slices
    if changes is None:
        return None
    spec = profile.capabilities.gpu_nodes
    field = "slices.gpus"
    if len(changes.gpus) > profile.total_gpus:
        raise mutants.MutantError(
            f"{mutants.where(field)}: {len(changes.gpus)} GPUs listed, but the profile's "
            f"cluster has {profile.total_gpus}."
        )
    try:
        gpu = load_catalogue().gpu(spec.product)
        for i, names in enumerate(changes.gpus):
            parts = [gpu.profile(n) for n in names]
            memory, compute = sum(p.size for p in parts), sum(p.compute for p in parts)
            if memory > gpu.memory_slices or compute > gpu.compute_slices:
                raise CatalogueError(
                    f"GPU {i} ({' + '.join(names)}) needs {memory} memory and {compute} "
                    f"compute slices; a {gpu.model} has {gpu.memory_slices} and "
                    f"{gpu.compute_slices}."
                )
    except CatalogueError as exc:
        raise mutants.MutantError(f"{mutants.where(field)}: {exc}") from None
    nodes: list[dict[str, int]] = []
    for first in range(0, len(changes.gpus), spec.gpus_per_node):
        counts: dict[str, int] = {}
        for names in changes.gpus[first : first + spec.gpus_per_node]:
            for n in names:
                counts[n] = counts.get(n, 0) + 1
        nodes.append(counts)
    return nodes


def _allocatable_shown(core: client.CoreV1Api, body: dict[str, Any]) -> bool:
    node = core.read_node_status(body["metadata"]["name"])
    conds = node.status.conditions or []
    if not any(c.type == "Ready" and c.status == "True" for c in conds):
        return False
    alloc = node.status.allocatable or {}
    return all(alloc.get(k) == v for k, v in body["status"]["allocatable"].items())


@contextlib.contextmanager
def simulated_slice_nodes(
    api: client.ApiClient, profile: Profile, plan: Plan, run_id: str
) -> Iterator[list[str]]:
    """Create the layout's KWOK nodes, wait until they are Ready and show their slices, and
    delete them on exit (also after a failure or Ctrl-C)."""
    core = client.CoreV1Api(api)
    bodies = slice_node_bodies(profile, plan, run_id)
    made: list[str] = []
    try:
        for body in bodies:
            core.create_node(body)
            made.append(body["metadata"]["name"])
        deadline = time.monotonic() + NODE_READY_TIMEOUT_S
        while not all(_allocatable_shown(core, b) for b in bodies):
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"KWOK slice nodes {made} not Ready with their MIG resources within "
                    f"{NODE_READY_TIMEOUT_S:g} s; is kwok running?"
                )
            time.sleep(0.1)
        yield made
    finally:
        for name in made:
            with contextlib.suppress(ApiException):
                core.delete_node(name)


# -- real DAS -------------------------------------------------------------------------------


def das_missing(api: client.ApiClient) -> str | None:
    """Why DAS is not usable on this cluster, or None: its AllocationClaim CRD and its pod
    webhook must both exist."""
    try:
        client.ApiextensionsV1Api(api).read_custom_resource_definition(CLAIM_CRD)
    except ApiException as exc:
        return f"DAS is not installed: CRD {CLAIM_CRD} -> HTTP {exc.status}"
    try:
        client.AdmissionregistrationV1Api(api).read_mutating_webhook_configuration(DAS_WEBHOOK)
    except ApiException as exc:
        return (
            f"DAS webhook missing: MutatingWebhookConfiguration {DAS_WEBHOOK} -> HTTP {exc.status}"
        )
    return None


def mig_capable_nodes(core: client.CoreV1Api) -> list[str]:
    nodes = core.list_node(label_selector=f"{MIG_CAPABLE_LABEL}=true").items
    return [n.metadata.name for n in nodes]


def webhook_problems(pod: Mapping[str, Any], asked: Mapping[str, int]) -> list[str]:
    """What DAS's webhook failed to do to ``pod`` (a dict as the API returns it), whose
    containers asked for ``asked`` (nvidia.com/mig-<profile> -> count) before admission."""
    name = (pod.get("metadata") or {}).get("name", "?")
    spec = pod.get("spec") or {}
    problems = []
    if spec.get("schedulerName") != DAS_SCHEDULER:
        problems.append(f"{name}: schedulerName {spec.get('schedulerName')!r}, not {DAS_SCHEDULER}")
    limits: dict[str, str] = {}
    for c in spec.get("containers") or ():
        limits |= ((c.get("resources") or {}).get("limits")) or {}
    for resource, count in asked.items():
        want = DAS_RESOURCE_PREFIX + resource.removeprefix(MIG_RESOURCE_PREFIX)
        if str(limits.get(want)) != str(count):
            problems.append(f"{name}: limit {want} is {limits.get(want)!r}, expected {count}")
        if resource in limits:
            problems.append(f"{name}: limit {resource} was not rewritten")
    return problems


@dataclass
class ClaimRecord:
    """What polling saw of one AllocationClaim: monotonic seconds."""

    name: str
    pod: str
    profile: str
    first_seen: float
    states: dict[str, float] = field(default_factory=dict)  # state -> first seen in it
    gone: float | None = None


# AllocationClaim states in the order DAS moves a claim through them (instaslice-operator
# `next`, pkg/apis/dasoperator/v1alpha1). das-scheduler's Filter stages one claim per feasible
# node; PreBind promotes the chosen node's to created and deletes the rest; the node agent's
# Allocate() (a kubelet calls it) moves it to processing and inUse.
CLAIM_STATES = ("staged", "created", "processing", "inUse")


@dataclass
class ClaimLifecycle:
    """One run's claims judged per pod: ``problems`` is empty when each pod got exactly one
    allocated claim (past ``staged``), every claim only moved forward, and every pod had one."""

    problems: list[str]
    allocated: int  # claims that went past staged
    candidates: int  # staged-only claims (other feasible nodes), deleted by das-scheduler
    in_use: int  # allocated claims seen inUse (only where a kubelet ran Allocate)


def claim_lifecycle(claims: Mapping[str, ClaimRecord], pods: int) -> ClaimLifecycle:
    """Judge the claims of a run whose jobs made ``pods`` pods."""
    problems: list[str] = []
    allocated: dict[str, int] = {}
    candidates = in_use = 0
    for c in claims.values():
        seen = sorted(c.states, key=c.states.__getitem__)
        known = [s for s in seen if s in CLAIM_STATES]
        if seen != known or known != sorted(known, key=CLAIM_STATES.index):
            problems.append(f"{c.name}: states {seen}")
        if any(s != "staged" for s in known):
            allocated[c.pod] = allocated.get(c.pod, 0) + 1
            in_use += "inUse" in known
        else:
            candidates += 1
    if len(allocated) < pods:
        problems.append(f"{len(allocated)} of {pods} pods had a claim past 'staged'")
    problems += [f"{p}: {k} claims past 'staged'" for p, k in allocated.items() if k != 1]
    return ClaimLifecycle(problems, sum(allocated.values()), candidates, in_use)


class ClaimWatcher:
    """Polls DAS's AllocationClaims for pods of one namespace (DAS keeps them in its own
    namespace and names the pod in ``spec.podRef``). Polling, not a watch: a run has a few
    dozen claims, and a poll cannot lose a deletion the way an expired watch can."""

    def __init__(
        self, api: client.ApiClient, das_namespace: str, namespace: str, period_s: float = 0.5
    ) -> None:
        self._custom = client.CustomObjectsApi(api)
        self.das_namespace = das_namespace
        self.namespace = namespace
        self.period_s = period_s
        self._claims: dict[str, ClaimRecord] = {}
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="das-claims")

    def __enter__(self) -> ClaimWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.period_s + 30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except ApiException as exc:
                with self._lock:
                    self._errors = [*self._errors[-9:], f"HTTP {exc.status} {exc.reason}"]
            self._stop.wait(self.period_s)

    def poll(self) -> list[str]:
        """One listing; returns the names of this namespace's claims that exist now."""
        items = self._custom.list_namespaced_custom_object(
            DAS_GROUP, DAS_VERSION, self.das_namespace, CLAIMS, _request_timeout=30
        )["items"]
        t = time.monotonic()
        return self.observe(items, t)

    def observe(self, items: list[dict[str, Any]], t: float) -> list[str]:
        """Apply one listing taken at ``t`` (pure apart from the lock; tests feed it)."""
        present = []
        with self._lock:
            for item in items:
                spec = item.get("spec") or {}
                ref = spec.get("podRef") or {}
                if ref.get("namespace") != self.namespace:
                    continue
                name = item["metadata"]["name"]
                present.append(name)
                rec = self._claims.get(name)
                if rec is None:
                    rec = self._claims[name] = ClaimRecord(
                        name, str(ref.get("name")), str(spec.get("profile")), t
                    )
                state = (item.get("status") or {}).get("state")
                if state and state not in rec.states:
                    rec.states[state] = t
            for name, rec in self._claims.items():
                if rec.gone is None and name not in present:
                    rec.gone = t
        return present

    def claims(self) -> dict[str, ClaimRecord]:
        with self._lock:
            return {
                n: ClaimRecord(**vars(r) | {"states": dict(r.states)})
                for n, r in self._claims.items()
            }

    def wait_released(self, timeout_s: float) -> list[str]:
        """Poll until no claim of the namespace is left; return those still there."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = self.poll()
            if not left or time.monotonic() > deadline:
                return sorted(left)
            time.sleep(self.period_s)

    def delete(self, names: list[str]) -> list[str]:
        """Delete claims of this namespace's pods that DAS left behind (already reported as
        leftovers), so they hold no slice in the next run; return the ones that failed."""
        failed = []
        for name in names:
            try:
                self._custom.delete_namespaced_custom_object(
                    DAS_GROUP, DAS_VERSION, self.das_namespace, CLAIMS, name, _request_timeout=30
                )
            except ApiException as exc:
                if exc.status != 404:
                    failed.append(f"{name}: HTTP {exc.status} {exc.reason}")
        return failed
