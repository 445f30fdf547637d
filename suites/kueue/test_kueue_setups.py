"""Kueue on this cluster: the paper's five queueing setups with the 32-job Whisper trace.

Per setup: every job completes, admission attempts stay fast (paper Table 4: P99 < 25 ms), and
the time scale leaves the platform's own latency small against the work. Across setups: the
orderings the paper measured (Table 3) and FIFO determinism across repeated runs.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from pytest_k8sai.measure.ordering import (
    first_divergence,
    kendall_tau,
    order_kept_across_groups,
)

# All of it nightly; the setups in the profile's kueue_suite.pr_setups (and the tests below
# marked pr) also in the PR tier. On the 2-core local tier the admission bound is calibrated
# (profile `calibration`), the paper's 25 ms shown beside it.
pytestmark = [pytest.mark.nightly, pytest.mark.requires("kueue", "gpu")]

# Orderings judged over runs, never on one lucky run (median of at least this many).
MIN_RUNS_FOR_ORDERING = 3


def _p99(values):
    return float(np.percentile(values, 99))


def _median_makespan(runs) -> float:
    return statistics.median(r.stats.makespan_s for r in runs)


def _invalid(runs, counts: bool = False) -> str:
    """Why a fault during the runs spoils their arrival-time figures (or, with ``counts``,
    their event counts); "" when nothing did. Such figures are INVALID, never judged."""
    reasons = [
        f"{r.setup} run {r.run}: {r.counts_invalid if counts else r.timing_invalid}"
        for r in runs
        if (r.counts_invalid if counts else r.timing_invalid)
    ]
    return "; ".join(reasons)


def test_setup_completes_with_fast_admission(setup, kueue_experiment, slo):
    runs = kueue_experiment.get(setup.name)
    invalid = _invalid(runs)
    for r in runs:
        incomplete = [n for n, rec in r.records.items() if rec.completed is None]
        assert not incomplete, f"{setup.name} run {r.run}: jobs never completed: {incomplete}"
        assert len(r.records) == len(kueue_experiment.trace.jobs)
    slo.info(
        f"{setup.name}: makespan median",
        _median_makespan(runs),
        unit="s",
        n=len(runs),
        source="first Job creation -> last Job Complete, watch events",
        samples=[r.stats.makespan_s for r in runs],
        invalid=invalid,
    )
    jct = [rec.jct_s for r in runs for rec in r.records.values() if rec.jct_s is not None]
    slo.info(
        f"{setup.name}: JCT median",
        statistics.median(jct),
        unit="s",
        n=len(jct),
        source="per job, Job creation -> Job Complete, watch events, all runs",
        samples=jct,
        invalid=invalid,
    )
    profile = kueue_experiment.cluster.profile
    gpus = profile.total_gpus
    busy = [sum(r.written_s.values()) / (r.stats.makespan_s * gpus) for r in runs]
    slo.check(
        f"{setup.name}: useful GPU time / (makespan x GPUs), worst run",
        min(busy),
        unit="",
        threshold=profile.slo.kueue_gpu_busy_share_min,
        op=">=",
        n=len(runs),
        source=f"sum of written job run times {sum(runs[0].written_s.values()):.1f} s over "
        f"makespan x {gpus} GPUs, per run "
        + ", ".join(f"{b:.3f}" for b in busy)
        + " (how much of the cluster the queueing kept busy)",
        key="kueue_gpu_busy_share_min",
        model_check=(
            "preempted jobs restart from zero, so repeated work is not counted"
            if setup.name == "preemption"
            else ""
        ),
        invalid=invalid,
    )
    run_s = statistics.median(v for r in runs for v in r.written_s.values())
    retry = [v for r in runs for v in r.latencies_ms()[0]]
    start = [v for r in runs for v in r.latencies_ms()[1]]
    what = "admission" if setup.kueue else "creation (GPU free)"
    slo.check(
        f"{setup.name}: job run time / start latency",
        run_s * 1000 / statistics.median(start),
        unit="x",
        threshold=profile.slo.kueue_duration_latency_ratio_min,
        op=">=",
        n=len(start),
        source=f"median written run time {run_s:.2f} s over median {what} -> pod Running "
        f"{statistics.median(start):.0f} ms, time compression {profile.time_compression:g}",
        key="kueue_duration_latency_ratio_min",
        invalid=invalid,
    )
    if retry:
        who = (
            "Kueue requeues inadmissible workloads in batches of up to 1 s"
            if setup.kueue
            else "kube-scheduler requeues unschedulable pods when a pod ends (backoff 1-10 s)"
        )
        slo.info(
            f"{setup.name}: wait after a GPU frees, median",
            statistics.median(retry),
            unit="ms",
            n=len(retry),
            source=(
                "last Job completion -> admitted"
                if setup.kueue
                else "last pod ended (GPU freed) -> pod bound by kube-scheduler"
            )
            + f"; {who}; "
            f"x{profile.time_compression:g} in paper time",
            samples=retry,
            invalid=invalid,
        )
        # The wait the compression magnifies most, against the work it delays: above the bound
        # it biases makespan and JCT (Table 3; the whole-GPU arm of Table 6).
        slo.check(
            f"{setup.name}: wait after a GPU frees / job run time",
            statistics.median(retry) / (run_s * 1000),
            unit="",
            threshold=profile.slo.kueue_wait_after_free_ratio_max,
            op="<=",
            n=len(retry),
            source=f"median wait {statistics.median(retry):.0f} ms over median written run time "
            f"{run_s:.2f} s ({who}), time compression {profile.time_compression:g}",
            key="kueue_wait_after_free_ratio_max",
            invalid=invalid,
        )
    if not setup.kueue:
        return
    threshold = profile.slo.kueue_admission_attempt_p99_ms
    attempts_invalid = "; ".join(
        f"run {r.run}: {r.attempts_invalid}" for r in runs if r.attempts_invalid
    )
    exact = [a for r in runs for a in (r.attempts_ms or [])]
    hists = [r.histogram for r in runs if r.histogram is not None and r.histogram.count]
    if hists:
        merged = hists[0]
        for h in hists[1:]:
            merged = merged.plus(h)
        slo.check(
            f"{setup.name}: admission attempt P99 (histogram)",
            merged.quantile(0.99) * 1000,
            unit="ms",
            threshold=None if exact else threshold,
            op="<=",
            n=int(merged.count),
            source="kueue_admission_attempt_duration_seconds increase over the runs, "
            "default buckets, interpolated" + ("" if exact else "; SLO verdict"),
            key="" if exact else "kueue_admission_attempt_p99_ms",
            invalid=attempts_invalid,
        )
    if exact:
        slo.check(
            f"{setup.name}: admission attempt P99 (exact)",
            _p99(exact),
            unit="ms",
            threshold=threshold,
            op="<=",
            n=len(exact),
            source="Kueue log level 2: cycle duration - waitDuration per attempt; SLO verdict",
            samples=exact,
            statistic="p99",
            key="kueue_admission_attempt_p99_ms",
            invalid=attempts_invalid,
        )
    spoiled = "; ".join(f"run {r.run}: {r.histogram_invalid}" for r in runs if r.histogram_invalid)
    if spoiled and not exact and not hists:
        slo.info(
            f"{setup.name}: admission attempt P99 (histogram)",
            float("nan"),
            unit="ms",
            n=0,
            source="kueue_admission_attempt_duration_seconds increase over the runs",
            invalid=spoiled,
        )
        return
    if kueue_experiment.admission_unavailable:
        slo.info(
            f"{setup.name}: admission attempt P99 not measured",
            float("nan"),
            unit="ms",
            n=0,
            source=kueue_experiment.admission_unavailable,
        )
        return
    assert exact or hists, f"{setup.name}: no admission attempts were observed"


@pytest.mark.pr
def test_fifo_kept_across_workload_creation_seconds(kueue_experiment, slo):
    """Kueue orders equal-priority workloads by their Workload's creationTimestamp, which has
    one-second precision, and breaks ties by Workload UID (random per run). So the contract that
    can be deterministic is FIFO across those seconds; the full order is compared as a figure."""
    runs = kueue_experiment.get("best-effort-fifo", at_least=2)
    first_wave = kueue_experiment.cluster.profile.total_gpus
    profile = kueue_experiment.cluster.profile
    compared = kept = 0
    from_log = all(r.decision_order for r in runs)
    for r in runs:
        # The scheduler's own decision order where its log is readable; else watch order.
        later = (r.decision_order if from_log else r.admission_order)[first_wave:]
        # Kueue's key; the Job's own timestamp only if the Workload's was never seen.
        second = {
            n: r.records[n].workload_creation_timestamp or r.records[n].creation_timestamp or ""
            for n in later
        }
        created = sorted(later, key=lambda n: second[n])
        c, k = order_kept_across_groups(created, later, second)
        compared, kept = compared + c, kept + k
    assert compared, "all jobs after the first wave were created in one second: nothing to check"
    slo.check(
        "best-effort-fifo: FIFO kept across Workload creation seconds",
        kept / compared,
        unit="",
        threshold=profile.slo.kueue_fifo_order_kept_min,
        op=">=",
        n=compared,
        source=f"pairs of jobs admitted after the first wave of {first_wave} whose Workloads "
        f"were created in different seconds (Kueue's FIFO key), over {len(runs)} runs; order from "
        f"{'Kueue log (scheduler decisions)' if from_log else 'watch events'}",
        key="kueue_fifo_order_kept_min",
        invalid="" if from_log else _invalid(runs),
    )
    a, b = ((r.decision_order if from_log else r.admission_order)[first_wave:] for r in runs[:2])
    where = first_divergence(a, b)
    slo.info(
        "best-effort-fifo: admission order run 1 vs 2 (Kendall tau)",
        kendall_tau(a, b),
        unit="",
        n=len(a),
        source="order after the first wave; first divergence: "
        f"{'none' if where is None else f'position {where + first_wave}'}; jobs "
        "created in the same second are ordered by Workload UID",
        invalid="" if from_log else _invalid(runs),
    )


def _ordering_not_judged(profile, runs: int) -> str:
    """Why an ordering that holds only sometimes is reported, not judged, here ("" = judged)."""
    if profile.simulated:
        return (
            "not reproducible on the local tier: Preemption < BestEffortFIFO makespan held in "
            "3 of 5 local runs (preempted medium jobs restart from zero); judged on real clusters"
        )
    if runs < MIN_RUNS_FOR_ORDERING:
        return f"judged over the median of >= {MIN_RUNS_FOR_ORDERING} runs; this run has {runs}"
    return ""


def test_preemption_shortens_makespan(kueue_experiment, slo):
    base_runs = kueue_experiment.get("best-effort-fifo")
    pre_runs = kueue_experiment.get("preemption")
    base, pre = _median_makespan(base_runs), _median_makespan(pre_runs)
    profile = kueue_experiment.cluster.profile
    slo.check(
        "makespan + Preemption / BestEffortFIFO (medians over runs)",
        pre / base,
        unit="x",
        threshold=profile.slo.kueue_preemption_makespan_ratio_max,
        op="<",
        n=len(pre_runs),
        source=f"median makespans {pre:.1f} s / {base:.1f} s over {len(pre_runs)} / "
        f"{len(base_runs)} runs; per run: "
        + ", ".join(f"{r.stats.makespan_s:.1f}" for r in pre_runs)
        + " / "
        + ", ".join(f"{r.stats.makespan_s:.1f}" for r in base_runs),
        key="kueue_preemption_makespan_ratio_max",
        model_check=_ordering_not_judged(profile, min(len(pre_runs), len(base_runs))),
        invalid=_invalid(base_runs + pre_runs),
    )


@pytest.mark.pr
def test_preemption_happens(kueue_experiment, slo):
    """Kueue preempts admitted medium jobs for large ones of higher priority (+ Preemption)."""
    runs = kueue_experiment.get("preemption")
    per_run = [sum(rec.preemptions for rec in r.records.values()) for r in runs]
    reasons = sorted({x for r in runs for rec in r.records.values() for x in rec.eviction_reasons})
    slo.check(
        "preemption: workloads preempted per run (fewest)",
        min(per_run),
        unit="",
        threshold=kueue_experiment.cluster.profile.slo.kueue_preemptions_min,
        op=">=",
        n=len(runs),
        source=f"Workload evictions seen by the watch, per run {per_run}; reasons "
        f"{', '.join(reasons) or 'none'}",
        key="kueue_preemptions_min",
        invalid=_invalid(runs, counts=True),
    )
    # Which jobs Kueue chose as victims: the paper's + Preemption gives the large model the
    # higher priority (kueue/setups.yaml), so with LowerPriority only medium jobs may go.
    large = [
        sum(rec.preemptions for rec in r.records.values() if rec.model == "large") for r in runs
    ]
    slo.check(
        "preemption: large (higher-priority) jobs preempted per run (most)",
        max(large),
        unit="",
        threshold=kueue_experiment.cluster.profile.slo.kueue_large_jobs_preempted_max,
        op="<=",
        n=len(runs),
        source=f"evictions of large-model Workloads per run {large} (all: {per_run}); "
        "withinClusterQueue LowerPriority must pick medium (priority 0) victims",
        key="kueue_large_jobs_preempted_max",
        invalid=_invalid(runs, counts=True),
    )


def test_priority_lowers_large_job_queue_time(kueue_experiment, slo):
    def large_queue(name):
        return statistics.median(
            rec.queue_s
            for r in kueue_experiment.get(name)
            for rec in r.records.values()
            if rec.model == "large"
        )

    base, prio = large_queue("best-effort-fifo"), large_queue("priority")
    slo.check(
        "large-job median queue time + Priority / BestEffortFIFO",
        prio / base,
        unit="x",
        threshold=kueue_experiment.cluster.profile.slo.kueue_priority_large_queue_ratio_max,
        op="<",
        n=16 * len(kueue_experiment.get("priority")),
        source=f"medians {prio:.2f} s / {base:.2f} s (paper 10.2/17.3 = 0.59)",
        key="kueue_priority_large_queue_ratio_max",
        invalid=_invalid(
            kueue_experiment.get("best-effort-fifo") + kueue_experiment.get("priority")
        ),
    )


@pytest.mark.pr
def test_cohort_borrowing_happens(kueue_experiment, slo):
    runs = kueue_experiment.get("two-cqs-borrowing")
    borrowed = max(
        (v for r in runs for cq in r.borrowed_max.values() for v in cq.values()), default=0.0
    )
    slo.check(
        "two-cqs-borrowing: GPUs borrowed from the cohort (max)",
        borrowed,
        unit="GPU",
        threshold=kueue_experiment.cluster.profile.slo.kueue_borrowed_gpus_min,
        op=">=",
        n=len(runs),
        source="ClusterQueue status.flavorsReservation[].borrowed, watched",
        key="kueue_borrowed_gpus_min",
        invalid=_invalid(runs, counts=True),
    )
