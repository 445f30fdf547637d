"""The unmutated-runs summary (``k8sai mutants control``): false alarms and per-figure spread."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pytest_k8sai import controlruns
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.verdicts import Verdict


def _v(figure: str, measured: float, threshold: float | None, op: str = "<=", **kw) -> Verdict:
    passed = threshold is None or (measured <= threshold if op == "<=" else measured >= threshold)
    return Verdict(
        figure=figure, measured=measured, unit="ms", threshold=threshold, op=op, n=10,
        source="test", passed=passed, **kw,
    )  # fmt: skip


def test_summary_counts_passes_and_keeps_each_runs_worst() -> None:
    runs = [
        [_v("p99", 40, 94.1), _v("p99", 60, 94.1), _v("info", 1, None)],
        [_v("p99", 100, 94.1)],
        [_v("hit", 0.9, 0.85, ">=")],
    ]
    rows = {r.figure: r for r in controlruns.summarize(runs)}
    assert set(rows) == {"p99", "hit"}  # INFO figures are not judged
    p99 = rows["p99"]
    assert p99.measured == [60, 100] and p99.passed == 1 and p99.runs == 2
    assert p99.worst == 100
    assert p99.headroom == pytest.approx((94.1 - 100) / 94.1)
    assert rows["hit"].headroom == pytest.approx((0.9 - 0.85) / 0.85)


def test_run_outcome_reads_failed_tests_and_exit_status(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(
        json.dumps(
            {
                "exit_status": 1,
                "wall_s": 700.5,
                "tests": [
                    {"nodeid": "a::ok", "outcome": "passed"},
                    {"nodeid": "a::bad", "outcome": "failed"},
                ],
            }
        )
    )
    out = controlruns.run_outcome(tmp_path, [_v("p99", 100, 94.1), _v("x", 1, None)])
    assert out.false_alarm and out.judged == 1
    assert out.failed_verdicts == ["p99"] and out.failed_tests == ["a::bad"]
    clean = controlruns.run_outcome(tmp_path / "missing", [_v("p99", 1, 94.1)])
    assert not clean.false_alarm and clean.exit_status is None


def test_markdown_names_the_false_alarm_count() -> None:
    outcome = controlruns.RunOutcome("d1", 0, 600.0, 3)
    rows = controlruns.summarize([[_v("p99", 50, 94.1, paper=25.0)]])
    md = controlruns.markdown([outcome], rows, "k8sai mutants control")
    assert "false alarms: 0 of 1 unmutated runs" in md
    assert "| p99 | 1/1 |" in md and "<= 94.1 ms" in md


def test_runs_out_of_range_is_a_one_line_error() -> None:
    args = argparse.Namespace(runs=0, cluster="local", from_dirs=[], pytest_args=[])
    with pytest.raises(K8saiError, match="--runs 0"):
        controlruns.cmd_control(args)
