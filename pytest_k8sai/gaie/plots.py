"""The inference suite's plots, shaped like the paper's figures: mean latency per configuration
against concurrency with its 95 % Student-t CI (P99 dashed where it helps), from GuideLLM's
per-request samples of successful requests (the same samples the tables summarise).

- ``gaie-overhead-ttft.png``: TTFT, direct / gateway / gateway + InferencePool + EPP (Fig. 5);
- ``gaie-routing-ttft.png``: TTFT, random vs prefix-aware, log scale (Fig. 6);
- ``gaie-routing-e2e.png``: end-to-end latency, random vs prefix-aware (Fig. 7).
"""

from __future__ import annotations

from collections.abc import Mapping

from pytest_k8sai.gaie.experiments import PathRun, RoutingRun
from pytest_k8sai.gaie.tables import request_values
from pytest_k8sai.report import plots
from pytest_k8sai.report.plots import LatencyPoint, Plot, PlotLog

SUITE = "gaie"
_SOURCE = "GuideLLM per-request samples, successful requests."
_BANDS = "Band and bars: 95 % Student-t CI of the mean"


def latency_points(runs: Mapping[str, PathRun], metric: str, p99: bool) -> list[LatencyPoint]:
    """One point per configuration and level that has samples; ``p99=False`` drops the P99."""
    out = []
    for name, run in runs.items():
        for lv in run.levels:
            values = request_values(lv, metric)
            if values and lv.streams:
                point = LatencyPoint.from_samples(name, lv.streams, values)
                out.append(point if p99 else point.model_copy(update={"p99": None}))
    return out


def _n_min(points: list[LatencyPoint]) -> int:
    return min(p.n for p in points)


def render_overhead(log: PlotLog, runs: Mapping[str, PathRun]) -> list[Plot]:
    """Fig. 5: the paths differ by a few ms, so only means are drawn (P99s would hide them)."""
    points = latency_points(runs, "ttft_ms", p99=False)
    if not points:
        return []
    plot = log.render(
        "gaie-overhead-ttft.png",
        plots.latency_vs_concurrency,
        points,
        metric="TTFT",
        unit="ms",
        title=f"Fig. 5, overhead: mean TTFT per path (n >= {_n_min(points)} per point)",
        note=f"{_SOURCE} {_BANDS}. One replica; direct = ClusterIP stand-in, gateway = round "
        "robin without InferencePool, gateway+pool+epp = prefix-aware EPP.",
        suite=SUITE,
    )
    return [plot] if plot else []


def render_routing(log: PlotLog, run: RoutingRun) -> list[Plot]:
    """Fig. 6 (TTFT, log scale: random is several times prefix-aware) and Fig. 7 (e2e)."""
    how = (
        f" Each level: fresh replicas (KV cache {run.kv_blocks} blocks each) and EPP, warm-up."
        if run.kv_blocks
        else ""
    )
    out = []
    for name, metric, label, log_y, fig in (
        ("gaie-routing-ttft.png", "ttft_ms", "TTFT", True, "Fig. 6"),
        ("gaie-routing-e2e.png", "e2e_ms", "end-to-end latency", False, "Fig. 7"),
    ):
        points = latency_points(run.configs, metric, p99=True)
        if not points:
            continue
        plot = log.render(
            name,
            plots.latency_vs_concurrency,
            points,
            metric=label,
            unit="ms",
            log_y=log_y,
            title=f"{fig}: {label}, random vs prefix-aware (n >= {_n_min(points)} per point)",
            note=f"{_SOURCE} {_BANDS}; dashed: P99.{how}",
            suite=SUITE,
        )
        if plot:
            out.append(plot)
    return out
