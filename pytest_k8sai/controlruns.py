"""``k8sai mutants control``: the unmutated PR tier, run N times: does it ever raise a false alarm?

The mutation score says the verdicts turn red when the platform regresses; this says they stay
green when it does not. Each run is a plain PR-tier pytest run on a fresh local cluster (the
same trial runner as ``k8sai calibrate``), results in ``DIR/trial-K``. A run is a false alarm
when any judged verdict FAILED or any test failed or errored.

The summary, per judged figure (a verdict with a threshold): in how many runs it passed, the
measured min / median / worst, the threshold and the paper's value, and the worst run's
headroom (how far inside the threshold it stayed, as a share of the threshold). It is printed
and written to ``DIR/control.md`` and ``DIR/control.json``; ``--from`` summarises runs made
earlier (for example CI's results directory beside them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pytest_k8sai import calibrate
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.progress import progress
from pytest_k8sai.core.verdicts import Verdict

OUTPUT_MD = "control.md"
OUTPUT_JSON = "control.json"
RECOMMENDED_RUNS = 5  # the PR-tier issue's target: 0 false alarms in 5 consecutive runs


@dataclass
class RunOutcome:
    """One unmutated run: what failed in it (nothing, for a run without a false alarm)."""

    directory: str
    exit_status: int | None
    wall_s: float | None
    judged: int
    failed_verdicts: list[str] = field(default_factory=list)
    failed_tests: list[str] = field(default_factory=list)

    @property
    def false_alarm(self) -> bool:
        return bool(self.failed_verdicts or self.failed_tests) or self.exit_status not in (0, None)


@dataclass
class FigureSummary:
    """One judged figure across the runs."""

    figure: str
    key: str
    unit: str
    op: str
    threshold: float
    paper: float | None
    measured: list[float]  # one per run that judged it
    passed: int

    @property
    def runs(self) -> int:
        return len(self.measured)

    @property
    def upper(self) -> bool:
        return self.op in ("<=", "<")

    @property
    def worst(self) -> float:
        return max(self.measured) if self.upper else min(self.measured)

    @property
    def headroom(self) -> float | None:
        """How far inside the threshold the worst run stayed, as a share of the threshold
        (negative: outside). None for a zero threshold."""
        if self.threshold == 0:
            return None
        gap = self.threshold - self.worst if self.upper else self.worst - self.threshold
        return gap / abs(self.threshold)


def run_outcome(directory: Path, verdicts: list[Verdict]) -> RunOutcome:
    """The run's exit status, wall time and failed tests from its results.json (written at
    the end of every run, also a failed one), its failed verdicts from verdicts.jsonl."""
    try:
        results = json.loads((directory / "results.json").read_text())
    except (OSError, ValueError):
        results = {}
    tests = results.get("tests", []) if isinstance(results, dict) else []
    return RunOutcome(
        directory=str(directory),
        exit_status=results.get("exit_status") if isinstance(results, dict) else None,
        wall_s=results.get("wall_s") if isinstance(results, dict) else None,
        judged=sum(v.threshold is not None for v in verdicts),
        failed_verdicts=[v.figure for v in verdicts if v.threshold is not None and not v.passed],
        failed_tests=[
            str(t.get("nodeid"))
            for t in tests
            if isinstance(t, dict) and t.get("outcome") in ("failed", "error")
        ],
    )


def summarize(runs: list[list[Verdict]]) -> list[FigureSummary]:
    """Judged figures in the order first seen; a figure judged twice in a run (it should not
    be) counts with its worst value."""
    by_figure: dict[str, FigureSummary] = {}
    for verdicts in runs:
        seen: dict[str, Verdict] = {}
        for v in verdicts:
            if v.threshold is None:
                continue
            old = seen.get(v.figure)
            upper = v.op in ("<=", "<")
            if old is None or (v.measured > old.measured) == upper:
                seen[v.figure] = v
        for name, v in seen.items():
            row = by_figure.setdefault(
                name,
                FigureSummary(name, v.key, v.unit, v.op, v.threshold or 0.0, v.paper, [], 0),
            )
            row.measured.append(v.measured)
            row.passed += v.passed
    return list(by_figure.values())


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


HEADERS = ("figure", "passed", "min", "median", "worst", "threshold", "paper", "headroom")


def table_rows(rows: list[FigureSummary]) -> list[tuple[str, ...]]:
    out = []
    for r in rows:
        unit = f" {r.unit}" if r.unit else ""
        h = r.headroom
        out.append(
            (
                r.figure,
                f"{r.passed}/{r.runs}",
                _num(min(r.measured)),
                _num(statistics.median(r.measured)),
                _num(r.worst) + unit,
                f"{r.op} {_num(r.threshold)}{unit}",
                _num(r.paper),
                "" if h is None else f"{100 * h:.0f} %",
            )
        )
    return out


def verdict_line(outcomes: list[RunOutcome]) -> str:
    alarms = sum(o.false_alarm for o in outcomes)
    return f"false alarms: {alarms} of {len(outcomes)} unmutated runs"


def markdown(outcomes: list[RunOutcome], rows: list[FigureSummary], command: str) -> str:
    md = [
        f"# Unmutated PR-tier runs, {datetime.now(UTC).date().isoformat()}",
        "",
        f"Command: `{command}`.",
        "",
        "| run | exit | wall | judged verdicts | failed |",
        "|---|---:|---:|---:|---|",
    ]
    for o in outcomes:
        failed = "; ".join(o.failed_verdicts + o.failed_tests) or "none"
        wall = f"{o.wall_s:.0f} s" if o.wall_s is not None else ""
        md.append(f"| `{o.directory}` | {o.exit_status} | {wall} | {o.judged} | {failed} |")
    md += [
        "",
        f"**{verdict_line(outcomes)}.** Per judged figure: runs that passed, the measured "
        "min / median / worst over runs, and the worst run's headroom inside the threshold "
        "(share of the threshold).",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table_rows(rows)),
        "",
    ]
    return "\n".join(md)


def text_table(rows: list[FigureSummary], width: int = 60) -> str:
    cells = [
        (f[: width - 3] + "..." if len(f) > width else f, *rest) for f, *rest in table_rows(rows)
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADERS)]
    fmt = "  ".join(f"{{:{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*HEADERS), *(fmt.format(*c) for c in cells)])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runs",
        type=int,
        default=RECOMMENDED_RUNS,
        help=f"unmutated runs, one after another (default {RECOMMENDED_RUNS})",
    )
    p.add_argument("--cluster", default="local", help="profile name or file (default local)")
    p.add_argument(
        "--results-dir",
        type=Path,
        help="where trial-K/, trial-K.log, control.md and control.json go (default "
        "k8sai-control/<UTC time>; with --from: the directory the runs share)",
    )
    calibrate.add_from_argument(p, "summarise")
    calibrate.add_pytest_args_argument(p, "run")


def cmd_control(args: argparse.Namespace) -> int:
    if not 1 <= args.runs <= 100:
        raise K8saiError(f"--runs {args.runs}: give 1 to 100 runs (default {RECOMMENDED_RUNS}).")
    opts = calibrate.Options(
        trials=args.runs,
        cluster=args.cluster,
        from_dirs=args.from_dirs,
        pytest_args=args.pytest_args,
    )
    if opts.from_dirs:
        dirs = calibrate.trial_dirs(opts.from_dirs)
        out_dir = args.results_dir or Path(os.path.commonpath([d.resolve() for d in dirs]))
        command = "k8sai mutants control --from " + " ".join(str(d) for d in opts.from_dirs)
    else:
        out_dir = args.results_dir or Path("k8sai-control") / datetime.now(UTC).strftime(
            "%Y%m%dT%H%M%SZ"
        )
        dirs = calibrate.run_trials(opts, out_dir)
        args_text = " ".join(opts.pytest_args or calibrate.default_pytest_args())
        command = (
            f"k8sai mutants control --runs {opts.trials} --cluster {opts.cluster} -- {args_text}"
        )
    verdicts = [calibrate.read_verdicts(d) for d in dirs]
    outcomes = [run_outcome(d, v) for d, v in zip(dirs, verdicts, strict=True)]
    rows = summarize(verdicts)
    print(text_table(rows))
    for o in outcomes:
        if o.false_alarm:
            failed = "; ".join(o.failed_verdicts + o.failed_tests) or f"exit {o.exit_status}"
            print(f"false alarm in {o.directory}: {failed}")
    print(verdict_line(outcomes))
    if len(dirs) < RECOMMENDED_RUNS:
        progress(f"[control] {len(dirs)} runs: the target is judged on {RECOMMENDED_RUNS}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / OUTPUT_MD).write_text(markdown(outcomes, rows, command), encoding="utf-8")
        doc = {
            "runs": [{**asdict(o), "false_alarm": o.false_alarm} for o in outcomes],
            "figures": [{**asdict(r), "headroom": r.headroom} for r in rows],
            "false_alarms": sum(o.false_alarm for o in outcomes),
        }
        (out_dir / OUTPUT_JSON).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise K8saiError(
            f"The summary cannot be written to {out_dir}: {exc.strerror or exc}. The table "
            "above is complete; --results-dir picks another directory."
        ) from None
    print(f"written: {out_dir / OUTPUT_MD}, {out_dir / OUTPUT_JSON}")
    return 1 if any(o.false_alarm for o in outcomes) else 0
