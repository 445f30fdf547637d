"""Throughput of the job latency recorder: 10,000 Jobs' events through on_event, then summarize.

Runs in normal test runs (three rounds, a few seconds); it asserts the summary is right, never a
time. events/s and per-event processing delay land in the benchmark's extra_info.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from pytest_k8sai.measure import stats
from pytest_k8sai.measure.joblatency import MODEL_LABEL, JobLatencyRecorder, JobStats, summarize

pytest.importorskip("pytest_benchmark")

JOBS = 10_000
NS = "bench"
Event = tuple[float, str, str, dict[str, Any]]


def params(i: int) -> tuple[str, float, float, float]:
    """model, creation, queue and run seconds of job i."""
    model = "medium" if i % 2 == 0 else "large"
    return model, i * 0.001, 0.002 + (i % 100) * 0.01, 1.0 if model == "medium" else 3.0


def job_events(i: int) -> list[Event]:
    name = f"job-{i:05d}"
    model, t0, q, run = params(i)
    meta = {"name": name, "namespace": NS, "labels": {MODEL_LABEL: model}}

    def job(suspend: bool, conds: list[dict[str, str]]) -> dict[str, Any]:
        return {"metadata": meta, "spec": {"suspend": suspend}, "status": {"conditions": conds}}

    owner = [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": f"uid-{i}"}]
    wl_meta = {"name": f"job-{name}-1a2b3", "namespace": NS, "ownerReferences": owner}
    admitted = [
        {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved"},
        {"type": "Admitted", "status": "True", "reason": "Admitted"},
    ]
    pod_meta = {
        "name": f"{name}-abcde",
        "labels": {"batch.kubernetes.io/job-name": name, "job-name": name},
        "ownerReferences": owner,
    }

    def pod(phase: str) -> dict[str, Any]:
        return {"metadata": pod_meta, "status": {"phase": phase}}

    complete = [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}]
    return [
        (t0, "Job", "ADDED", job(True, [])),
        (t0 + 0.001, "Workload", "ADDED", {"metadata": wl_meta, "status": {}}),
        (t0 + q, "Workload", "MODIFIED", {"metadata": wl_meta, "status": {"conditions": admitted}}),
        (t0 + q + 0.002, "Job", "MODIFIED", job(False, [])),
        (t0 + q + 0.003, "Pod", "ADDED", pod("Pending")),
        (t0 + q + 0.010, "Pod", "MODIFIED", pod("Running")),
        (t0 + q + run, "Pod", "MODIFIED", pod("Succeeded")),
        (t0 + q + run + 0.005, "Job", "MODIFIED", job(False, complete)),
    ]


@pytest.fixture(scope="module")
def events() -> list[Event]:
    evs = [ev for i in range(JOBS) for ev in job_events(i)]
    evs.sort(key=lambda ev: ev[0])  # interleaved by arrival, as the watches would deliver them
    return evs


def new_recorder() -> JobLatencyRecorder:
    return JobLatencyRecorder(client.ApiClient(), NS, kueue=True)


def check(summary: JobStats) -> None:
    assert (summary.complete, summary.incomplete, summary.failed) == (JOBS, 0, 0)
    assert summary.complete_unadmitted == 0
    assert len(summary.jobs) == JOBS and len(summary.admission_order) == JOBS
    groups = summary.groups
    assert (groups["all"].n, groups["medium"].n, groups["large"].n) == (JOBS, JOBS / 2, JOBS / 2)
    assert groups["all"].preemptions == 0
    # Queue waits cycle through 2..992 ms; medium jobs (even i) take every other one.
    assert groups["all"].queue_median_ms == pytest.approx(497.0)
    assert groups["medium"].queue_median_ms == pytest.approx(492.0)
    assert groups["medium"].exec_median_ms == pytest.approx(1005.0)
    assert groups["large"].exec_median_ms == pytest.approx(3005.0)
    jct = [(params(i)[2] + params(i)[3] + 0.005) * 1000 for i in range(JOBS)]
    assert groups["all"].jct_mean_ms == pytest.approx(stats.mean(jct))
    assert groups["all"].jct_p95_ms == pytest.approx(stats.percentile(jct, 95))
    last = max(params(i)[1] + params(i)[2] + params(i)[3] + 0.005 for i in range(JOBS))
    assert summary.makespan_s == pytest.approx(last)


@pytest.mark.benchmark(group="joblatency")
def test_on_event_and_summarize_throughput(benchmark, events):
    timings: dict[str, list[float]] = {"feed": [], "summarize": []}

    def run(rec: JobLatencyRecorder) -> JobStats:
        t0 = time.perf_counter()
        for t, kind, etype, obj in events:
            rec.on_event(kind, etype, obj, t)
        t1 = time.perf_counter()
        summary = summarize(rec.records())
        timings["feed"].append(t1 - t0)
        timings["summarize"].append(time.perf_counter() - t1)
        return summary

    setup = lambda: ((new_recorder(),), {})  # noqa: E731 - a fresh recorder per round
    summary = benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    check(summary)

    # Once more through the watch threads' delivery path, with real arrival times, for lag.
    rec = new_recorder()
    for _, kind, etype, obj in events:
        rec._deliver(kind, etype, obj, time.monotonic())
    lag = rec.lag()
    assert lag.events == len(events)

    feed_s = min(timings["feed"])
    benchmark.extra_info.update(
        events=len(events),
        jobs=JOBS,
        events_per_s=round(len(events) / feed_s),
        feed_s=round(feed_s, 4),
        summarize_s=round(min(timings["summarize"]), 4),
        lag_p50_ms=round(lag.p50_ms, 4),
        lag_p99_ms=round(lag.p99_ms, 4),
        lag_max_ms=round(lag.max_ms, 4),
    )
    print(f"\njoblatency: {benchmark.extra_info}")
