"""The Kueue experiment's plots: makespan per setup with min-max over runs (paper Table 3's
makespan column as a figure) and the JCT distribution per setup, both in paper minutes."""

from __future__ import annotations

from pytest_k8sai.kueue.runs import RunResult
from pytest_k8sai.kueue.tables import PAPER_MAKESPAN_MIN, makespan_s
from pytest_k8sai.report import plots
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
    scale = (
        f"Paper minutes = wall seconds x {time_compression:g} / 60 (time compression "
        f"{time_compression:g}); timestamps from watch events."
    )
    out = [
        log.render(
            "kueue-makespan.png",
            plots.makespan_by_setup,
            spans,
            unit="paper min",
            paper=paper,
            title="Kueue: makespan per setup (median, min-max over runs)",
            note=f"{scale} Makespan = first Job creation -> last Job Complete.",
            suite=SUITE,
        ),
        log.render(
            "kueue-jct-cdf.png",
            plots.jct_cdf,
            jcts,
            unit="paper min",
            title="Kueue: job completion time per setup, all runs",
            note=f"{scale} JCT = Job creation -> Job Complete.",
            suite=SUITE,
        ),
    ]
    return [p for p in out if p is not None]
