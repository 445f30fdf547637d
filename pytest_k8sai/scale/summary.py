"""Turn what a scale run measured (pacer report, recorder, /proc figures) into the result
record's figures. Pure: the runner calls it, tests feed it made-up inputs."""

from __future__ import annotations

import math

from pytest_k8sai.measure import stats
from pytest_k8sai.scale.procstats import ProcFigures
from pytest_k8sai.scale.record import (
    DepthSample,
    Recorder,
    class_figures,
    rate_figures,
    wall_time_s,
)
from pytest_k8sai.scale.results import ProcResult, ScaleResult, SubmitFigures
from pytest_k8sai.scale.scenario import Submit
from pytest_k8sai.scale.submit import PacerReport

MIB = 1024 * 1024


def _ms(seconds: float) -> float | None:
    return round(seconds * 1000, 2) if math.isfinite(seconds) else None


def _finite(x: float, digits: int = 4) -> float | None:
    return round(x, digits) if math.isfinite(x) else None


def submit_figures(report: PacerReport, limits: Submit, planned: int) -> SubmitFigures:
    return SubmitFigures(
        qps=limits.qps,
        burst=limits.burst,
        planned=planned,
        sent=len(report.sent),
        complete=report.complete,
        wall_s=round(report.wall_s, 3),
        submissions_per_s=_finite(report.submissions_per_s, 2),
        lag_p50_ms=_ms(report.lag_p50_s),
        lag_p99_ms=_ms(report.lag_p99_s),
        lag_max_ms=_ms(report.lag_max_s),
        cpu_busy_share=_finite(report.cpu_busy_share),
        workers=report.workers,
        create_p50_ms=_ms(stats.percentile(report.send_durations_s, 50)),
        create_p99_ms=_ms(stats.percentile(report.send_durations_s, 99)),
    )


def proc_results(figs: dict[str, ProcFigures]) -> list[ProcResult]:
    return [
        ProcResult(
            name=f.name,
            pid=f.pid,
            cpu_s=None if f.cpu_s is None else round(f.cpu_s, 2),
            peak_rss_mib=None if f.peak_rss_bytes is None else round(f.peak_rss_bytes / MIB, 1),
            note=f.note,
        )
        for _, f in sorted(figs.items())
    ]


def depth_series(samples: list[DepthSample], origin: float) -> list[tuple[float, int, int, int]]:
    return [(round(s.t - origin, 3), s.pending, s.admitted, s.finished) for s in samples]


def fill_workload_figures(
    result: ScaleResult, rec: Recorder, queues_start: float, submit_start: float
) -> None:
    """Classes, rates, Kueue's wall time, pending depth and ``complete`` from ``rec``."""
    recs = rec.records()
    result.classes = class_figures(recs)
    result.rates = rate_figures(rec.admission_times())
    result.wall_s = None if (w := wall_time_s(recs, queues_start)) is None else round(w, 3)
    result.pending_depth = depth_series(rec.depth, submit_start)
    result.max_pending = max((s.pending for s in rec.depth), default=None)
    result.complete = bool(recs) and all(r.finished is not None for r in recs)
