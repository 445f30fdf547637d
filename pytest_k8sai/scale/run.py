"""One scale run on an already started cluster: nodes, Kueue queues, paced pod-less Workloads,
the watch that records admissions and finishes Workloads after their run time, /proc figures
of the local tier's processes, a time budget, and cleanup of everything the run created.

Phases (each named in the result when the budget runs out in it): ``nodes`` (create the
scenario's KWOK GPU nodes, wait until Ready), ``queues`` (ResourceFlavor, priority classes,
ClusterQueues, LocalQueues; wait until the ClusterQueues are Active), ``submit`` (the pacer),
``drain`` (until every Workload finished). Cleanup runs after any of them, on failure and on
Ctrl-C too: Workloads, then queue objects, the namespace, the nodes. What it could not delete
is listed in the result (``k8sai sweep`` finds it by the run id label).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters.apiclient import with_pool_size
from pytest_k8sai.clusters.base import RUN_ID_LABEL, ClusterHandle
from pytest_k8sai.clusters.local.state import live_pids
from pytest_k8sai.clusters.objects import ObjectTracker, ownership_labels, run_namespace
from pytest_k8sai.core.apis import KUEUE_GROUP
from pytest_k8sai.core.progress import progress
from pytest_k8sai.kueue.objects import wait_cluster_queues_active
from pytest_k8sai.scale import nodes as scale_nodes
from pytest_k8sai.scale import workloads as wl
from pytest_k8sai.scale.attempts import AttemptWindow
from pytest_k8sai.scale.budget import DEFAULT_FACTOR, Budget
from pytest_k8sai.scale.finisher import Finisher
from pytest_k8sai.scale.plan import ScalePlan, plan
from pytest_k8sai.scale.procstats import ProcStats
from pytest_k8sai.scale.record import Action, Recorder
from pytest_k8sai.scale.results import HarnessFigures, NodeResult, ScaleResult, write
from pytest_k8sai.scale.scenario import Scenario
from pytest_k8sai.scale.submit import Pacer
from pytest_k8sai.scale.summary import fill_workload_figures, proc_results, submit_figures
from pytest_k8sai.scale.watch import WorkloadWatch

Log = Callable[[str], None]
SAMPLE_S = 1.0  # pending depth and /proc sampling period
UNRESERVE_RETRIES = 3  # 409s in a row before a give-back is reported as failed
# Connections beyond the senders: the finisher's threads (4), the watch, node creation (4 at a
# time) and cleanup, with room to spare.
POOL_EXTRA = 12
WORKLOAD_DELETE_S = 600.0  # deleting 15,000 Workloads took longer than one 60 s call
RETRY_DELETE_STATUS = (429, 500, 503, 504)  # the server timed out or shed load: call again


def _now_rfc3339() -> str:
    # metav1.Time has one-second precision; the condition's time is for people, not figures.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _discard(resp: Any) -> None:
    """Read and drop a raw response (``_preload_content=False``): the client raises for
    non-2xx itself, and decoding the echoed Workload was a tenth of the harness's CPU at
    15,000 workloads (py-spy). Reading it returns the connection to the pool."""
    resp.read()
    resp.release_conn()


class _Patcher:
    """The runner's part of a job controller (see scale/workloads.py), called by Finisher."""

    def __init__(self, api: client.ApiClient, ns: str, version: str, rec: Recorder) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._ns, self._version, self._rec = ns, version, rec

    def __call__(self, action: Action) -> None:
        if action.kind == "finish":
            self._finish(action)
        else:
            self._unreserve(action)

    def _finish(self, a: Action) -> None:
        if not self._rec.still_admitted(a.name, a.epoch):
            return  # evicted since: its next admission brings its own finish
        body = wl.finished_apply(a.name, self._ns, _now_rfc3339(), a.generation, self._version)
        self._patch(
            a.name,
            body,
            "application/apply-patch+yaml",
            field_manager=wl.FIELD_MANAGER,
            force=True,
        )

    def _patch(self, name: str, body: object, content_type: str, **kw: Any) -> None:
        """A status patch whose answer (the whole Workload) is read but not decoded."""
        _discard(
            self._custom.patch_namespaced_custom_object_status(
                KUEUE_GROUP,
                self._version,
                self._ns,
                "workloads",
                name,
                body,
                _content_type=content_type,
                _request_timeout=30,
                _preload_content=False,
                **kw,
            )
        )

    def _unreserve(self, a: Action) -> None:
        obj = a.obj or {}
        for _ in range(UNRESERVE_RETRIES):
            try:
                self._patch(
                    a.name, wl.unreserve_patch(obj, _now_rfc3339()), "application/merge-patch+json"
                )
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
            # Kueue changed it in between: look again; it may not need us any more.
            obj = self._custom.get_namespaced_custom_object(
                KUEUE_GROUP, self._version, self._ns, "workloads", a.name, _request_timeout=30
            )
            if not wl.needs_unreserve(obj):
                return
        raise RuntimeError(f"{a.name}: quota give-back conflicted {UNRESERVE_RETRIES} times")


def _pids(cluster: ClusterHandle) -> dict[str, int]:
    """The local tier's component pids (its state file sits beside the logs directory)."""
    logs = cluster.endpoints.get("logs")
    return live_pids(Path(logs).parent) if logs else {}


class _Sampler:
    """Pending depth (and /proc) every SAMPLE_S on a daemon thread until stopped."""

    def __init__(self, rec: Recorder, procs: ProcStats) -> None:
        self._rec, self._procs = rec, procs
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="k8sai-scale-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.wait(SAMPLE_S):
            self._rec.sample_depth(time.monotonic())
            self._procs.sample()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(SAMPLE_S + 5)


def run_scenario(
    cluster: ClusterHandle,
    scenario: Scenario,
    out: Path | None = None,
    *,
    budget_factor: float = DEFAULT_FACTOR,
    log: Log = progress,
) -> ScaleResult:
    """Run ``scenario`` on ``cluster``; write the result to ``out`` (JSON) if given, also when
    the run fails or is interrupted (then with ``stopped`` saying why) before re-raising."""
    run_id = f"scale-{secrets.token_hex(3)}"
    prefix = f"k{run_id[-6:]}"  # short: it heads every cluster-scoped name
    # Its own connection pool: one connection per sender, finisher and watch, reused.
    api = with_pool_size(cluster.api_client, scenario.submit.workers + POOL_EXTRA)
    version = cluster.kueue_version
    budget = Budget(scenario.target_wall_s, budget_factor)
    result = ScaleResult(
        scenario=scenario.name,
        run_id=run_id,
        provider=cluster.provider,
        started_utc=_now_rfc3339(),
        budget_s=round(budget.limit_s, 1),
    )
    pids = _pids(cluster)
    if not pids:
        result.notes.append("no local-tier process ids: no /proc figures on this cluster")
    procs = ProcStats(pids)
    procs.start()
    cpu0 = time.process_time()
    tracker = ObjectTracker(api, run_id, version)
    stack = contextlib.ExitStack()  # the namespace, left last
    watch: WorkloadWatch | None = None
    finisher: Finisher[Action] | None = None
    sampler: _Sampler | None = None
    rec: Recorder | None = None
    ns: str | None = None
    attempts: AttemptWindow | None = None
    queues_start = submit_start = time.monotonic()
    log(f"[k8sai] scale run {run_id}: scenario {scenario.name}, budget {budget.limit_s:.0f} s")
    try:
        budget.enter("nodes")
        bodies = scale_nodes.node_bodies(scenario.nodes, prefix, run_id)
        nf = scale_nodes.create_and_wait(api, bodies, run_id, budget.expired, log)
        result.nodes = NodeResult(**nf.__dict__)
        result.phases_s["nodes"] = round(budget.elapsed(), 3)
        if budget.expired():
            return result
        log(f"[k8sai] scale: {nf.ready} nodes Ready after {nf.ready_s} s")

        budget.enter("queues")
        queues_start = time.monotonic()
        ns = stack.enter_context(run_namespace(cluster, run_id, prefix="k8sai-scale"))
        p = plan(scenario, prefix, ns, cluster.gpu_resource)
        result.plan = dict(p.totals.__dict__)
        _create_queues(tracker, p, ns, budget)
        result.phases_s["queues"] = round(budget.elapsed(), 3)

        attempts = AttemptWindow(cluster).open()
        rec = Recorder({s.name: (s.class_name, s.runtime_s) for s in p.submissions})
        patcher = _Patcher(api, ns, version, rec)
        finisher = Finisher(patcher)
        fin = finisher

        def sink(event_type: str, obj: dict[str, Any], t: float) -> None:
            for action in rec.on_event(event_type, obj, t):
                fin.submit(action.due, action)

        watch = WorkloadWatch(api, ns, sink, version).start()
        sampler = _Sampler(rec, procs)
        sampler.start()

        budget.enter("submit")
        custom = client.CustomObjectsApi(api)
        labels = ownership_labels(run_id)
        subs = p.submissions
        create_errors: list[str] = []

        def send(i: int) -> None:
            body = wl.workload(subs[i], ns, cluster.gpu_resource, labels, version)
            try:
                _discard(
                    custom.create_namespaced_custom_object(
                        KUEUE_GROUP,
                        version,
                        ns,
                        "workloads",
                        body,
                        _request_timeout=30,
                        _preload_content=False,
                    )
                )
            except ApiException as exc:
                if len(create_errors) < 10:
                    create_errors.append(f"{subs[i].name}: HTTP {exc.status} {exc.reason}")
                return
            rec.on_submitted(subs[i].name, time.monotonic())

        submit_start = time.monotonic()
        report = Pacer(
            scenario.submit.qps, scenario.submit.burst, workers=scenario.submit.workers
        ).run([s.offset_s for s in subs], send, stop=budget.expired)
        result.submit = submit_figures(report, scenario.submit, len(subs))
        result.notes += [f"create failed: {e}" for e in create_errors]
        result.phases_s["submit"] = round(budget.elapsed(), 3)

        budget.enter("drain")
        while rec.finished < rec.submitted and not budget.expired():
            time.sleep(0.2)
        result.phases_s["drain"] = round(budget.elapsed(), 3)
        return result
    except BaseException as exc:  # Ctrl-C included: the record says so, cleanup still runs
        result.stopped = f"{type(exc).__name__}: {str(exc)[:300]}"
        raise
    finally:
        for stopper in (sampler, watch):
            if stopper is not None:
                with contextlib.suppress(Exception):
                    stopper.stop()
        if finisher is not None:
            finisher.stop()
        try:  # figures must never keep cleanup from running
            if rec is not None:
                fill_workload_figures(result, rec, queues_start, submit_start)
            if attempts is not None and ns is not None:
                result.attempts = attempts.close(ns)
            if not result.stopped and not result.complete:
                result.stopped = _why_incomplete(budget, result)
            result.processes = proc_results(procs.stop())
            result.harness = _harness(cpu0, budget, watch, finisher)
            log(f"[k8sai] scale: {result.how_far()}; cleaning up")
        except Exception as exc:
            result.notes.append(f"figures incomplete: {type(exc).__name__}: {exc}")
        result.leftovers = _cleanup(api, tracker, stack, run_id, version, ns)
        if out is not None:
            write(result, out)
        with contextlib.suppress(Exception):
            api.close()


def _why_incomplete(budget: Budget, result: ScaleResult) -> str:
    if budget.expired_in is not None:
        return f"budget of {budget.limit_s:.0f} s spent in phase {budget.expired_in}"
    # Within budget but not all finished: creates that failed (listed in notes) or a phase
    # that ended early.
    return f"ended in phase {budget.phase} with workloads unfinished; see notes"


def _create_queues(tracker: ObjectTracker, p: ScalePlan, ns: str, budget: Budget) -> None:
    for body, plural in p.cluster_objects:
        tracker.create(body, plural)
    for lq in p.local_queues:
        tracker.create(lq, "localqueues", namespace=ns)
    names = [cq["metadata"]["name"] for cq in p.cluster_queues]
    wait_cluster_queues_active(
        tracker.custom.api_client,
        names,
        timeout_s=max(1.0, budget.remaining()),
        version=tracker.kueue_version,
    )


def _harness(
    cpu0: float, budget: Budget, watch: WorkloadWatch | None, finisher: Finisher[Action] | None
) -> HarnessFigures:
    cpu = time.process_time() - cpu0
    wall = budget.elapsed()
    lag = watch.lag() if watch is not None else None
    return HarnessFigures(
        cpu_s=round(cpu, 2),
        cpu_share=round(cpu / wall, 4) if wall > 0 else None,
        watch_events=lag.events if lag else 0,
        watch_lag_p99_ms=round(lag.p99_ms, 2) if lag and lag.events else None,
        watch_gaps=[g.describe() for g in watch.gaps()] if watch is not None else [],
        finishes=finisher.done if finisher else 0,
        patch_failures=finisher.failed if finisher else 0,
        patch_errors=list(finisher.errors) if finisher else [],
    )


def _delete_workloads(
    custom: client.CustomObjectsApi, version: str, ns: str, selector: str
) -> str | None:
    """Delete the run's Workloads; None once none is left, else what is left and why.

    The API server ends one delete-collection call after 60 s (HTTP 504) while deleting
    15,000 Workloads, having deleted part of them: so call again until the list is empty."""
    end = time.monotonic() + WORKLOAD_DELETE_S
    why = ""
    while True:
        try:
            custom.delete_collection_namespaced_custom_object(
                KUEUE_GROUP, version, ns, "workloads", label_selector=selector, _request_timeout=120
            )
        except ApiException as exc:
            if exc.status not in RETRY_DELETE_STATUS:
                return f"workloads in {ns} ({selector}): HTTP {exc.status} {exc.reason}"
            why = f"HTTP {exc.status} {exc.reason}"
        except urllib3.exceptions.HTTPError as exc:  # the 120 s read timeout
            why = f"{type(exc).__name__}"
        try:
            page = custom.list_namespaced_custom_object(
                KUEUE_GROUP,
                version,
                ns,
                "workloads",
                label_selector=selector,
                limit=1,
                _request_timeout=60,
            )
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            return f"workloads in {ns} ({selector}): cannot list what is left: {exc}"
        items = page.get("items") or []
        if not items:
            return None
        # A label-selected list carries no remainingItemCount (the server cannot count it
        # cheaply): then only "at least one" is known.
        more = (page.get("metadata") or {}).get("remainingItemCount")
        left = f"{len(items) + int(more)}" if more is not None else "some"
        if time.monotonic() >= end:
            return (
                f"workloads in {ns} ({selector}): {left} left after {WORKLOAD_DELETE_S:.0f} s "
                f"of deleting (last: {why or 'no error'})"
            )
        progress(f"[k8sai] scale: {left} workloads still to delete ({why or 'in progress'})")
        time.sleep(2)


def _cleanup(
    api: client.ApiClient,
    tracker: ObjectTracker,
    stack: contextlib.ExitStack,
    run_id: str,
    version: str,
    ns: str | None,
) -> list[str]:
    """Workloads (by label), queue objects (newest first), the namespace, the nodes."""
    left: list[str] = []
    selector = f"{RUN_ID_LABEL}={run_id}"
    custom = client.CustomObjectsApi(api)
    # One call for thousands of Workloads; the namespace's deletion would also take them, but
    # only after the queues, whose deletion waits for their Workloads.
    if ns is not None and (err := _delete_workloads(custom, version, ns, selector)) is not None:
        left.append(err)
    left += tracker.cleanup()
    try:
        stack.close()
    except Exception as exc:  # a namespace that would not delete: listed, not raised
        left.append(str(exc))
    if (err := scale_nodes.delete_nodes(api, run_id)) is not None:
        left.append(err)
    return left
