"""Per-Job latency from creation through Kueue admission to completion, as watch events arrive.

Modelled on kube-burner's jobLatency measurement: ``start()`` before the workload is created,
``wait_complete()`` while it runs, ``stop()``, then ``collect()`` (or ``records()`` and
``summarize()``). It supersedes ``podphases`` for Jobs.

Timestamps
    Every instant is ``time.monotonic()`` (seconds) taken when a watch event ARRIVES here,
    never the API's ``lastTransitionTime`` (one-second resolution, another machine's clock).
    Durations are kept in seconds on the records and reported in milliseconds by
    ``summarize()``. ``created`` is the arrival of the first event that proves the Job exists
    (its own ADDED, normally; a Workload or Pod event for it if that stream delivers first),
    so a Job's latencies never go negative when separate watch streams interleave.

Definitions (per Job)
    JCT             creation -> the Job's ``Complete=True`` condition.
    admission       the owning Workload has ``QuotaReserved=True`` and ``Admitted=True`` (and
                    is not ``Evicted=True``). Jobs not managed by Kueue (``kueue=False``, the
                    "pure jobs" baseline) are admitted at creation, so their queue time is 0.
    queue time      the total time the Job was NOT admitted between creation and completion:
                    the wait before the first admission plus every wait after an eviction.
    execution time  JCT - queue time (the total time admitted until completion).
    preemptions     how many times an admitted Workload lost its admission before the Job
                    completed: ``Evicted=True``, or ``QuotaReserved``/``Admitted`` going False.
                    Every eviction counts (``eviction_reasons`` keeps Kueue's reason, e.g.
                    ``Preempted``). Losing admission once the Workload is ``Finished`` or the
                    Job is complete is the normal release of quota, not a preemption.
    ``first_admitted`` and ``last_admitted`` are the starts of the first and last admission.

Definitions (per run)
    makespan        the first creation -> the last completion (over complete Jobs).
    admission order Job names sorted by first admission time, ties broken by name.

Limits: Job names must be unique within a run (records are keyed by name). An admission seen
only after the Job completed is ignored (its watch lagged by the whole run time; ``lag()``
shows that).

Watch gaps. A watch that fails (the API server restarting, a network error) resumes from the
last resourceVersion it saw, so no event is lost, but events that happened during the outage
arrive late and their timestamps shift. Each outage is kept as a ``WatchGap`` (kind, when,
why) so a run can mark the figures made of arrival times invalid instead of hiding the shift.
A watch whose resourceVersion expired (HTTP 410) relists: that gives the current state only,
so the gap also counts the objects whose state changed unseen (``missed``): an eviction and
re-admission entirely inside it is not seen, and the count says how much could have been.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from array import array
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity
from pydantic import BaseModel

from pytest_k8sai.core.apis import KUEUE_GROUP, KUEUE_VERSION
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.measure import laststate, stats

MODEL_LABEL = "k8sai.io/model"
# The Job controller sets both; the prefixed one is the current name, the bare one is legacy.
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")

Obj = dict[str, Any]


@dataclasses.dataclass
class JobRecord:
    """What the watches saw of one Job; monotonic seconds, None until seen."""

    name: str
    created: float
    model: str | None = None
    # (admitted_at, unadmitted_at); unadmitted_at stays None while admitted or once complete.
    admissions: list[tuple[float, float | None]] = dataclasses.field(default_factory=list)
    pod_created: float | None = None  # first event of a Pod of this Job
    pod_running: float | None = None  # first Pod of this Job seen Running
    # First Pod of this Job seen with spec.nodeName: kube-scheduler bound it (before the node
    # starts it, which on a real kubelet takes ~1 s of its own).
    pod_bound: float | None = None
    pod_finished: float | None = None  # first Pod of this Job seen Succeeded or Failed
    completed: float | None = None
    failed: bool = False
    preemptions: int = 0
    eviction_reasons: list[str] = dataclasses.field(default_factory=list)
    workload: str | None = None
    unsuspended: float | None = None  # first time seen with spec.suspend false
    # The API server's creationTimestamp (one-second precision): Kueue's FIFO key.
    creation_timestamp: str | None = None
    # The Workload's creationTimestamp: Kueue's FIFO key (GetQueueOrderTimestamp), which can
    # fall in a later second than the Job's when the Workload is created late.
    workload_creation_timestamp: str | None = None

    @property
    def first_admitted(self) -> float | None:
        return self.admissions[0][0] if self.admissions else None

    @property
    def last_admitted(self) -> float | None:
        return self.admissions[-1][0] if self.admissions else None

    @property
    def admitted_now(self) -> bool:
        return bool(self.admissions) and self.admissions[-1][1] is None

    @property
    def jct_s(self) -> float | None:
        return None if self.completed is None else self.completed - self.created

    @property
    def exec_s(self) -> float | None:
        """Total admitted time until completion; None while incomplete or never admitted."""
        end = self.completed
        if end is None or not self.admissions:
            return None
        total = 0.0
        for start, stop in self.admissions:
            # Clipped to [created, completed] so interleaved streams cannot overcount.
            lo = max(start, self.created)
            hi = end if stop is None else min(stop, end)
            total += max(0.0, hi - lo)
        return total

    @property
    def queue_s(self) -> float | None:
        jct, exe = self.jct_s, self.exec_s
        return None if jct is None or exe is None else jct - exe

    def copy(self) -> JobRecord:
        return dataclasses.replace(
            self, admissions=list(self.admissions), eviction_reasons=list(self.eviction_reasons)
        )


def admission_order(records: Mapping[str, JobRecord]) -> list[str]:
    """Names of admitted Jobs by first admission time, ties broken by name."""
    firsts = [(r.admissions[0][0], n) for n, r in records.items() if r.admissions]
    return [n for _, n in sorted(firsts)]


class LagStats(BaseModel):
    """Processing delay per delivered event: on_event finished minus the event's arrival.

    Events are handled on the watch threads themselves (no queue), so there is no queue depth;
    a backlog would show here as lock waits, and on the wire as late arrivals.
    """

    events: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    busy_s: float  # handling time summed over events: over wall time, how busy the recorder was


@dataclasses.dataclass
class WatchGap:
    """One outage of one watch stream, in monotonic seconds."""

    kind: str
    start: float  # the first failed request
    end: float | None = None  # the first request that succeeded again; None while still out
    cause: str = ""
    relisted: bool = False  # the resourceVersion had expired: state recovered by a list
    missed: int = 0  # objects whose changes were not delivered as events (relist only)
    failures: int = 0  # failed requests during the outage

    def overlaps(self, start: float, end: float) -> bool:
        return self.start <= end and (self.end is None or self.end >= start)

    def describe(self, origin: float | None = None) -> str:
        at = f" at +{self.start - origin:.1f} s" if origin is not None else ""
        length = "not recovered" if self.end is None else f"{self.end - self.start:.1f} s"
        what = "API server unanswered" if self.kind == "API" else f"{self.kind} watch down"
        text = f"{what} {length}{at} ({self.cause}; {self.failures} failed or stalled requests)"
        if self.relisted:
            text += f", resourceVersion expired: relisted, {self.missed} objects changed unseen"
        return text


def summarize_gaps(gaps: Sequence[WatchGap]) -> str:
    """One sentence for a verdict's reason: how long the API and the watches were out, and
    what relists could have hidden; "" without gaps."""

    def length(g: WatchGap) -> float:
        return math.inf if g.end is None else g.end - g.start

    def secs(x: float) -> str:
        return "not recovered" if math.isinf(x) else f"{x:.1f} s"

    parts = []
    if api := [g for g in gaps if g.kind == "API"]:
        parts.append(f"API server unanswered {secs(max(map(length, api)))} (longest of {len(api)})")
    if watch := [g for g in gaps if g.kind != "API" and not g.relisted]:
        kinds = ", ".join(sorted({g.kind for g in watch}))
        parts.append(f"watches down up to {secs(max(map(length, watch)))} ({kinds})")
    if relisted := [g for g in gaps if g.relisted]:
        missed = sum(g.missed for g in relisted)
        parts.append(
            f"{len(relisted)} relists after an expired resourceVersion, {missed} objects "
            "changed unseen"
        )
    return "; ".join(parts)


class JobFailedError(RuntimeError):
    """A Job that was waited for reached ``Failed=True``."""


class JobLatencyRecorder:
    """Watches Jobs, Pods, Kueue Workloads and (optionally) ClusterQueues in one namespace."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        *,
        kueue: bool,
        cluster_queues: list[str] | None = None,
        watch_timeout_s: int = 5,
        kueue_version: str = KUEUE_VERSION,
    ) -> None:
        self._api = api_client
        self._kueue_version = kueue_version
        self.namespace = namespace
        self.kueue = kueue
        self._cqs = frozenset(cluster_queues or ())
        self._watch_timeout_s = watch_timeout_s
        self._jobs: dict[str, JobRecord] = {}
        self._borrowed: dict[str, dict[str, float]] = {}
        # Names of Jobs that became complete or failed, in order: waiters read it incrementally.
        self._terminal: list[str] = []
        self._lags = array("d")  # seconds; 8 bytes an event
        self._errors: list[str] = []  # the last few, for timeout messages
        self._fatal: dict[str, str] = {}  # kind -> why its initial list failed
        self._gaps: list[WatchGap] = []
        self._open_gap: dict[str, WatchGap] = {}  # kind -> its outage in progress
        # (kind, namespace/name) -> the last resourceVersion delivered: what a relist compares.
        self._seen_rv: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watches: set[watch.Watch] = set()
        self._handlers: dict[str, Callable[[str, Obj, float], None]] = {
            "Job": self._on_job,
            "Pod": self._on_pod,
            "Workload": self._on_workload,
            "ClusterQueue": self._on_cluster_queue,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, ready_timeout_s: float = 30.0) -> JobLatencyRecorder:
        """Start the watches; return once each has listed what exists (so nothing is missed)."""
        batch = client.BatchV1Api(self._api)
        core = client.CoreV1Api(self._api)
        custom = client.CustomObjectsApi(self._api)
        group, version = KUEUE_GROUP, self._kueue_version
        sources: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
            ("Job", batch.list_namespaced_job, (self.namespace,)),
            ("Pod", core.list_namespaced_pod, (self.namespace,)),
        ]
        if self.kueue:
            sources.append(
                (
                    "Workload",
                    custom.list_namespaced_custom_object,
                    (group, version, self.namespace, "workloads"),
                )
            )
        if self._cqs:
            cq_args = (group, version, "clusterqueues")
            sources.append(("ClusterQueue", custom.list_cluster_custom_object, cq_args))
        readies = []
        for kind, fn, args in sources:
            ready = threading.Event()
            readies.append(ready)
            th = threading.Thread(
                target=self._run, args=(kind, fn, args, ready), daemon=True, name=f"jl-{kind}"
            )
            self._threads.append(th)
            th.start()
        deadline = time.monotonic() + ready_timeout_s
        for ready in readies:
            ready.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            fatal, errors = dict(self._fatal), list(self._errors)
        if fatal or not all(r.is_set() for r in readies):
            self.stop()
            detail = "; ".join(f"{k}: {m}" for k, m in fatal.items()) or (
                f"no initial list within {ready_timeout_s:.0f}s; " + "; ".join(errors)
            )
            raise ClusterError(f"Cannot watch namespace {self.namespace}: {detail}")
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            active = list(self._watches)
        for w in active:
            w.stop()  # recent clients also shut the socket down, ending a blocked read now
        for th in self._threads:
            th.join(timeout=self._watch_timeout_s + 5)

    def collect(self, models: Sequence[str] = ("medium", "large")) -> JobStats:
        return summarize(self.records(), models)

    def __enter__(self) -> JobLatencyRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- watch threads -----------------------------------------------------------------------

    def _run(
        self,
        kind: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        ready: threading.Event,
    ) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._list(kind, fn, args, relist=ready.is_set())
                    ready.set()
                elif kind in self._open_gap:
                    # Reconnecting: a one-item list proves the API answers again (the gap's
                    # end) before the watch resumes from ``rv``.
                    fn(*args, limit=1, _preload_content=False, _request_timeout=10)
                    self._close_gap(kind)
                rv = self._watch(kind, fn, args, rv)
            except ApiException as exc:
                if exc.status == 410:
                    self._outage(kind, "HTTP 410 Gone: resourceVersion expired")
                    rv = None  # expired: relist; first-seen semantics absorb the replay
                    continue
                msg = f"HTTP {exc.status} {exc.reason}"
                if not ready.is_set():
                    # e.g. 404 without Kueue, 403 without RBAC: retrying will not help.
                    with self._lock:
                        self._fatal[kind] = f"listing failed with {msg}"
                    ready.set()  # so start() fails now instead of timing out
                    return
                self._note_error(kind, msg)
                self._outage(kind, msg)
                self._stop.wait(1.0)
            except Exception as exc:  # network trouble; also how a stopped socket ends a read
                if self._stop.is_set():
                    return
                msg = f"{type(exc).__name__}: {exc}"
                self._note_error(kind, msg)
                if ready.is_set():
                    self._outage(kind, msg.split(":", 1)[0])
                self._stop.wait(1.0)

    def _outage(self, kind: str, cause: str) -> None:
        with self._lock:
            gap = self._open_gap.get(kind)
            if gap is None:
                gap = self._open_gap[kind] = WatchGap(kind, time.monotonic(), cause=cause)
                self._gaps.append(gap)
            gap.failures += 1

    def _close_gap(self, kind: str, relisted: bool = False, missed: int = 0) -> None:
        with self._lock:
            gap = self._open_gap.pop(kind, None)
            if gap is not None:
                gap.end = time.monotonic()
                gap.relisted = gap.relisted or relisted
                gap.missed += missed

    def _list(
        self, kind: str, fn: Callable[..., Any], args: tuple[Any, ...], relist: bool = False
    ) -> str:
        """List what exists (delivered as ADDED) and return the resourceVersion to watch from.
        On a relist, count the objects that changed since their last delivered version: each
        hides at least one event the gap swallowed."""
        resp = fn(*args, _preload_content=False, _request_timeout=30)
        body = json.loads(resp.data)
        t = time.monotonic()
        missed = 0
        for item in body.get("items") or ():
            if relist:
                with self._lock:
                    before = self._seen_rv.get(_key(kind, item))
                missed += before != (item.get("metadata") or {}).get("resourceVersion")
            self._deliver(kind, "ADDED", item, t)
        if relist or kind in self._open_gap:
            self._close_gap(kind, relisted=relist, missed=missed)
        return str(body["metadata"]["resourceVersion"])

    def _watch(self, kind: str, fn: Callable[..., Any], args: tuple[Any, ...], rv: str) -> str:
        """One watch request from ``rv``; returns the last resourceVersion seen."""
        # return_type "object" keeps objects as plain dicts: no model round trip per event.
        w = watch.Watch(return_type="object")
        with self._lock:
            self._watches.add(w)
        try:
            for ev in w.stream(
                fn,
                *args,
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_timeout_s,
                _request_timeout=self._watch_timeout_s + 10,
            ):
                t = time.monotonic()
                obj = ev["raw_object"]
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if ev["type"] != "BOOKMARK":
                    self._deliver(kind, ev["type"], obj, t)
                if self._stop.is_set():
                    w.stop()
                    break
        finally:
            with self._lock:
                self._watches.discard(w)
        return rv

    def _deliver(self, kind: str, event_type: str, obj: Obj, t: float) -> None:
        self.on_event(kind, event_type, obj, t)
        lag = time.monotonic() - t
        with self._lock:
            self._lags.append(lag)
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self._seen_rv[_key(kind, obj)] = rv

    def _note_error(self, kind: str, msg: str) -> None:
        with self._lock:
            self._errors = [*self._errors[-19:], f"{kind} watch: {msg}"]

    # -- state ---------------------------------------------------------------------------------

    def on_event(self, kind: str, event_type: str, obj: Obj, t: float) -> None:
        """Apply one watch event (object as a dict) that arrived at monotonic time ``t``.

        The only place state changes; pure apart from the lock, so tests feed it directly.
        """
        handler = self._handlers.get(kind)
        if handler is None or event_type == "DELETED":
            return  # a deletion says nothing about latency; the record is kept
        with self._lock:
            before = len(self._terminal)
            handler(event_type, obj, t)
            if len(self._terminal) != before:
                self._cond.notify_all()

    def _record(self, name: str, t: float) -> JobRecord:
        rec = self._jobs.get(name)
        if rec is None:
            rec = self._jobs[name] = JobRecord(name=name, created=t)
            if not self.kueue:
                rec.admissions.append((t, None))  # pure jobs: admitted at creation
        return rec

    def _on_job(self, event_type: str, obj: Obj, t: float) -> None:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not name:
            return
        rec = self._record(name, t)
        if rec.model is None:
            rec.model = (meta.get("labels") or {}).get(MODEL_LABEL)
        if rec.creation_timestamp is None:
            rec.creation_timestamp = meta.get("creationTimestamp")
        if rec.unsuspended is None and not (obj.get("spec") or {}).get("suspend"):
            rec.unsuspended = t
        for cond in (obj.get("status") or {}).get("conditions") or ():
            if cond.get("status") != "True":
                continue
            ctype = cond.get("type")
            if ctype == "Complete" and rec.completed is None:
                rec.completed = t
                self._terminal.append(name)
            elif ctype == "Failed" and not rec.failed:
                rec.failed = True
                self._terminal.append(name)

    def _on_pod(self, event_type: str, obj: Obj, t: float) -> None:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        job = next((labels[k] for k in JOB_NAME_LABELS if k in labels), None) or _owner(meta)
        if job is None:
            return
        rec = self._record(job, t)
        phase = (obj.get("status") or {}).get("phase")
        if rec.pod_created is None:
            rec.pod_created = t
        if rec.pod_bound is None and (obj.get("spec") or {}).get("nodeName"):
            rec.pod_bound = t
        if rec.pod_running is None and phase == "Running":
            rec.pod_running = t
        if rec.pod_finished is None and phase in ("Succeeded", "Failed"):
            rec.pod_finished = t

    def _on_workload(self, event_type: str, obj: Obj, t: float) -> None:
        if not self.kueue:
            return
        meta = obj.get("metadata") or {}
        job = _owner(meta)
        if job is None:
            return
        rec = self._record(job, t)
        rec.workload = meta.get("name")
        if rec.workload_creation_timestamp is None:
            rec.workload_creation_timestamp = meta.get("creationTimestamp")
        conds = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or ()}
        admitted = (
            _is_true(conds, "QuotaReserved")
            and _is_true(conds, "Admitted")
            and not _is_true(conds, "Evicted")
        )
        if rec.completed is not None or admitted == rec.admitted_now:
            return
        if admitted:
            rec.admissions.append((t, None))
        elif not _is_true(conds, "Finished"):
            start, _ = rec.admissions[-1]
            rec.admissions[-1] = (start, t)
            rec.preemptions += 1
            rec.eviction_reasons.append(_eviction_reason(conds))

    def _on_cluster_queue(self, event_type: str, obj: Obj, t: float) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if name not in self._cqs:
            return
        status = obj.get("status") or {}
        flavors = status.get("flavorsReservation") or status.get("flavorsUsage") or ()
        now: dict[str, float] = {}
        for flavor in flavors:
            for res in flavor.get("resources") or ():
                res_name = str(res.get("name"))
                amount = float(parse_quantity(res.get("borrowed") or 0))
                now[res_name] = now.get(res_name, 0.0) + amount
        seen = self._borrowed.setdefault(name, {})
        for res_name, amount in now.items():
            seen[res_name] = max(seen.get(res_name, 0.0), amount)

    # -- readers ---------------------------------------------------------------------------------

    def records(self) -> dict[str, JobRecord]:
        """A snapshot copy: safe to read while the watches keep running."""
        with self._lock:
            return {n: r.copy() for n, r in self._jobs.items()}

    def admission_order(self) -> list[str]:
        with self._lock:
            return admission_order(self._jobs)

    def borrowed_max(self) -> dict[str, dict[str, float]]:
        """ClusterQueue -> resource -> the most it was seen borrowing from its cohort."""
        with self._lock:
            return {cq: dict(res) for cq, res in self._borrowed.items()}

    def gaps(self) -> list[WatchGap]:
        """Every watch outage so far (copies; an open one has ``end`` None)."""
        with self._lock:
            return [dataclasses.replace(g) for g in self._gaps]

    def lag(self) -> LagStats:
        with self._lock:
            lags_ms = [x * 1000 for x in self._lags]
        return LagStats(
            events=len(lags_ms),
            p50_ms=stats.percentile(lags_ms, 50),
            p99_ms=stats.percentile(lags_ms, 99),
            max_ms=max(lags_ms, default=math.nan),
            busy_s=sum(lags_ms) / 1000,
        )

    def wait_complete(self, names: Collection[str], timeout_s: float) -> None:
        """Block until every named Job is complete.

        Raises JobFailedError as soon as one of them fails, and TimeoutError naming each
        incomplete Job, how far the watches saw it get and its state read from the API then
        (its Workload's admission conditions, its pods' phase and scheduling condition).
        """
        pending = set(names)
        seen = 0
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                # Only read what became terminal since the last wake-up: O(jobs) in total.
                for name in self._terminal[seen:]:
                    if name in pending and self._jobs[name].failed:
                        raise JobFailedError(
                            f"Job {self.namespace}/{name} failed "
                            f"({self._describe(name, time.monotonic())})"
                        )
                    pending.discard(name)
                seen = len(self._terminal)
                if not pending:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        # Outside the lock: the message reads the API, and the watches must not wait for it.
        raise TimeoutError(self._timeout_message(pending, len(names), timeout_s))

    def _timeout_message(self, pending: set[str], total: int, timeout_s: float) -> str:
        now = time.monotonic()
        shown = sorted(pending)[:20]
        with self._lock:
            described = {n: self._describe(n, now) for n in shown}
            errors = list(self._errors[-5:])
        states, unreadable = laststate.job_states(
            self._api, self.namespace, shown, kueue=self.kueue, kueue_version=self._kueue_version
        )
        lines = [
            f"{n}: {d}" + (f"; now: {states[n]}" if n in states else "")
            for n, d in described.items()
        ]
        if len(pending) > len(shown):
            lines.append(f"... and {len(pending) - len(shown)} more")
        msg = (
            f"{len(pending)} of {total} Jobs in {self.namespace} not complete after "
            f"{timeout_s:.0f}s (waited for each Job's Complete condition): " + " | ".join(lines)
        )
        if unreadable:
            msg += f". Last state not read: {unreadable}"
        if errors:
            msg += ". Watch errors: " + "; ".join(errors)
        return msg

    def _describe(self, name: str, now: float) -> str:
        rec = self._jobs.get(name)
        if rec is None:
            return "never seen"
        parts = [f"seen {now - rec.created:.1f}s ago"]
        if not rec.admissions:
            parts.append("never admitted")
        else:
            since = now - rec.admissions[-1][0]
            state = f"admitted {since:.1f}s ago" if rec.admitted_now else "not admitted now"
            parts.append(f"{state} ({len(rec.admissions)} admission(s))")
        if rec.preemptions:
            parts.append(f"preempted {rec.preemptions}x ({', '.join(rec.eviction_reasons)})")
        if self.kueue:
            parts.append("unsuspended" if rec.unsuspended is not None else "suspended")
        parts.append("pod running" if rec.pod_running is not None else "no pod seen running")
        if rec.failed:
            parts.append("FAILED")
        return ", ".join(parts)


def _key(kind: str, obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return kind, f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _owner(meta: Obj) -> str | None:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("kind") == "Job":
            name = ref.get("name")
            return str(name) if name else None
    return None


def _is_true(conds: Mapping[Any, Obj], ctype: str) -> bool:
    cond = conds.get(ctype)
    return cond is not None and cond.get("status") == "True"


def _eviction_reason(conds: Mapping[Any, Obj]) -> str:
    for ctype in ("Evicted", "Preempted"):
        if _is_true(conds, ctype):
            return str(conds[ctype].get("reason") or ctype)
    for ctype in ("QuotaReserved", "Admitted"):
        cond = conds.get(ctype)
        if cond is not None and cond.get("status") != "True":
            return str(cond.get("reason") or f"{ctype}False")
    return "Unknown"


# -- summary ------------------------------------------------------------------------------------


class JobRow(BaseModel):
    name: str
    model: str | None
    queue_ms: float | None
    exec_ms: float | None
    jct_ms: float | None
    preemptions: int
    failed: bool


class GroupStats(BaseModel):
    """Latency of one group of Jobs; NaN where the group has no complete Job."""

    n: int  # Jobs in the group
    complete: int
    failed: int
    preemptions: int
    queue_median_ms: float
    queue_p95_ms: float
    exec_median_ms: float
    jct_mean_ms: float
    jct_ci95_ms: float  # half-width of the 95 % Student-t interval of the mean
    jct_median_ms: float
    jct_p95_ms: float


class JobStats(BaseModel):
    makespan_s: float  # first creation -> last completion
    complete: int
    incomplete: int
    failed: int
    # Complete Jobs with no admission seen before completion (a badly lagging Workload watch):
    # they have a JCT but no queue or execution time, so those statistics leave them out.
    complete_unadmitted: int
    admission_order: list[str]
    jobs: list[JobRow]  # in creation order
    groups: dict[str, GroupStats]  # "all" and one per model label asked for


def summarize(
    records: Mapping[str, JobRecord], models: Sequence[str] = ("medium", "large")
) -> JobStats:
    """Summarize records: per Job rows, and per group ("all" plus each model) statistics."""
    if "all" in models:
        raise ValueError('"all" is the group of every Job; it cannot also be a model label')
    recs = sorted(records.values(), key=lambda r: (r.created, r.name))
    groups = {"all": _group(recs)}
    for model in models:
        groups[model] = _group([r for r in recs if r.model == model])
    done = [r.completed for r in recs if r.completed is not None]
    return JobStats(
        makespan_s=max(done) - recs[0].created if done else math.nan,
        complete=len(done),
        incomplete=len(recs) - len(done),
        failed=sum(r.failed for r in recs),
        complete_unadmitted=sum(r.completed is not None and not r.admissions for r in recs),
        admission_order=admission_order(records),
        jobs=[
            JobRow(
                name=r.name,
                model=r.model,
                queue_ms=_ms(r.queue_s),
                exec_ms=_ms(r.exec_s),
                jct_ms=_ms(r.jct_s),
                preemptions=r.preemptions,
                failed=r.failed,
            )
            for r in recs
        ],
        groups=groups,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _group(recs: Sequence[JobRecord]) -> GroupStats:
    jct = [x * 1000 for r in recs if (x := r.jct_s) is not None]
    queue = [x * 1000 for r in recs if (x := r.queue_s) is not None]
    exe = [x * 1000 for r in recs if (x := r.exec_s) is not None]
    ci = stats.mean_ci(jct)
    return GroupStats(
        n=len(recs),
        complete=len(jct),
        failed=sum(r.failed for r in recs),
        preemptions=sum(r.preemptions for r in recs),
        queue_median_ms=stats.median(queue),
        queue_p95_ms=stats.percentile(queue, 95),
        exec_median_ms=stats.median(exe),
        jct_mean_ms=ci.mean,
        jct_ci95_ms=ci.half_width,
        jct_median_ms=stats.median(jct),
        jct_p95_ms=stats.percentile(jct, 95),
    )
