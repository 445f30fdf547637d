"""What the end of a run shows: the baseline comparison as terminal lines and the whole run as
``summary.md`` (verdicts, comparison, plots, tests, where the other files are)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

from pytest_k8sai.core.verdicts import _num
from pytest_k8sai.report.results import FigureChange, Results
from pytest_k8sai.report.tables import Table

SUMMARY_FILE = "summary.md"

_COLS = ("figure", "baseline", "tonight", "change", "95 % CI / p", "verdict")


def _pct(x: float | None) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return "+inf %" if x > 0 else "-inf %"
    return f"{x:+.1f} %"


def _val(x: float | None, n: int) -> str:
    return "-" if x is None else f"{_num(x)} (n={n})"


def _ci(c: FigureChange) -> str:
    if c.diff_ci is None:
        return "-"
    lo, hi = c.diff_ci
    p = "" if c.p_value is None else f" p={c.p_value:.2g}"
    return f"[{_num(lo)}, {_num(hi)}]{p}"


def change_cells(c: FigureChange) -> tuple[str, ...]:
    unit = f" {c.unit}" if c.unit else ""
    stat = "" if c.statistic == "median" else f" [{c.statistic}]"
    return (
        f"{c.figure}{stat}{unit and f' ({c.unit})'}",
        _val(c.baseline, c.baseline_n),
        _val(c.current, c.current_n),
        _pct(c.change_pct),
        _ci(c),
        c.verdict,
    )


def comparison_lines(changes: Sequence[FigureChange], width: int = 100) -> list[list[str]]:
    """Header+rule, then each change's lines; the figure column wraps, nothing is cut."""
    rows = [change_cells(c) for c in changes]
    fixed = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(_COLS)]
    room = width - sum(fixed[1:]) - 2 * (len(_COLS) - 1)
    fixed[0] = max(12, min(fixed[0], room))

    def lines(cells: Sequence[str]) -> list[str]:
        first = textwrap.wrap(cells[0], fixed[0]) or [""]
        rest = [
            c.rjust(w) if i < 4 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells[1:], fixed[1:], strict=True), start=1)
        ]
        out = ["  ".join([first[0].ljust(fixed[0]), *rest]).rstrip()]
        out += [f.ljust(fixed[0]).rstrip() for f in first[1:]]
        return out

    header = lines(_COLS) + ["  ".join("-" * w for w in fixed)]
    return [header] + [lines(r) for r in rows]


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def summary_markdown(results: Results, results_path: Path) -> str:
    """The run in one page; links are relative to the results directory."""
    env = results.environment
    out = [
        f"# pytest-k8sai run {results.run_id}",
        "",
        f"- started {results.started_at}, finished {results.finished_at or '(running)'}, "
        f"exit status {results.exit_status}, wall {_num(round(results.wall_s or 0, 1))} s",
        f"- profile `{env.profile}` (provider {env.provider}, time compression "
        f"{_num(env.time_compression)}), cluster provider {env.cluster_provider or '-'}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in env.versions.items()) or '-'}",
        f"- suite git sha {env.git_sha or '-'}{' (dirty)' if env.git_dirty else ''}; "
        f"pytest-k8sai {env.pytest_k8sai}, pytest {env.pytest}, Python {env.python}",
        f"- results file: [{results_path.name}]({results_path.name}) "
        f"(schema {results.schema_} v{results.schema_version})",
        "",
        "## SLO verdicts",
        "",
    ]
    if results.figures:
        out.append(_md_row(("figure", "measured", "threshold", "verdict", "n", "source")))
        out.append("|---|---:|---|---|---:|---|")
        for f in results.figures:
            threshold = "-" if f.threshold is None else f"{f.op} {_num(f.threshold)} {f.unit}"
            if f.threshold is not None and f.paper is not None:
                threshold = f"{threshold.rstrip()} (paper {_num(f.paper)})"
            source = f"not judged here: {f.not_judged}; {f.source}" if f.not_judged else f.source
            out.append(
                _md_row(
                    (
                        f.figure,
                        f"{_num(f.measured)} {f.unit}".rstrip(),
                        threshold.rstrip(),
                        f"**{f.verdict}**" if f.verdict == "FAIL" else f.verdict,
                        str(f.n),
                        source,
                    )
                )
            )
    else:
        out.append("No figures were measured.")
    comp = results.comparison
    if comp is not None:
        out += ["", "## Against the baseline", ""]
        out.append(
            f"Baseline: {', '.join(comp.baseline_files) or '(none usable)'} "
            f"(runs {', '.join(comp.baseline_run_ids) or '-'}); tolerance "
            f"{_num(comp.tolerance_pct)} %, CI level {_num((1 - comp.alpha) * 100)} %, "
            f"test needs >= {comp.min_samples} samples per side."
        )
        out += [f"- **baseline error:** {e}" for e in comp.errors]
        if comp.changes:
            out += ["", _md_row((*_COLS, "why")), "|---|---:|---:|---:|---|---|---|"]
            out += [_md_row((*change_cells(c), c.why)) for c in comp.changes]
    if results.tables:
        out += ["", "## Tables", ""]
        for t in results.tables:
            out.append(Table(t.title, t.headers, t.rows, t.notes).markdown())
    if results.plots:
        out += ["", "## Plots", ""]
        out += [f"![{p.title}]({p.file})" for p in results.plots]
    counts: dict[str, int] = {}
    for t in results.tests:
        counts[t.outcome] = counts.get(t.outcome, 0) + 1
    out += ["", "## Tests", "", ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "-"]
    out += [
        f"- {t.outcome.upper()} `{t.nodeid}`: {t.message}"
        for t in results.tests
        if t.outcome in ("failed", "error")
    ]
    if results.files:
        out += ["", "## Files", ""] + [f"- {k}: [{v}]({v})" for k, v in results.files.items()]
    return "\n".join(out) + "\n"
