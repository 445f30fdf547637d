"""Predict a slicing run's job completion times without a cluster: the trace's run times, the
fitted slowdown, a slice layout and an ideal scheduler (no delay, first come first served).

Two uses:

- **Held-out validation of the slowdown fit.** The factors in ``das/mig_slowdown.yaml`` were
  fitted on paper Table 5 (8 jobs, none waiting). Paper Table 6 (all 32 jobs on the same
  8 x A100-40GB, MIG slices: mean / median / P95 / std 18 / 16 / 36 / 9 min) was not used.
  ``held_out_table6`` predicts Table 6's slices column from the fit, the trace and the
  planner's best layout, and gives the relative error per statistic. The same prediction for
  the whole-GPU column (slowdown 1) shows the error of the queueing model itself, which is
  not the fit's.
- **What the suite's own inputs fix on the local tier.** ``predict_jct`` with the tier's
  layout and submission pacing gives the JCTs kube-scheduler would produce with no delay at
  all; the suite reports the measured figures beside it.

The ideal scheduler: jobs in creation order; each takes the slot of its pool (a MIG profile,
or whole GPUs) that frees first, at its arrival or when that slot frees, whichever is later.
For one pool and arrivals in creation order this is work-conserving FIFO, which is what a
scheduler with no delay does when every job asks for one slot.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_k8sai.das.mig_catalogue import load_catalogue
from pytest_k8sai.das.planner import best_packing
from pytest_k8sai.das.slowdown import Slowdown, load_slowdown
from pytest_k8sai.das.tables import PAPER
from pytest_k8sai.measure import stats
from pytest_k8sai.workloads.whisper import WhisperJob, load_trace

# The paper's slicing cluster (section 4.2): one p4d.24xlarge, 8 x A100-SXM4-40GB.
PAPER_GPU = "NVIDIA-A100-SXM4-40GB"
PAPER_GPUS = 8
MODELS = ("medium", "large")  # the paper's DAS runs create medium, large, medium, ...
STATISTICS = ("mean", "median", "p95", "std")
WHOLE_POOL = "whole GPU"


def predict_jct(
    jobs: Sequence[WhisperJob],
    pool_of: Mapping[str, str],
    slots: Mapping[str, int],
    run_s: Mapping[str, float],
    arrivals_s: Sequence[float] | None = None,
) -> list[float]:
    """Each job's completion time (seconds, arrival -> end) under the ideal scheduler.

    ``pool_of``: model -> pool; ``slots``: pool -> how many at once; ``run_s``: job name ->
    run time; ``arrivals_s``: per job, in the jobs' order (default: all at 0)."""
    free = {pool: [0.0] * n for pool, n in slots.items()}
    out = []
    for i, job in enumerate(jobs):
        arrival = arrivals_s[i] if arrivals_s is not None else 0.0
        heap = free.get(pool_of[job.model])
        if not heap:
            raise ValueError(f"no slot of pool {pool_of[job.model]!r} for job {job.name}")
        start = max(heapq.heappop(heap), arrival)
        end = start + run_s[job.name]
        heapq.heappush(heap, end)
        out.append(end - arrival)
    return out


def summary_minutes(jct_s: Sequence[float]) -> dict[str, float]:
    """Mean, median, P95 (linear) and sample SD in minutes, as the suite's tables compute."""
    m = [x / 60.0 for x in jct_s]
    return {
        "mean": stats.mean(m),
        "median": stats.median(m),
        "p95": stats.percentile(m, 95),
        "std": stats.std(m),
    }


def slices_run_s(
    jobs: Sequence[WhisperJob], slowdown: Slowdown, profile_of_model: Mapping[str, str]
) -> dict[str, float]:
    """Paper seconds each job runs on its model's slice (``exec_seconds x`` the factor)."""
    return {j.name: j.exec_seconds * slowdown.factor(profile_of_model[j.model]) for j in jobs}


def ideal_gain(
    jobs: Sequence[WhisperJob],
    profile_of_model: Mapping[str, str],
    slices: Mapping[str, int],
    total_gpus: int,
    slowdown: Slowdown,
    arrivals_s: Sequence[float] | None = None,
) -> float:
    """(whole - sliced) / whole mean JCT under the ideal scheduler: what the trace, the fitted
    slowdown and the layout alone give, before any real scheduling delay."""
    whole = predict_jct(
        jobs,
        dict.fromkeys(MODELS, WHOLE_POOL),
        {WHOLE_POOL: total_gpus},
        {j.name: j.exec_seconds for j in jobs},
        arrivals_s,
    )
    run_s = slices_run_s(jobs, slowdown, profile_of_model)
    sliced = predict_jct(jobs, profile_of_model, slices, run_s, arrivals_s)
    mw, ms = stats.mean(whole), stats.mean(sliced)
    return (mw - ms) / mw


@dataclass(frozen=True)
class HeldOut:
    """A column of paper Table 6 predicted and compared with the paper, in minutes."""

    arm: str  # "slices" (the held-out test of the fit) or "whole" (the queueing model alone)
    n: int  # jobs
    layout: dict[str, int]  # pool -> slots
    predicted: dict[str, float]
    paper: dict[str, float]

    @property
    def error(self) -> dict[str, float]:
        """Relative error per statistic: predicted / paper - 1."""
        return {k: self.predicted[k] / self.paper[k] - 1.0 for k in STATISTICS}

    @property
    def mean_abs_error(self) -> float:
        """Mean |relative error| over mean, median and P95 (the figures Table 6's text gives)."""
        return sum(abs(self.error[k]) for k in ("mean", "median", "p95")) / 3

    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (*self.predicted.values(), *self.error.values()))


def held_out_table6(slowdown: Slowdown | None = None) -> dict[str, HeldOut]:
    """Paper Table 6 predicted from the Table 5 fit and the trace, on the paper's hardware
    with the planner's best layout: {"slices": ..., "whole": ...}.

    All 32 jobs arrive at 0 (the paper submitted the trace at once). The paper's DAS reached
    25 jobs at once, not the planner's 28; the prediction uses 28, as the local tier runs."""
    sd = slowdown or load_slowdown()
    jobs = load_trace().alternating(MODELS)
    demand: dict[str, int] = {}
    for j in jobs:
        demand[sd.profile_of_model[j.model]] = demand.get(sd.profile_of_model[j.model], 0) + 1
    plan = best_packing(load_catalogue().gpu(PAPER_GPU), PAPER_GPUS, demand)
    layout = dict(plan.placed)
    run_s = slices_run_s(jobs, sd, sd.profile_of_model)
    sliced = predict_jct(jobs, sd.profile_of_model, layout, run_s)
    whole = predict_jct(
        jobs,
        dict.fromkeys(MODELS, WHOLE_POOL),
        {WHOLE_POOL: PAPER_GPUS},
        {j.name: j.exec_seconds for j in jobs},
    )
    paper = PAPER["full"]
    out = {}
    for arm, jct, col, slots in (
        ("slices", sliced, 1, layout),
        ("whole", whole, 0, {WHOLE_POOL: PAPER_GPUS}),
    ):
        out[arm] = HeldOut(
            arm=arm,
            n=len(jct),
            layout=slots,
            predicted=summary_minutes(jct),
            paper={k: float(paper[k][col]) for k in STATISTICS},
        )
    return out
