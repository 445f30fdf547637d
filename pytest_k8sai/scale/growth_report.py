"""The cost-growth table and plot (issue 17): the same figures of several scale runs, one
column per size, and how each figure grows with size in one line (``growth.fit_growth``).

The size axis is the number of workloads (``plan["workloads"]``); the node count is shown
beside it. Several runs at one size are all kept: the table and the fit use their median,
and the table says how many runs each size has and which of them stopped early.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.scale.growth import MIN_SIZES, Growth, fit_growth, verdict
from pytest_k8sai.scale.results import ScaleResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TABLE_MD = "growth.md"
PLOT_PNG = "growth.png"
# Always given their own rows (and plot panels) when present, in this order; other processes
# the runs sampled follow by name.
MAIN_PROCESSES = ("kube-apiserver", "etcd", "kueue")
PLOT_COLUMNS = 3
DPI = 110


# --- loading --------------------------------------------------------------------------------
def _field_error(path: Path, exc: ValidationError) -> K8saiError:
    """The failing fields of a result file, as one paragraph (no pydantic dump)."""
    errors = exc.errors()
    if errors[0]["type"] == "json_invalid":
        return K8saiError(f"Scale result {path}: {errors[0]['msg']}.")
    shown = "; ".join(
        f"field {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
        for e in errors[:3]
    )
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return K8saiError(
        f"Scale result {path} is not a scale run's result: {shown}{more}. Pass the JSON a "
        f"scale run wrote (k8sai-results/scale/<scenario>.json)."
    )


def _load_one(path: Path) -> ScaleResult:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise K8saiError(f"Scale result {path}: cannot read it ({exc.strerror or exc}).") from None
    try:
        result = ScaleResult.model_validate_json(text)
    except ValidationError as exc:
        raise _field_error(path, exc) from None
    try:
        size_of(result)
    except K8saiError as exc:
        raise K8saiError(f"Scale result {path}: {exc}") from None
    return result


def load_results(paths: Sequence[Path]) -> list[ScaleResult]:
    """Every file as a ScaleResult, in the order given; incomplete runs are kept (the table
    marks them). K8saiError naming the file and field for the first file that is not one."""
    if not paths:
        raise K8saiError("Growth table: no scale result files given.")
    return [_load_one(Path(p)) for p in paths]


def size_of(result: ScaleResult) -> int:
    """The run's place on the size axis: its planned workload count."""
    size = result.plan.get("workloads")
    # bool is an int too; a plan without a positive workload count has no place on the axis
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise K8saiError(
            f"field plan.workloads of run {result.run_id} ({result.scenario}) is "
            f"{json.dumps(size)}, but the growth table needs the run's planned workload count "
            f"(a positive integer) as its size."
        )
    return size


# --- the figures ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FigureSpec:
    name: str
    unit: str
    get: Callable[[ScaleResult], float | None]
    plot: bool = False  # one of the plot's panels


def _class_figure(cls: str, attr: str) -> Callable[[ScaleResult], float | None]:
    def get(r: ScaleResult) -> float | None:
        found = [k for k in r.classes if k.class_name == cls]
        return getattr(found[0], attr) if found else None

    return get


def _mean_to_admission(r: ScaleResult) -> float | None:
    # The classes' means weighted by their admitted counts: the mean over all workloads.
    pairs = [
        (k.avg_to_admission_ms, k.admitted)
        for k in r.classes
        if k.avg_to_admission_ms is not None and k.admitted > 0
    ]
    total = sum(n for _, n in pairs)
    return sum(v * n for v, n in pairs) / total if total else None


def _proc_figure(name: str, attr: str) -> Callable[[ScaleResult], float | None]:
    def get(r: ScaleResult) -> float | None:
        found = [p for p in r.processes if p.name == name]
        return getattr(found[0], attr) if found else None

    return get


def _percent(share: float | None) -> float | None:
    return None if share is None else share * 100


def _common_classes(results: Sequence[ScaleResult]) -> list[str]:
    # Only classes every run has: a class missing at one size is a different shape.
    sets = [{k.class_name for k in r.classes} for r in results]
    return sorted(set.intersection(*sets)) if sets else []


def _process_names(results: Sequence[ScaleResult]) -> list[str]:
    seen = {p.name for r in results for p in r.processes}
    return [n for n in MAIN_PROCESSES if n in seen] + sorted(seen - set(MAIN_PROCESSES))


def figures(results: Sequence[ScaleResult]) -> list[FigureSpec]:
    """The table's rows, in order; per-class and per-process rows follow what the runs hold."""
    specs = [
        FigureSpec("nodes Ready time", "s", lambda r: r.nodes.ready_s if r.nodes else None),
        FigureSpec("wall time", "s", lambda r: r.wall_s, plot=True),
    ]
    for cls in _common_classes(results):
        specs.append(FigureSpec(f"TTA P50 {cls}", "ms", _class_figure(cls, "p50_to_admission_ms")))
        specs.append(
            FigureSpec(f"TTA P99 {cls}", "ms", _class_figure(cls, "p99_to_admission_ms"), True)
        )
    specs += [
        FigureSpec("TTA mean, all classes", "ms", _mean_to_admission),
        FigureSpec("admissions/s peak", "/s", lambda r: r.rates.peak_per_s if r.rates else None),
        FigureSpec(
            "admissions/s sustained",
            "/s",
            lambda r: r.rates.sustained_per_s if r.rates else None,
            plot=True,
        ),
        FigureSpec(
            "admission attempt P50",
            "ms",
            lambda r: r.attempts.exact_p50_ms if r.attempts else None,
        ),
        FigureSpec(
            "admission attempt P95",
            "ms",
            lambda r: r.attempts.exact_p95_ms if r.attempts else None,
        ),
        FigureSpec(
            "admission attempt P99",
            "ms",
            lambda r: r.attempts.exact_p99_ms if r.attempts else None,
            plot=True,
        ),
        FigureSpec("max pending depth", "wl", lambda r: r.max_pending),
    ]
    names = _process_names(results)
    for name in names:
        specs.append(
            FigureSpec(f"{name} CPU", "s", _proc_figure(name, "cpu_s"), name in MAIN_PROCESSES)
        )
    for name in names:
        specs.append(
            FigureSpec(
                f"{name} peak RSS",
                "MiB",
                _proc_figure(name, "peak_rss_mib"),
                name in MAIN_PROCESSES,
            )
        )
    specs += [
        FigureSpec(
            "harness CPU share", "%", lambda r: _percent(r.harness.cpu_share if r.harness else None)
        ),
        FigureSpec("harness lag P99", "ms", lambda r: r.submit.lag_p99_ms if r.submit else None),
        FigureSpec("create call P99", "ms", lambda r: r.submit.create_p99_ms if r.submit else None),
    ]
    return specs


# --- sizes and their runs -------------------------------------------------------------------
@dataclass(frozen=True)
class SizeRuns:
    size: int  # workloads
    runs: tuple[ScaleResult, ...]

    @property
    def label(self) -> str:
        nodes = sorted({r.nodes.requested for r in self.runs if r.nodes})
        node_text = " or ".join(f"{n:,}" for n in nodes) if nodes else "?"
        return f"{self.size:,} wl / {node_text} nodes"

    def median(self, spec: FigureSpec) -> float | None:
        values = [v for v in map(spec.get, self.runs) if v is not None]
        return float(statistics.median(values)) if values else None

    def stopped(self) -> list[ScaleResult]:
        return [r for r in self.runs if not r.complete]


def by_size(results: Sequence[ScaleResult]) -> list[SizeRuns]:
    """Runs grouped by workload count, smallest first. Two scenarios at one size are refused:
    the table compares one shape at several sizes, and a median over two shapes means neither."""
    if not results:
        raise K8saiError("Growth table: no scale results given.")
    groups: dict[int, list[ScaleResult]] = {}
    for r in results:
        groups.setdefault(size_of(r), []).append(r)
    for size, runs in groups.items():
        names = sorted({r.scenario for r in runs})
        if len(names) > 1:
            raise K8saiError(
                f"Growth table: the runs at {size:,} workloads come from different scenarios "
                f"({', '.join(names)}); a size's median would mix two shapes. Pass the results "
                f"of one scenario per size."
            )
    return [SizeRuns(s, tuple(groups[s])) for s in sorted(groups)]


# --- the fit --------------------------------------------------------------------------------
def _points(sizes: Sequence[SizeRuns], spec: FigureSpec) -> dict[int, float]:
    out = {}
    for sr in sizes:
        v = sr.median(spec)
        if v is not None:
            out[sr.size] = v
    return out


def fit_line(points: dict[int, float], spec: FigureSpec) -> Growth | str:
    """The fitted growth, or why there is none (short: it goes into a table cell)."""
    if len(points) < MIN_SIZES:
        have = f"{len(points)} size(s) have it" if points else "no size has it"
        return f"not fitted: {have}, {MIN_SIZES} needed"
    bad = [s for s, v in points.items() if not (v > 0 and math.isfinite(v))]
    if bad:
        where = ", ".join(f"{s:,} wl" for s in sorted(bad))
        return f"not fitted: {_value(points[bad[0]])} at {where} (a log-log fit needs > 0)"
    try:
        return fit_growth(points, spec.name)
    except K8saiError as exc:  # the checks above should leave nothing; say it if not
        return f"not fitted: {exc}"


def _verdict(fit: Growth | str) -> str:
    if isinstance(fit, str):
        return fit
    if not math.isfinite(fit.stderr):
        # The same value at every size: linregress gives no error (nan) for an exact fit of a
        # constant, and no R^2 either; the exponent is 0 with error 0.
        return verdict(fit.exponent, 0.0)
    return f"{fit.verdict}, R^2 {fit.r_squared:.2f}"


# --- the table ------------------------------------------------------------------------------
def _value(v: float) -> str:
    """Three significant figures, thousands separated, never in exponent form; trailing
    zeros dropped, so counts read as counts (35, not 35.0)."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    digits = max(0, 2 - math.floor(math.log10(abs(v))))
    text = f"{v:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _runs_cell(sr: SizeRuns) -> str:
    stopped = len(sr.stopped())
    return f"{len(sr.runs)}" + (f" ({stopped} stopped)" if stopped else "")


def growth_table(results: Sequence[ScaleResult]) -> str:
    """A Markdown table: one row per figure, one column per size (the median of its runs) and
    the growth verdict last; then a line for each run that stopped early."""
    sizes = by_size(results)
    head = ["figure", *(sr.label for sr in sizes), "growth with workloads"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        "| runs | " + " | ".join(_runs_cell(sr) for sr in sizes) + " | |",
    ]
    for spec in figures(results):
        points = _points(sizes, spec)
        cells = [
            f"{_value(points[sr.size])} {spec.unit}" if sr.size in points else "-" for sr in sizes
        ]
        row = [spec.name, *cells, _verdict(fit_line(points, spec))]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    notes = [
        f"- {sr.label}: run {r.run_id} ({r.scenario}) stopped: {r.stopped or 'unknown'}"
        for sr in sizes
        for r in sr.stopped()
    ]
    if notes:
        lines += ["", "Kept, but stopped early (their figures cover only what they reached):"]
        lines += [_cell(n) for n in notes]
    return "\n".join(lines) + "\n"


# --- the plot -------------------------------------------------------------------------------
def _plain_ticks(ax: Axes, sizes: Sequence[int]) -> None:
    """Numbers as the table writes them, not 2 x 10^2: the sizes on x; on y the decades, and
    as many minor ticks as keep at least two labels when the values span few decades."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xticks(list(sizes), labels=[f"{s:,}" for s in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    low, high = ax.get_ylim()
    span = high / low
    keep = set(range(1, 10)) if span < 10 else {2, 5} if span < 100 else set()

    def minor(v: float, _pos: int | None) -> str:
        mantissa = round(v / 10 ** math.floor(math.log10(v)))
        return _value(v) if mantissa in keep else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _value(v)))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _panel(ax: Axes, sizes: Sequence[SizeRuns], spec: FigureSpec) -> None:
    runs = [(sr.size, v) for sr in sizes for v in map(spec.get, sr.runs) if v is not None and v > 0]
    points = {s: v for s, v in _points(sizes, spec).items() if v > 0}
    if len(runs) > len(points):  # a size has several runs: show them behind their median
        ax.scatter(*zip(*runs, strict=True), s=10, color="#aaaaaa", label="runs", zorder=2)
    xs = sorted(points)
    ax.plot(xs, [points[s] for s in xs], "o", color="#1f77b4", label="median", zorder=3)
    fit = fit_line(points, spec)
    if isinstance(fit, Growth):
        line_x = [xs[0], xs[-1]]
        ax.plot(
            line_x,
            [math.exp(fit.intercept) * x**fit.exponent for x in line_x],
            "-",
            color="#d62728",
            label="power-law fit",
            zorder=1,
        )
        title = f"{spec.name}\nb={fit.exponent:.2f} +/- {fit.stderr:.2f}"
    else:
        title = f"{spec.name}\nnot fitted"
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_ticks(ax, xs)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("workloads", fontsize=8)
    ax.set_ylabel(spec.unit, fontsize=8)
    ax.tick_params(which="both", labelsize=7)
    ax.grid(True, which="both", alpha=0.3)


def growth_plot(results: Sequence[ScaleResult], path: Path) -> Path:
    """A PNG grid of log-log panels, one per main figure: the medians per size, single runs
    behind them, the fitted power law and its exponent. Figures without a positive value at
    any size get no panel."""
    # Imported here: matplotlib costs ~0.4 s, which the table alone should not pay.
    from matplotlib.figure import Figure

    sizes = by_size(results)
    specs = [
        s for s in figures(results) if s.plot and any(v > 0 for v in _points(sizes, s).values())
    ]
    if not specs:
        raise K8saiError(
            "Growth plot: none of the plotted figures (time to admission P99, admissions/s, "
            "attempt P99, control-plane CPU and RSS, wall time) has a value > 0 in these results."
        )
    rows = math.ceil(len(specs) / PLOT_COLUMNS)
    cols = min(PLOT_COLUMNS, len(specs))
    fig = Figure(figsize=(4.2 * cols, 3.3 * rows))
    for i, spec in enumerate(specs):
        _panel(fig.add_subplot(rows, cols, i + 1), sizes, spec)
    fig.axes[0].legend(fontsize=7)  # the same marks in every panel: one legend
    fig.suptitle("Scale tier: cost growth with workloads (log-log)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


# --- the report -----------------------------------------------------------------------------
def _source_line(r: ScaleResult, source: Path | None) -> str:
    state = "complete" if r.complete else f"stopped: {r.stopped or 'unknown'}"
    where = f"`{source}`: " if source else ""
    return (
        f"- {where}{r.scenario}, run {r.run_id}, started {r.started_utc}, "
        f"{size_of(r):,} workloads, {state}"
    )


def write_report(
    results: Sequence[ScaleResult], out_dir: Path, sources: Sequence[Path] = ()
) -> tuple[Path, Path]:
    """out_dir/growth.md (the runs, the table, the plot) and out_dir/growth.png.
    ``sources``: the files the results came from, in the same order, to name them."""
    if sources and len(sources) != len(results):
        raise K8saiError(
            f"Growth report: {len(sources)} source file(s) for {len(results)} result(s)."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    png = growth_plot(results, out_dir / PLOT_PNG)
    named = list(sources) or [None] * len(results)
    md = "\n".join(
        [
            "# Scale tier: cost growth",
            "",
            "Results:",
            "",
            *(_source_line(r, s) for r, s in zip(results, named, strict=True)),
            "",
            "Each cell is the median of the size's runs; the last column fits value ~ size^b "
            "over the sizes that have the figure (TTA: time to admission).",
            "",
            growth_table(results),
            f"![cost growth]({PLOT_PNG})",
            "",
        ]
    )
    table = out_dir / TABLE_MD
    table.write_text(md, encoding="utf-8")
    return table, png
