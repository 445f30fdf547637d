"""The Kueue experiment's plots: makespan per setup with min-max over runs (paper Table 3's
makespan column as a figure) and the JCT distribution per setup, both in paper minutes."""

from __future__ import annotations

from pytest_k8sai.experiments.kueue_runs import RunResult
from pytest_k8sai.report import plots
from pytest_k8sai.report.kueue_tables import PAPER_MAKESPAN_MIN, makespan_s
from pytest_k8sai.report.plots import Plot, PlotLog

SUITE = "kueue"


def render(
    log: PlotLog,
    results: dict[str, list[RunResult]],
    titles: dict[str, str],
    time_compression: float,
) -> list[Plot]:
    """(Re)draw both plots from every run so far; nothing when no run has finished."""
    if not results:
        return []
    k = time_compression / 60.0  # wall seconds -> paper minutes
    title = {n: titles.get(n, n) for n in results}
    spans = {title[n]: [makespan_s(r) * k for r in runs] for n, runs in results.items()}
    jcts = {
        title[n]: [rec.jct_s * k for r in runs for rec in r.records.values() if rec.jct_s]
        for n, runs in results.items()
    }
    paper = {title[n]: v for n, v in PAPER_MAKESPAN_MIN.items() if n in title}
    scale = f"paper-scale minutes, time compression {time_compression:g}"
    out = [
        log.render(
            "kueue-makespan.png",
            plots.makespan_by_setup,
            spans,
            unit=f"min, {scale}",
            paper=paper,
            title="Kueue: makespan per setup (median, min-max over runs; x = paper median)",
            suite=SUITE,
        ),
        log.render(
            "kueue-jct-cdf.png",
            plots.jct_cdf,
            jcts,
            unit=f"min, {scale}",
            title="Kueue: job completion time per setup (Job creation -> Complete)",
            suite=SUITE,
        ),
    ]
    return [p for p in out if p is not None]
