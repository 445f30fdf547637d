"""Control-plane faults in the middle of a Kueue run, on the local tier's own processes.

Each test runs the 32-job BestEffortFIFO trace once (``kueue.runs.run_once``, what the Kueue
suite runs) and, while its jobs run, kills and restarts kube-apiserver or the Kueue manager, or
freezes etcd. What must hold each time:

- the run completes, and the recorder agrees with the Jobs' own final status (no sample lost,
  none invented, every Job admitted once and never counted as preempted);
- the outage is found and reported (a watch gap or an unanswered API heartbeat, with its
  length), and the figures it spoils say so (``timing_invalid`` / ``histogram_invalid``),
  which the suite turns into INVALID verdicts;
- an undisturbed run beside them has no gap and no invalid figure.

The figures of every run go to ``<results dir>/faults.jsonl`` (``fault_log``).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_k8sai.clusters.local import faults
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.kueue.runs import RunResult, run_once
from pytest_k8sai.kueue.setups import load_setups
from pytest_k8sai.measure import prometheus
from pytest_k8sai.workloads.whisper import load_trace

SETUP = "best-effort-fifo"
# Seconds after the run starts: every job submitted, the first wave running, most queued.
FAULT_AT_S = 8.0


def _run(cluster, run_id: str, fault: Callable[[], faults.Injected] | None):
    """One run of the setup; ``fault`` is injected FAULT_AT_S seconds in, from a thread."""
    setup = next(s for s in load_setups() if s.name == SETUP)
    injected: list[faults.Injected] = []
    errors: list[BaseException] = []

    def inject() -> None:
        time.sleep(FAULT_AT_S)
        try:
            injected.append(fault())
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    th = threading.Thread(target=inject, daemon=True) if fault else None
    if th:
        th.start()
    result = run_once(cluster, setup, load_trace(), run=1, run_id=run_id, log=print)
    if th:
        th.join(timeout=120)
    assert not errors, f"the fault could not be injected: {errors[0]}"
    return result, (injected[0] if injected else None)


def _figures(name: str, r: RunResult, inj: faults.Injected | None) -> dict:
    jct = [rec.jct_s for rec in r.records.values() if rec.jct_s is not None]
    return {
        "fault": name,
        "injected": inj.describe() if inj else "",
        "outage_s": round(inj.outage_s, 2) if inj else 0.0,
        "jobs": len(r.records),
        "complete": sum(rec.completed is not None for rec in r.records.values()),
        "makespan_s": round(r.stats.makespan_s, 2),
        "jct_median_s": round(statistics.median(jct), 2),
        "attempt_p99_ms": (
            round(float(np.percentile(r.attempts_ms, 99)), 1) if r.attempts_ms else None
        ),
        "attempts": len(r.attempts_ms or []),
        "gaps": [g.describe() for g in r.gaps],
        "mismatches": r.mismatches,
        "timing_invalid": r.timing_invalid,
        "histogram_invalid": r.histogram_invalid,
        "attempts_invalid": r.attempts_invalid,
    }


def _assert_accounted(r: RunResult, trace_jobs: int) -> None:
    """No sample lost or double-counted: the recorder against the Jobs' own final status."""
    assert r.mismatches == [], r.mismatches
    assert len(r.records) == trace_jobs
    incomplete = [n for n, rec in r.records.items() if rec.completed is None]
    assert not incomplete, f"never completed: {incomplete}"
    twice = {n: len(rec.admissions) for n, rec in r.records.items() if len(rec.admissions) != 1}
    assert not twice, f"FIFO jobs admitted other than once: {twice}"
    assert not any(rec.preemptions for rec in r.records.values()), "phantom preemptions"


def _faulted(cluster, run_id: str, fault_log, label: str, fault) -> tuple[RunResult, Any]:
    """Run with ``fault`` injected, log the figures, and check nothing was lost."""
    r, inj = _run(cluster, run_id, fault)
    fault_log(_figures(label, r, inj))
    _assert_accounted(r, len(load_trace().jobs))
    assert inj is not None
    return r, inj


def test_undisturbed_run_has_no_gap_and_no_invalid_figure(cluster, k8sai_run_id, fault_log):
    r, _ = _run(cluster, k8sai_run_id, None)
    fault_log(_figures("none", r, None))
    _assert_accounted(r, len(load_trace().jobs))
    assert r.gaps == [] and r.timing_invalid == "" and r.histogram_invalid == ""
    assert r.attempts_invalid == ""
    assert r.histogram is not None and r.histogram.count > 0


def test_apiserver_killed_and_restarted_mid_run(cluster, k8sai_run_id, fault_log):
    name = cluster.profile.local.cluster_name

    def answers() -> bool:
        cluster.core.list_namespace(limit=1, _request_timeout=2)
        return True

    r, inj = _faulted(
        cluster,
        k8sai_run_id,
        fault_log,
        "kube-apiserver SIGKILL + restart",
        lambda: faults.restart(name, "kube-apiserver", down_s=3.0, ready=answers),
    )
    assert inj.outage_s >= 3.0
    # Found, measured and closed: at least as long as the process was really down.
    assert r.gaps, "the outage went unnoticed"
    assert all(g.end is not None for g in r.gaps)
    assert max(g.end - g.start for g in r.gaps) >= 0.5 * inj.outage_s
    assert r.timing_invalid, "arrival-time figures must be marked invalid"
    # Kueue's cycles failed fast while the API was away: its attempt P99 is not its normal one.
    assert r.attempts_invalid
    assert r.histogram_invalid == "", "Kueue itself did not restart: its histogram is valid"


def test_kueue_manager_killed_and_restarted_mid_run(cluster, k8sai_run_id, fault_log):
    name = cluster.profile.local.cluster_name
    url = cluster.endpoints["kueue_metrics"]

    def serves_metrics() -> bool:
        try:
            prometheus.scrape(
                url,
                token=cluster.endpoints.get("kueue_metrics_token"),
                ca_file=cluster.endpoints.get("ca_file"),
                timeout_s=1.0,
            )
        except ClusterError:
            return False  # not up yet
        return True

    r, _ = _faulted(
        cluster,
        k8sai_run_id,
        fault_log,
        "Kueue manager SIGKILL + restart",
        lambda: faults.restart(name, "kueue", down_s=2.0, ready=serves_metrics),
    )
    assert "Kueue restarted during the run" in r.histogram_invalid
    assert r.histogram is None, "a histogram across a restart must not be used"
    assert "Kueue restarted" in r.timing_invalid
    # Kueue's log (appended by the restarted process) still gives every attempt exactly.
    assert r.attempts_ms


def test_etcd_paused_mid_run(cluster, k8sai_run_id, fault_log):
    name = cluster.profile.local.cluster_name
    pause = lambda: faults.pause(name, "etcd", 6.0)  # noqa: E731 - the fault, named
    r, _ = _faulted(cluster, k8sai_run_id, fault_log, "etcd SIGSTOP 6 s", pause)
    api = [g for g in r.gaps if g.kind == "API"]
    assert api, f"a frozen etcd must show as an unanswered API; gaps: {r.gaps}"
    assert all(g.end is not None for g in api)
    assert r.timing_invalid and r.attempts_invalid
