"""PNG plots shaped like the paper's figures, and the log of plots a run wrote.

Each plot function takes plain data (documented on it) and a path, draws with matplotlib's
object API (no pyplot: no global state, no display needed) and returns the path.

- ``makespan_by_setup``: bars of the median makespan per setup with min-max whiskers, every
  run as a dot, the paper's median as a cross (paper Fig. 3 / Table 3).
- ``jct_cdf``: empirical CDF of job completion times per series, e.g. whole GPUs vs MIG
  slices (paper Tables 5-6), median marked.
- ``latency_vs_concurrency``: a latency statistic per setup against concurrency with its
  95 % confidence interval, optionally on a log axis (paper Fig. 5-7: TTFT, end-to-end).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pytest_k8sai.measure import stats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOTS_DIR = "plots"
DPI = 110


def _figure(width: float, height: float) -> Figure:
    # Imported on first plot: matplotlib costs ~0.4 s, which runs without plots should not pay.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _save(fig: Figure, path: Path, note: str = "") -> Path:
    """``note``: one small line under the axes (units, scale, sources)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="#555555", ha="left", va="bottom", wrap=True)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def _nonempty(data: Mapping[str, Sequence[float]], what: str) -> dict[str, np.ndarray]:
    out = {k: np.asarray(v, dtype=float) for k, v in data.items() if len(v)}
    if not out:
        raise ValueError(f"{what}: no series has any value to plot")
    return out


def makespan_by_setup(
    makespans: Mapping[str, Sequence[float]],
    path: Path,
    *,
    unit: str = "min",
    paper: Mapping[str, float] | None = None,
    title: str = "Makespan per setup (median, min-max over runs)",
    note: str = "",
) -> Path:
    """``makespans``: setup title -> one makespan per run (in ``unit``), in display order.
    ``paper``: setup title -> the paper's median, drawn as a cross where given."""
    data = _nonempty(makespans, "makespan_by_setup")
    names = list(data)
    x = np.arange(len(names))
    med = np.array([np.median(v) for v in data.values()])
    lo = med - np.array([v.min() for v in data.values()])
    hi = np.array([v.max() for v in data.values()]) - med
    fig = _figure(max(6.4, 1.3 * len(names) + 2), 4.6)
    ax = fig.add_subplot()
    ax.bar(x, med, width=0.6, color="#7aa6c2", label="median")
    ax.errorbar(x, med, yerr=[lo, hi], fmt="none", ecolor="black", capsize=6, label="min-max")
    for i, v in enumerate(data.values()):
        ax.plot(np.full(v.size, x[i]), v, "o", color="#1f4e79", ms=3, alpha=0.7)
    if paper:
        px = [i for i, n in enumerate(names) if n in paper]
        ax.plot(px, [paper[names[i]] for i in px], "x", color="#c0392b", ms=9, mew=2)
        ax.plot([], [], "x", color="#c0392b", label="paper median")
    for i, v in enumerate(data.values()):
        ax.annotate(
            f"n={v.size}",
            (x[i], 0),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=7,
            color="white",
        )
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_xlim(-0.7, len(names) - 0.3)
    # Headroom above the tallest whisker for a one-row legend that covers no bar.
    top = max([float(v.max()) for v in data.values()] + list((paper or {}).values()))
    ax.set_ylim(0, top * 1.2)
    ax.set_ylabel(f"makespan ({unit})")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path, note)


def jct_cdf(
    series: Mapping[str, Sequence[float]],
    path: Path,
    *,
    unit: str = "min",
    title: str = "Job completion time, empirical CDF",
    note: str = "",
) -> Path:
    """``series``: label (e.g. "whole GPU", "MIG 1g.5gb/3g.20gb") -> one JCT per job."""
    data = _nonempty(series, "jct_cdf")
    fig = _figure(6.0, 4.2)
    ax = fig.add_subplot()
    for label, v in data.items():
        xs = np.sort(v)
        ys = np.arange(1, xs.size + 1) / xs.size
        # Start at 0 on the smallest value, so the first job shows as a step like the rest.
        xs_, ys_ = np.concatenate(([xs[0]], xs)), np.concatenate(([0.0], ys))
        (line,) = ax.step(xs_, ys_, where="post", label=f"{label} (n={xs.size})")
        m = float(np.median(xs))
        ax.axvline(m, color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel(f"job completion time ({unit}); dotted: median")
    ax.set_ylabel("fraction of jobs completed")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path, note)


class LatencyPoint(BaseModel):
    """One setup at one concurrency level: a latency statistic with its confidence interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    setup: str  # e.g. "random", "prefix-cache-aware", "ClusterIP"
    concurrency: float = Field(gt=0)
    value: float  # the plotted statistic (mean unless stated)
    ci_low: float | None = None  # None: no interval (fewer than two samples)
    ci_high: float | None = None
    n: int = Field(ge=0)
    p99: float | None = None  # drawn dashed when given

    @classmethod
    def from_samples(
        cls, setup: str, concurrency: float, samples: Sequence[float], confidence: float = 0.95
    ) -> LatencyPoint:
        """Mean with its Student-t interval (measure.stats.mean_ci) and the P99."""
        ci = stats.mean_ci(samples, confidence)
        spread = not np.isnan(ci.half_width)
        return cls(
            setup=setup,
            concurrency=concurrency,
            value=ci.mean,
            ci_low=ci.low if spread else None,
            ci_high=ci.high if spread else None,
            n=ci.n,
            p99=stats.percentile(samples, 99) if len(samples) else None,
        )


def latency_vs_concurrency(
    points: Sequence[LatencyPoint],
    path: Path,
    *,
    metric: str = "TTFT",
    unit: str = "ms",
    log_y: bool = False,
    title: str | None = None,
    note: str = "",
) -> Path:
    """One line per setup: ``value`` against concurrency with its CI as a band and error bar;
    ``p99`` dashed in the same colour when present. ``log_y`` for the routing comparison."""
    if not points:
        raise ValueError("latency_vs_concurrency: no points to plot")
    by_setup: dict[str, list[LatencyPoint]] = {}
    for p in points:
        by_setup.setdefault(p.setup, []).append(p)
    fig = _figure(6.4, 4.4)
    ax = fig.add_subplot()
    for setup, pts in by_setup.items():
        pts = sorted(pts, key=lambda p: p.concurrency)
        x = np.array([p.concurrency for p in pts])
        y = np.array([p.value for p in pts])
        low = np.array([p.ci_low if p.ci_low is not None else p.value for p in pts])
        high = np.array([p.ci_high if p.ci_high is not None else p.value for p in pts])
        (line,) = ax.plot(x, y, "o-", label=f"{setup} mean, 95 % CI")
        color = line.get_color()
        ax.errorbar(x, y, yerr=[y - low, high - y], fmt="none", ecolor=color, capsize=4)
        ax.fill_between(x, low, high, color=color, alpha=0.15)
        p99 = [(p.concurrency, p.p99) for p in pts if p.p99 is not None]
        if p99:
            ax.plot(*zip(*p99, strict=True), "--", color=color, lw=1, label=f"{setup} P99")
    if log_y:
        from matplotlib.ticker import LogFormatter

        ax.set_yscale("log")
        # Plain numbers (30, 400) rather than 3x10^1; minor ticks labelled when few decades.
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    xs = [p.concurrency for p in points]
    if max(xs) / min(xs) >= 8:
        # Concurrency sweeps double (1, 2, 4, ...): spread them evenly.
        ax.set_xscale("log", base=2)
    # Ticks at the measured levels only, labelled plainly.
    ticks = sorted(set(xs))
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("concurrency (requests in flight)")
    ax.set_ylabel(f"{metric} ({unit})")
    n_min = min(p.n for p in points)
    ax.set_title(title or f"{metric} vs concurrency (n >= {n_min} per point)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path, note)


@dataclass
class Plot:
    path: Path
    title: str
    suite: str


@dataclass
class PlotLog:
    """Plots of this session under ``<results_dir>/plots``; ``listeners`` hear of each one
    (the results file lists it, Allure attaches it to the suite's tests)."""

    directory: Path | None
    plots: list[Plot] = field(default_factory=list)
    listeners: list[Callable[[Plot], None]] = field(default_factory=list)
    seconds: float = 0.0  # time spent rendering, for the overhead figure

    def render(
        self,
        filename: str,
        draw: Callable[..., Path],
        *args: object,
        title: str,
        suite: str = "",
        **kwargs: object,
    ) -> Plot | None:
        """``draw(*args, path, title=title, **kwargs)`` into plots/filename; replaces an earlier
        plot of the same name (a plot redrawn as more runs arrive). None when there is nowhere
        to write."""
        if self.directory is None:
            return None
        t0 = time.perf_counter()
        path = draw(*args, self.directory / filename, title=title, **kwargs)
        self.seconds += time.perf_counter() - t0
        plot = Plot(path=path, title=title, suite=suite)
        self.plots = [p for p in self.plots if p.path != path] + [plot]
        for listener in self.listeners:
            listener(plot)
        return plot

    def of_suite(self, suite: str) -> list[Plot]:
        return [p for p in self.plots if p.suite == suite]
