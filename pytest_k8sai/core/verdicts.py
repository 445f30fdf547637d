"""SLO verdicts: each measured figure, the threshold it was held to, and whether it passed.

Verdicts are appended to ``verdicts.jsonl`` the moment they are recorded, so a run that crashes
half-way still keeps every figure it measured. The terminal table is a pure function of them.
"""

from __future__ import annotations

import math
import operator
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Op = Literal["<=", "<", ">=", ">"]
# How ``measured`` is made from ``samples``; the regression comparison bootstraps the same one.
Statistic = Literal["median", "mean", "p90", "p95", "p99", "min", "max"]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}

VERDICTS_FILE = "verdicts.jsonl"


class Verdict(BaseModel):
    """One measured figure held against its threshold (None: reported, not judged)."""

    # NaN/inf become the strings "NaN"/"Infinity": valid JSON that pydantic reads back.
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")

    figure: str
    measured: float
    unit: str
    threshold: float | None
    op: Op
    n: int = Field(ge=0)
    source: str
    passed: bool
    nodeid: str = ""
    run_id: str = ""
    # Optional, for results files and baseline comparison (older verdicts lack them).
    samples: list[float] | None = None  # the raw values ``measured`` summarises, same unit
    statistic: Statistic | None = None  # which summary of ``samples`` it is (None: median)
    suite: str = ""  # e.g. "kueue": the directory under suites/
    setup: str = ""  # e.g. "best-effort-fifo": the experiment setup, when there is one
    key: str = ""  # the profile's slo field the threshold came from (for calibration)
    paper: float | None = None  # what the paper measured for that field, same unit
    # Set on a model check: why this figure is reported, not judged (the project's own inputs
    # fix it on this tier), and the threshold it is held to where real components decide it.
    model_check: str = ""
    model_threshold: float | None = None
    # Sizes of consecutive groups of ``samples`` that came from separate experiment runs (e.g.
    # one group per repetition of a setup), so ``--baseline`` resamples runs before samples;
    # None: all samples are one run.
    sample_runs: list[int] | None = None
    # Set when a fault during the measurement (a watch outage, a component restart, samples the
    # recorder and the API disagree on) makes the figure untrustworthy, and why. It is then
    # neither passed nor failed: shown as INVALID with the reason, never compared to baselines.
    invalid: str = ""

    @property
    def verdict(self) -> str:
        if self.invalid:
            return "INVALID"
        if self.threshold is None:
            return "INFO"
        return "PASS" if self.passed else "FAIL"

    def describe(self) -> str:
        """One line a performance engineer can act on: what, how much, against what, from where."""
        got = f"measured {_num(self.measured)} {self.unit}".rstrip()
        if self.invalid:
            return (
                f"INVALID, not judged ({self.invalid}): {self.figure}: {got} "
                f"(n={self.n}, source: {self.source})"
            )
        if self.model_check:
            held = (
                f"; held to {self.op} {_num(self.model_threshold)} {self.unit} where real parts "
                "decide it"
                if self.model_threshold is not None
                else ""
            )
            return (
                f"INFO, not judged on this tier ({self.model_check}{held}): {self.figure}: "
                f"{got} (n={self.n}, source: {self.source})"
            )
        if self.threshold is None:
            return f"{self.figure}: {got} (n={self.n}, source: {self.source})"
        want = f"required {self.op} {_num(self.threshold)} {self.unit}".rstrip()
        if self.paper is not None:
            want += f" (paper {_num(self.paper)})"
        word = "met" if self.passed else "FAILED"
        return f"SLO {word}: {self.figure}: {got}, {want} (n={self.n}, source: {self.source})"


def judge(measured: float, op: Op, threshold: float | None) -> bool:
    """True when ``measured op threshold`` holds; a NaN measurement never passes a threshold."""
    if threshold is None:
        return True
    if op not in _COMPARE:
        raise ValueError(f"op must be one of {', '.join(_COMPARE)}, not {op!r}")
    return _COMPARE[op](measured, threshold)


class VerdictLog:
    """All verdicts of one session, mirrored line by line to ``<results_dir>/verdicts.jsonl``.

    ``listeners`` are called with each verdict after it is written (the results file, the
    baseline comparison); they must not raise for the test's sake.
    """

    def __init__(self, path: Path | None, run_id: str = "") -> None:
        self.path = path
        self.run_id = run_id
        self.verdicts: list[Verdict] = []
        self.listeners: list[Callable[[Verdict], None]] = []
        self._started = False

    def record(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # The first write of a session truncates, so the file only ever holds this run.
            mode = "a" if self._started else "w"
            with self.path.open(mode, encoding="utf-8") as fh:
                fh.write(verdict.model_dump_json() + "\n")
            self._started = True
        for listener in self.listeners:
            listener(verdict)

    def check(
        self,
        figure: str,
        measured: float,
        *,
        unit: str,
        threshold: float | None,
        op: Op,
        n: int,
        source: str,
        nodeid: str = "",
        samples: Sequence[float] | None = None,
        statistic: Statistic | None = None,
        suite: str = "",
        setup: str = "",
        key: str = "",
        paper: float | None = None,
        model_check: str = "",
        invalid: str = "",
    ) -> Verdict:
        """Record the verdict; raise AssertionError (after recording) when it fails.

        ``invalid``: why a fault during the measurement makes the figure untrustworthy; it is
        then recorded as INVALID (shown with the reason, neither passed nor failed).

        ``model_check``: a reason this figure is fixed by the project's own inputs on this tier;
        it is then recorded as INFO with ``threshold`` kept as ``model_threshold``.

        ``samples``: the raw values behind ``measured`` (e.g. every admission attempt behind a
        P99), kept in the results file and used by ``--baseline``; ``statistic`` says which
        summary of them ``measured`` is (default: median)."""
        __tracebackhide__ = True  # pytest shows the test's line, not this function
        # float()/int() accept numpy scalars, which pydantic's int validation would not.
        measured = float(measured)
        threshold = None if threshold is None else float(threshold)
        model_threshold = None
        if model_check:
            threshold, model_threshold = None, threshold
        verdict = Verdict(
            figure=figure,
            measured=measured,
            unit=unit,
            threshold=threshold,
            op=op,
            n=int(n),
            source=source,
            passed=True if invalid else judge(measured, op, threshold),
            nodeid=nodeid,
            run_id=self.run_id,
            samples=None if samples is None else [float(x) for x in samples],
            statistic=statistic,
            suite=suite,
            setup=setup,
            key=key,
            paper=None if paper is None else float(paper),
            model_check=model_check,
            model_threshold=model_threshold,
            invalid=invalid,
        )
        self.record(verdict)
        if not verdict.passed:
            raise AssertionError(verdict.describe())
        return verdict

    def bind(
        self,
        nodeid: str,
        *,
        suite: str = "",
        setup: str = "",
        paper: Mapping[str, float] | None = None,
    ) -> BoundVerdicts:
        return BoundVerdicts(self, nodeid, suite=suite, setup=setup, paper=paper)

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]


class BoundVerdicts:
    """The ``slo`` fixture: VerdictLog.check with the current test's nodeid filled in.

    A failed check does not stop the test: every verdict of a test is evaluated and reported,
    and the plugin fails the test at its end listing each failed one (``failures``). A first
    failing figure must not hide the others (e.g. the concurrency level after a failed one).
    """

    def __init__(
        self,
        log: VerdictLog,
        nodeid: str,
        *,
        suite: str = "",
        setup: str = "",
        paper: Mapping[str, float] | None = None,
    ) -> None:
        self.log = log
        self.nodeid = nodeid
        self.suite = suite
        self.setup = setup
        self.paper = dict(paper or {})  # slo field -> the paper's value, shown beside a threshold
        self.failures: list[str] = []

    def check(
        self,
        figure: str,
        measured: float,
        *,
        unit: str,
        threshold: float | None,
        op: Op,
        n: int,
        source: str,
        samples: Sequence[float] | None = None,
        statistic: Statistic | None = None,
        setup: str | None = None,
        key: str = "",
        model_check: str = "",
        invalid: str = "",
    ) -> Verdict:
        """``key``: the slo field ``threshold`` came from (calibration, the paper's value);
        ``model_check``: why the figure is fixed by the project's own inputs on this tier (it
        is then reported as INFO, never judged); ``invalid``: why a fault during the
        measurement makes it untrustworthy (reported as INVALID, never judged)."""
        __tracebackhide__ = True
        try:
            return self.log.check(
                figure,
                measured,
                unit=unit,
                threshold=threshold,
                op=op,
                n=n,
                source=source,
                nodeid=self.nodeid,
                samples=samples,
                statistic=statistic,
                suite=self.suite,
                setup=self.setup if setup is None else setup,
                key=key,
                paper=self.paper.get(key) if key else None,
                model_check=model_check,
                invalid=invalid,
            )
        except AssertionError as exc:
            self.failures.append(str(exc))
            return self.log.verdicts[-1]

    def info(
        self,
        figure: str,
        measured: float,
        *,
        unit: str,
        n: int,
        source: str,
        samples: Sequence[float] | None = None,
        statistic: Statistic | None = None,
        setup: str | None = None,
        invalid: str = "",
    ) -> Verdict:
        """Record a figure without a threshold (an INFO row): shown, kept in results.json and
        compared with ``--baseline``, never failing the test."""
        __tracebackhide__ = True
        return self.check(
            figure,
            measured,
            unit=unit,
            threshold=None,
            op="<=",
            n=n,
            source=source,
            samples=samples,
            statistic=statistic,
            setup=setup,
            invalid=invalid,
        )

    @property
    def verdicts(self) -> list[Verdict]:
        """Verdicts recorded by this test so far."""
        return [v for v in self.log.verdicts if v.nodeid == self.nodeid]


def _num(x: float) -> str:
    """Short, unambiguous numbers: 25, 3.142, 0.000123, 12345, 1.23e+09."""
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == int(x) and abs(x) < 1e9:
        return str(int(x))
    if 1e4 <= abs(x) < 1e9:
        return f"{x:.0f}"
    return f"{x:.4g}"


def _fit(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


HEADERS = ("figure", "measured", "threshold", "verdict", "n", "source")
_GAP = "  "
# Caps for the middle columns; figure and source share whatever width is left.
_CAPS = {"measured": 16, "threshold": 22, "verdict": 7, "n": 8}


def _cells(v: Verdict) -> tuple[str, ...]:
    measured = f"{_num(v.measured)} {v.unit}".rstrip()
    threshold = "-" if v.threshold is None else f"{v.op} {_num(v.threshold)} {v.unit}".rstrip()
    if v.threshold is not None and v.paper is not None:
        threshold += f" (paper {_num(v.paper)})"
    source = v.source
    if v.model_check:
        held = (
            ""
            if v.model_threshold is None
            else f", {v.op} {_num(v.model_threshold)} {v.unit} on real parts".replace("  ", " ")
        )
        source = f"NOT JUDGED HERE: {v.model_check}{held}; {source}"
    if v.invalid:
        source = f"INVALID: {v.invalid}; {source}"
    return (v.figure, measured, threshold, v.verdict, str(v.n), source)


def format_verdict_rows(
    verdicts: Sequence[Verdict], width: int = 100
) -> tuple[list[str], list[list[str]]]:
    """Header lines, then the lines of each verdict (same order). Figure and source wrap onto
    continuation lines rather than being cut: the source is what makes a number defensible.
    No line is longer than ``width``."""
    rows = [_cells(v) for v in verdicts]
    natural = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(HEADERS)]
    widths = dict(zip(HEADERS, natural, strict=True))
    for name, cap in _CAPS.items():
        widths[name] = min(widths[name], cap)
    middle = sum(widths[h] for h in HEADERS[1:5])
    room = width - middle - len(_GAP) * (len(HEADERS) - 1)
    fig, src = widths["figure"], widths["source"]
    if fig + src > room:
        # Figure keeps up to 40 % of the room (less when shorter); source gets the rest.
        fig = min(fig, max(room * 2 // 5, room - src))
        src = room - fig
    widths["figure"], widths["source"] = max(fig, 6), max(src, 6)
    right = {"measured", "n"}
    wrapped = {"figure", "source"}

    def lines(cells: Sequence[str]) -> list[str]:
        columns = [
            textwrap.wrap(cell, widths[name]) or [""]
            if name in wrapped
            else [_fit(cell, widths[name])]
            for name, cell in zip(HEADERS, cells, strict=True)
        ]
        out = []
        for i in range(max(len(c) for c in columns)):
            parts = []
            for name, col in zip(HEADERS, columns, strict=True):
                text = col[i] if i < len(col) else ""
                parts.append(
                    text.rjust(widths[name]) if name in right else text.ljust(widths[name])
                )
            out.append(_GAP.join(parts).rstrip()[:width])
        return out

    rule = _GAP.join("-" * widths[h] for h in HEADERS)[:width]
    return [*lines(HEADERS), rule], [lines(r) for r in rows]


def format_verdict_table(verdicts: Sequence[Verdict], width: int = 100) -> list[str]:
    """The whole table as lines: header, rule, then every verdict's lines."""
    header, rows = format_verdict_rows(verdicts, width)
    return header + [line for row in rows for line in row]
