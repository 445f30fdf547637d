"""What the run prints at its end: tables, the verdict table, the comparison with the
baseline and where the result files are (plugin.py hands the session's objects over)."""

from __future__ import annotations

import pytest

from pytest_k8sai.core.verdicts import VerdictLog, format_verdict_rows
from pytest_k8sai.report import redact
from pytest_k8sai.report.aic.session import AicResult
from pytest_k8sai.report.session import RunReport
from pytest_k8sai.report.summary import comparison_lines
from pytest_k8sai.report.tables import TableLog


def write_summary(
    tr: pytest.TerminalReporter, tables: TableLog, log: VerdictLog, report: RunReport | None
) -> None:
    """The tables, the verdict table, the baseline comparison and where the files are."""
    for table in tables.tables:
        title, *lines = table.text()
        tr.write_sep("=", title)
        for line in lines:
            tr.write_line(line)
    verdicts = log.verdicts
    if verdicts:
        tr.write_sep("=", "k8sai verdicts")
        header, rows = format_verdict_rows(verdicts)
        for line in header:
            tr.write_line(line, bold=True)
        for row, v in zip(rows, verdicts, strict=True):
            for line in row:
                tr.write_line(
                    line,
                    red=not v.passed,
                    yellow=bool(v.invalid),
                    green=v.passed and v.threshold is not None and not v.invalid,
                )
        if invalid := [v for v in verdicts if v.invalid]:
            # Neither green nor red: say so, so a nightly reading only the exit code is told.
            tr.write_line(
                f"{len(invalid)} figures INVALID (a fault during the measurement; not judged, "
                "see each one's reason)",
                yellow=True,
                bold=True,
            )
        tr.write_line(f"verdicts: {log.path}")
    if report is not None:
        _write_comparison(tr, report)
        _write_files(tr, report)


def write_conformance(tr: pytest.TerminalReporter, result: AicResult | None, full: bool) -> None:
    """The filled AI Conformance checklist: with --aic-report one line per id, then where it
    was written and what still stands between it and a submission; otherwise (a run that
    merely had some marked checks, e.g. the PR tier) one line."""
    if result is None:
        return
    if not full:
        tr.write_line(
            f"k8sai AI conformance (from this run's checks only): {result.counts()}; "
            f"{result.written[0] if result.written else ''} "
            "(pytest -m conformance --aic-report PATH fills it from every check)"
        )
        for problem in result.problems:
            tr.write_line(f"CHECKLIST PROBLEM: {problem}", red=True, bold=True)
        return
    tr.write_sep("=", "k8sai AI conformance checklist")
    for line in result.summary_lines():
        tr.write_line(line)
    for path in result.written:
        tr.write_line(f"checklist: {path}")
    for problem in result.problems:
        tr.write_line(f"CHECKLIST PROBLEM: {problem}", red=True, bold=True)
    if result.gaps:
        tr.write_line(f"before a submission ({len(result.gaps)}): " + "; ".join(result.gaps))


def write_notes(tr: pytest.TerminalReporter, notes: list[str]) -> None:
    """What fixtures had to say (a kept cluster's kubeconfig, logs collected after a failure)."""
    for note in notes:
        tr.write_line(f"k8sai: {redact.scrub(note)}", yellow=True)  # notes quote errors


def _write_comparison(tr: pytest.TerminalReporter, report: RunReport) -> None:
    comp = report.results.comparison
    if comp is None:
        return
    tr.write_sep("=", "k8sai comparison with the baseline")
    for err in report.baseline_errors:
        tr.write_line(f"BASELINE ERROR: {err}", red=True, bold=True)
    if comp.baseline_files:
        tr.write_line(
            f"baseline: {', '.join(comp.baseline_files)}; tolerance {comp.tolerance_pct:g} %, "
            f"{(1 - comp.alpha) * 100:g} % bootstrap CI of the difference, test needs >= "
            f"{comp.min_samples} samples per side"
        )
    # Figures only on one side are listed by name, not as rows of dashes.
    shown = [c for c in comp.changes if c.verdict not in ("NEW", "MISSING")]
    for kind, meaning in (("NEW", "not in the baseline"), ("MISSING", "not measured tonight")):
        names = [c.figure for c in comp.changes if c.verdict == kind]
        if names:
            tr.write_line(f"{kind} ({meaning}): {len(names)}: {'; '.join(names)}")
    if not shown:
        return
    header, *rows = comparison_lines(shown)
    for line in header:
        tr.write_line(line, bold=True)
    for lines, change in zip(rows, shown, strict=True):
        color = {"REGRESSION": "red", "IMPROVEMENT": "green"}.get(change.verdict)
        for line in lines:
            tr.write_line(line, **({color: True} if color else {}))
    if report.regressions:
        fail = " (the run fails: regression.fail_run)" if report.fail_on_regression else ""
        tr.write_line(f"{len(report.regressions)} regression(s){fail}", red=True, bold=True)


def _write_files(tr: pytest.TerminalReporter, report: RunReport) -> None:
    res = report.results
    wall = res.wall_s or 0.0
    share = f" ({res.report_overhead_s / wall * 100:.1f} % of {wall:.1f} s)" if wall else ""
    others = [v for k, v in res.files.items()] + [p.file for p in res.plots]
    tr.write_line(f"k8sai results: {report.path}")
    tr.write_line(f"  beside it: {', '.join(others)}")
    tr.write_line(f"  report writing took {res.report_overhead_s:.2f} s{share}")
    if report.writer.error:
        tr.write_line(f"k8sai: RESULTS NOT COMPLETE: {report.writer.error}", red=True)
