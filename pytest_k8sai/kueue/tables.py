"""Tables shaped like the paper's Table 3 (makespan, queue and execution times per setup) and
Table 4 (admission attempt duration percentiles per setup)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pytest_k8sai.kueue.runs import RunResult
from pytest_k8sai.report.tables import Table

# Paper Table 3 makespan medians (minutes) and Table 4 P99 (ms), for the reader's comparison.
PAPER_MAKESPAN_MIN = {
    "pure-jobs": 60.5,
    "best-effort-fifo": 62.5,
    "priority": 54.7,
    "preemption": 51.1,
    "two-cqs-borrowing": 55.0,
}
PAPER_ATTEMPT_P99_MS = {
    "best-effort-fifo": 20.9,
    "priority": 6.48,
    "preemption": 12.8,
    "two-cqs-borrowing": 23.7,
}


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


def _f(x: float, digits: int = 1) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def makespan_s(r: RunResult) -> float:
    return r.stats.makespan_s


def _job_values(runs: Sequence[RunResult], attr: str, model: str | None = None) -> list[float]:
    out = []
    for r in runs:
        for rec in r.records.values():
            if model is None or rec.model == model:
                v = getattr(rec, attr)
                if v is not None:
                    out.append(v)
    return out


def table3(
    results: dict[str, list[RunResult]], titles: dict[str, str], time_compression: float
) -> Table:
    k = time_compression / 60.0  # wall seconds -> paper minutes
    t = Table(
        title="Kueue setups (paper Table 3 shape), paper-scale minutes",
        headers=[
            "Setup",
            "runs",
            "Makespan Med (Min-Max)",
            "paper",
            "Queue Med/P95",
            "Exec Med",
            "Medium Q/E",
            "Large Q/E",
        ],
    )
    for name, runs in results.items():
        spans = [makespan_s(r) * k for r in runs]
        q = [v * k for v in _job_values(runs, "queue_s")]
        e = [v * k for v in _job_values(runs, "exec_s")]
        cells = [
            titles.get(name, name),
            str(len(runs)),
            f"{_f(_pct(spans, 50))} ({_f(min(spans))}-{_f(max(spans))})",
            _f(PAPER_MAKESPAN_MIN.get(name, math.nan)),
            f"{_f(_pct(q, 50))} / {_f(_pct(q, 95))}",
            _f(_pct(e, 50)),
        ]
        for model in ("medium", "large"):
            mq = [v * k for v in _job_values(runs, "queue_s", model)]
            me = [v * k for v in _job_values(runs, "exec_s", model)]
            cells.append(f"{_f(_pct(mq, 50))} / {_f(_pct(me, 50))}")
        t.rows.append(cells)
    t.notes = [
        f"Wall seconds x {time_compression:g} / 60 = paper minutes (time compression "
        f"{time_compression:g}). Queue = Job creation -> Kueue admission (0 without Kueue); "
        "Exec = admission -> Job Complete; Makespan = first creation -> last completion; "
        "timestamps from watch events on arrival (monotonic clock).",
        "Makespan median/min/max over runs; other medians and P95 over all jobs of all runs "
        "(32 per run). 'paper' = the paper's makespan median (8 x A100, real Whisper jobs).",
    ]
    return t


def table4(results: dict[str, list[RunResult]], titles: dict[str, str]) -> Table:
    t = Table(
        title="Kueue admission attempt duration (paper Table 4 shape), ms",
        headers=[
            "Setup",
            "exact P50",
            "P95",
            "P99",
            "n",
            "histogram P50",
            "P95",
            "P99",
            "n",
            "paper P99",
        ],
    )
    for name, runs in results.items():
        exact = [a for r in runs for a in (r.attempts_ms or [])]
        hists = [r.histogram for r in runs if r.histogram is not None]
        if not any(r.attempts_ms is not None for r in runs) and not hists:
            continue  # no Kueue in this setup
        cells = [titles.get(name, name)]
        cells += [_f(_pct(exact, q), 2) for q in (50, 95, 99)] + [str(len(exact))]
        if hists:
            merged = hists[0]
            for h in hists[1:]:
                merged = merged.plus(h)
            cells += [_f(merged.quantile(q) * 1000, 2) for q in (0.5, 0.95, 0.99)]
            cells.append(str(int(merged.count)))
        else:
            cells += ["-", "-", "-", "0"]
        cells.append(_f(PAPER_ATTEMPT_P99_MS.get(name, math.nan), 2))
        t.rows.append(cells)
    t.notes = [
        "exact: per scheduling cycle, 'Scheduling cycle complete' duration minus 'Obtained "
        "heads' waitDuration from Kueue's --zap-log-level=2 log (the interval the histogram "
        "observes). histogram: kueue_admission_attempt_duration_seconds, this run's increase, "
        "default buckets 5/10/25 ms..., interpolated like histogram_quantile. Verdicts use "
        "exact where it exists.",
    ]
    return t
