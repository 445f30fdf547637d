"""The GPU slicing experiments' plots: per experiment, the JCT distribution (CDF) whole GPUs vs
MIG slices (paper Table 5 for ``limited``, Table 6 for ``full``), plus MIG slices + Kueue on the
full trace when that experiment ran, in paper minutes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pytest_k8sai.das.runs import KUEUE_SLICED, SLICED, WHOLE, ArmResult
from pytest_k8sai.das.tables import PAPER, jct_minutes
from pytest_k8sai.report import plots
from pytest_k8sai.report.plots import Plot, PlotLog

SUITE = "das"
# Which (experiment, arm) runs feed each experiment's CDF: the Kueue arm runs the full trace.
SERIES = {
    "limited": (("limited", WHOLE), ("limited", SLICED)),
    "full": (("full", WHOLE), ("full", SLICED), ("kueue", KUEUE_SLICED)),
}
TITLE = {"limited": "limited concurrency (paper Table 5)", "full": "full trace (paper Table 6)"}

Results = Mapping[tuple[str, str], Sequence[ArmResult]]


def jct_series(
    results: Results, experiment: str, time_compression: float
) -> dict[str, list[float]]:
    """Arm title -> every job's JCT over all runs, in paper minutes; arms not run are left out."""
    out = {}
    for exp_name, arm in SERIES[experiment]:
        runs = results.get((exp_name, arm.name))
        if runs:
            out[arm.title] = jct_minutes(runs, time_compression)
    return out


def render(
    log: PlotLog,
    results: Results,
    time_compression: float,
    simulated: bool,
) -> list[Plot]:
    """(Re)draw each experiment's CDF from every run so far; nothing for one with no run yet."""
    out = []
    for name in SERIES:
        series = jct_series(results, name, time_compression)
        if not any(series.values()):
            continue
        whole, sliced = PAPER[name]["median"]
        note = (
            f"JCT = Job creation -> Job Complete (watch events), all runs pooled; "
            f"paper min = wall s x {time_compression:g} / 60. "
            f"Paper medians: whole {whole}, MIG {sliced}."
        )
        if simulated:
            note += " Local tier: KWOK slice layout + real kube-scheduler, not DAS."
        plot = log.render(
            f"das-{name}-jct-cdf.png",
            plots.jct_cdf,
            series,
            unit="paper min",
            title=f"GPU slicing: job completion time, {TITLE[name]}",
            note=note,
            suite=SUITE,
        )
        if plot is not None:
            out.append(plot)
    return out
