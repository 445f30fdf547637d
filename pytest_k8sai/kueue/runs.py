"""Run one Kueue setup once: queues from the setup, the 32-job Whisper trace, every job
followed to completion, then the figures the paper's Tables 3 and 4 are made of.

Generator (trace, setups) -> runner (this) -> recorder (measure.joblatency) -> checker (suite).
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.clusters.objects import ObjectTracker, run_namespace
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.kueue import objects as kueue
from pytest_k8sai.kueue.log import KueueLog, parse_admissions, parse_attempts
from pytest_k8sai.kueue.setups import Setup, plan
from pytest_k8sai.measure import prometheus
from pytest_k8sai.measure.heartbeat import ApiHeartbeat
from pytest_k8sai.measure.joblatency import (
    JobLatencyRecorder,
    JobRecord,
    JobStats,
    WatchGap,
    summarize,
    summarize_gaps,
)
from pytest_k8sai.workloads.jobs import paced, whisper_job
from pytest_k8sai.workloads.whisper import WhisperTrace

ADMISSION_METRIC = "kueue_admission_attempt_duration_seconds"
QUEUES_ACTIVE_TIMEOUT_S = 30.0

Log = Callable[[str], None]


@dataclass
class RunResult:
    setup: str
    run: int
    kueue: bool
    stats: JobStats
    records: dict[str, JobRecord]
    admission_order: list[str]
    written_s: dict[str, float]  # wall seconds each job was told to run
    attempts_ms: list[float] | None  # exact, from Kueue's verbose log (local tier)
    histogram: prometheus.Histogram | None  # this run's share of Kueue's histogram
    borrowed_max: dict[str, dict[str, float]] = field(default_factory=dict)
    wall_s: float = 0.0
    # Job names in the order Kueue's scheduler admitted them (from its log), when readable.
    decision_order: list[str] | None = None
    # Watch outages during the run: events arrived late, so arrival-time figures shifted.
    gaps: list[WatchGap] = field(default_factory=list)
    # Where the recorder disagrees with the Jobs' own final status (lost or phantom samples).
    mismatches: list[str] = field(default_factory=list)
    # Why Kueue's metrics histogram cannot be used for this run ("" when it can).
    histogram_invalid: str = ""

    @property
    def timing_invalid(self) -> str:
        """Why the figures made of watch arrival times (makespan, JCT, queue and start
        latencies, admission order) are not valid for this run; "" when they are."""
        reasons = [summarize_gaps(self.gaps)] if self.gaps else []
        reasons += self.mismatches
        if self.histogram_invalid:
            # Kueue's own downtime is inside this run's queue times and makespan.
            reasons.append(self.histogram_invalid.split(", so ")[0])
        return "; ".join(reasons)

    @property
    def attempts_invalid(self) -> str:
        """Why this run's admission attempts are not Kueue's normal ones: while the API server
        did not answer, Kueue's cycles fail fast and retry (thousands of sub-millisecond
        attempts), which would drag the P99 down; "" when the API answered throughout."""
        api = [g for g in self.gaps if g.kind == "API"]
        return summarize_gaps(api) if api else ""

    @property
    def counts_invalid(self) -> str:
        """Why counted events (preemptions, borrowing) may be incomplete: only a relist that
        found objects changed unseen, or samples the API disagrees with; "" when complete."""
        missed = [g for g in self.gaps if g.missed]
        reasons = ([summarize_gaps(missed)] if missed else []) + self.mismatches
        return "; ".join(reasons)

    def latencies_ms(self) -> tuple[list[float], list[float]]:
        """Per job (never preempted), the platform's own delays around its start:

        - ``start``: admission -> pod Running (unsuspend, Job controller, kube-scheduler, node).
          Without Kueue, for pods created while a GPU was free: creation -> pod Running.
        - ``retry``: capacity freed -> the job got its place. With Kueue: the last Job
          completion before its admission (Kueue releases quota when the Workload finishes;
          or its creation if later) -> admitted (inadmissible workloads are requeued in
          batches of up to 1 s, pkg/cache/queue/inadmissible_workloads.go). Without Kueue: the
          last pod termination before its pod was bound (kube-scheduler frees a GPU when the
          pod ends, not when its Job is marked Complete, which comes later) -> pod bound
          (kube-scheduler requeues unschedulable pods on that event; backoff 1-10 s).
          Designed waits of the platform, which time compression magnifies.
        """
        if self.kueue:
            frees = [r.completed for r in self.records.values() if r.completed]
        else:
            frees = [
                r.pod_finished if r.pod_finished is not None else r.completed
                for r in self.records.values()
                if r.pod_finished is not None or r.completed
            ]
        completions = sorted(t for t in frees if t is not None)

        def freed_before(t: float) -> float | None:
            i = bisect.bisect_left(completions, t)
            return completions[i - 1] if i else None

        retry, start = [], []
        for r in self.records.values():
            if r.preemptions or r.pod_running is None:
                continue
            if self.kueue:
                if r.first_admitted is None:
                    continue
                freed = freed_before(r.first_admitted)
                retry.append((r.first_admitted - max(r.created, freed or r.created)) * 1000)
                start.append((r.pod_running - r.first_admitted) * 1000)
                continue
            placed = r.pod_bound if r.pod_bound is not None else r.pod_running
            if (freed := freed_before(placed)) is None or freed < r.created:
                start.append((r.pod_running - r.created) * 1000)
            else:
                retry.append((placed - freed) * 1000)
        return retry, start


def admission_source(cluster: ClusterHandle) -> str:
    """Find where this cluster's admission attempts can be read; "" when they can, else why
    not (said at the start of the suite, so an hours-long run does not end in a surprise).
    On an existing cluster the profile's ``kueue_suite.metrics_url`` is scraped once now and
    becomes the cluster's ``kueue_metrics`` endpoint."""
    if "logs" in cluster.endpoints or "kueue_metrics" in cluster.endpoints:
        return ""
    s = cluster.profile.kueue_suite
    if not s.metrics_url:
        return (
            "no source of Kueue's admission attempts on this cluster: set "
            "kueue_suite.metrics_url (Kueue's /metrics via a route or port-forward, with "
            "kueue_suite.metrics_token_env naming a variable that holds a bearer token)"
        )
    token = os.environ.get(s.metrics_token_env) if s.metrics_token_env else None
    if s.metrics_token_env and not token:
        return f"kueue_suite.metrics_token_env names ${s.metrics_token_env}, which is unset"
    try:
        text = prometheus.scrape(s.metrics_url, token=token, ca_file=s.metrics_ca_file)
    except ClusterError as exc:
        return f"kueue_suite.metrics_url unreachable: {exc}"
    if ADMISSION_METRIC + "_bucket" not in text and "kueue_" not in text:
        return f"kueue_suite.metrics_url {s.metrics_url} serves no Kueue metrics"
    cluster.endpoints["kueue_metrics"] = s.metrics_url
    if token:
        cluster.endpoints["kueue_metrics_token"] = token
    if s.metrics_ca_file:
        cluster.endpoints["ca_file"] = s.metrics_ca_file
    return ""


@dataclass(frozen=True)
class AttemptScrape:
    histogram: prometheus.Histogram | None  # None: no attempt yet since Kueue started
    started: float | None  # Kueue's process_start_time_seconds


def scrape_attempt_histogram(cluster: ClusterHandle) -> AttemptScrape | None:
    url = cluster.endpoints.get("kueue_metrics")
    if url is None:
        return None
    text = prometheus.scrape(
        url,
        token=cluster.endpoints.get("kueue_metrics_token"),
        ca_file=cluster.endpoints.get("ca_file"),
    )
    try:
        hist = prometheus.histogram(text, ADMISSION_METRIC)
    except KeyError:
        hist = None
    return AttemptScrape(hist, prometheus.gauge(text, "process_start_time_seconds"))


def attempt_histogram_share(
    before: AttemptScrape | None, after: AttemptScrape | None
) -> tuple[prometheus.Histogram | None, str]:
    """This run's part of Kueue's histogram, or why it cannot be had."""
    if after is None or after.histogram is None:
        return None, ""
    fell = (
        before is not None
        and before.histogram is not None
        and (after.histogram.count < before.histogram.count)
    )
    if before is not None and (before.started != after.started or fell):
        # Counters began again at the restart: a difference would mix two processes' counts.
        return None, (
            "Kueue restarted during the run (process_start_time_seconds "
            f"{before.started} -> {after.started}), so its admission-attempt histogram began "
            "again and this run's share of it cannot be computed"
        )
    if before is None or before.histogram is None:
        return after.histogram, ""  # no attempt before the run: all of it is this run's
    return after.histogram.minus(before.histogram), ""


def run_once(
    cluster: ClusterHandle,
    setup: Setup,
    trace: WhisperTrace,
    *,
    run: int,
    run_id: str,
    log: Log = print,
) -> RunResult:
    """Run the whole trace through ``setup`` once, in a namespace of its own."""
    profile = cluster.profile
    planned = plan(setup, "k8sai-x", profile.total_gpus)  # validate before creating anything
    kueue_log = (
        KueueLog(Path(cluster.endpoints["logs"]) / "kueue.log")
        if "logs" in cluster.endpoints
        else None
    )
    with (
        run_namespace(cluster, run_id, prefix=f"kq-{setup.name[:12]}") as ns,
        ObjectTracker(cluster.api_client, run_id, cluster.kueue_version) as objs,
    ):
        planned = plan(setup, ns, profile.total_gpus, cluster.gpu_resource)
        for body, plural in planned.cluster_objects:
            objs.create(body, plural)
        for lq in planned.local_queues:
            objs.create(lq, "localqueues", namespace=ns)
        kueue.wait_cluster_queues_active(
            cluster.api_client,
            planned.cluster_queue_names,
            QUEUES_ACTIVE_TIMEOUT_S,
            version=cluster.kueue_version,
        )

        recorder = JobLatencyRecorder(
            cluster.api_client,
            ns,
            kueue=setup.kueue,
            cluster_queues=planned.cluster_queue_names,
            kueue_version=cluster.kueue_version,
        )
        hist_before = scrape_attempt_histogram(cluster) if setup.kueue else None
        log_mark = kueue_log.mark() if kueue_log else 0
        written: dict[str, float] = {}
        recorder.start()
        heartbeat = ApiHeartbeat(
            lambda: cluster.batch.list_namespaced_job(ns, limit=1, _request_timeout=30)
        ).start()
        try:
            started = time.monotonic()
            jobs = trace.scaled(profile.time_compression)
            for job, run_s in paced(jobs, profile.kueue_suite.submit_qps):
                written[job.name] = run_s
                cluster.batch.create_namespaced_job(
                    ns,
                    whisper_job(
                        profile,
                        job.name,
                        ns,
                        model=job.model,
                        run_s=run_s,
                        audio_s=job.audio_seconds,
                        queue=planned.queue_of.get(job.model),
                        resource=cluster.gpu_resource,
                        priority_class=planned.priority_class_of.get(job.model),
                        run_id=run_id,
                    ),
                )
            log(f"[k8sai] {setup.name} run {run}: {len(written)} jobs submitted in {ns}")
            recorder.wait_complete(set(written), profile.kueue_suite.job_timeout_s)
            wall = time.monotonic() - started
        finally:
            heartbeat.stop()
            recorder.stop()
        records = recorder.records()
        mismatches = reconcile(records, _final_status(cluster, ns))
        gaps = [
            g for g in heartbeat.gaps() + recorder.gaps() if g.overlaps(started, started + wall)
        ]
        for gap in gaps:
            log(f"[k8sai] {setup.name} run {run}: {gap.describe(started)}")
        hist, hist_invalid = (
            attempt_histogram_share(hist_before, scrape_attempt_histogram(cluster))
            if setup.kueue
            else (None, "")
        )
        attempts = decisions = None
        if kueue_log and setup.kueue:
            lines = kueue_log.lines_since(log_mark)
            attempts = [a.duration_s * 1000 for a in parse_attempts(lines, ns)]
            job_of = {r.workload: n for n, r in records.items() if r.workload}
            decisions = [job_of[w] for w in parse_admissions(lines, ns) if w in job_of]
        return RunResult(
            setup=setup.name,
            run=run,
            kueue=setup.kueue,
            stats=summarize(records),
            records=records,
            admission_order=recorder.admission_order(),
            written_s=written,
            attempts_ms=attempts,
            histogram=hist,
            borrowed_max=recorder.borrowed_max(),
            wall_s=wall,
            decision_order=decisions,
            gaps=gaps,
            mismatches=mismatches,
            histogram_invalid=hist_invalid,
        )


def _final_status(cluster: ClusterHandle, namespace: str) -> dict[str, bool]:
    """Job name -> whether the Job itself says Complete=True, read from the API now."""
    jobs = cluster.batch.list_namespaced_job(namespace, _request_timeout=30).items
    return {
        j.metadata.name: any(
            c.type == "Complete" and c.status == "True" for c in (j.status.conditions or [])
        )
        for j in jobs
    }


def reconcile(records: dict[str, JobRecord], final: dict[str, bool]) -> list[str]:
    """Check the recorder against the Jobs' own final status: every Job recorded once, none
    invented, and each recorded completion matching the Job's Complete condition."""
    lost = sorted(set(final) - set(records))
    phantom = sorted(set(records) - set(final))
    unseen = sorted(
        n for n, done in final.items() if done and n in records and not records[n].completed
    )
    invented = sorted(n for n, r in records.items() if r.completed and final.get(n) is False)
    out = []
    for what, names in (
        ("Jobs the recorder never saw", lost),
        ("recorded Jobs the API does not have", phantom),
        ("Jobs Complete in the API but not in the recorder", unseen),
        ("Jobs recorded complete that the API says are not", invented),
    ):
        if names:
            out.append(f"{what}: {len(names)} ({', '.join(names[:5])})")
    return out
