"""Verdicts: pass/fail messages, incremental verdicts.jsonl, and a table that fits 100 columns."""

from __future__ import annotations

import json
import math

import pytest

from pytest_k8sai.core.verdicts import (
    Verdict,
    VerdictLog,
    format_verdict_rows,
    format_verdict_table,
)


def _check(log: VerdictLog, measured: float, **kw):
    args = dict(unit="ms", threshold=25.0, op="<=", n=1000, source="kueue histogram")
    args.update(kw)
    return log.check("admission p99", measured, **args)


def test_passing_check_returns_verdict():
    log = VerdictLog(None)
    v = _check(log, 12.5, nodeid="t::a")
    assert v.passed and v.verdict == "PASS"
    assert log.verdicts == [v]
    assert v.nodeid == "t::a"


def test_failing_check_message_shows_everything_and_is_recorded():
    log = VerdictLog(None)
    with pytest.raises(AssertionError) as err:
        _check(log, 31.25)
    msg = str(err.value)
    for part in ("admission p99", "31.25", "<=", "25", "ms", "n=1000", "kueue histogram"):
        assert part in msg
    assert log.failed and log.failed[0].measured == 31.25


@pytest.mark.parametrize(
    ("measured", "op", "threshold", "passed"),
    [
        (25, "<=", 25, True),
        (25, "<", 25, False),
        (25, ">=", 25, True),
        (25, ">", 25, False),
        (math.nan, "<=", 25, False),
        (math.nan, ">=", 25, False),
    ],
)
def test_operators(measured, op, threshold, passed):
    log = VerdictLog(None)
    if passed:
        assert _check(log, measured, op=op, threshold=threshold).passed
    else:
        with pytest.raises(AssertionError):
            _check(log, measured, op=op, threshold=threshold)


def test_no_threshold_is_informational():
    log = VerdictLog(None)
    v = _check(log, 1e6, threshold=None)
    assert v.passed and v.verdict == "INFO"


def test_numpy_scalars_are_accepted():
    np = pytest.importorskip("numpy")
    v = _check(VerdictLog(None), np.float64(3.0), n=np.int64(7), threshold=np.float64(4))
    assert v.n == 7 and v.measured == 3.0


def test_bound_fills_nodeid():
    log = VerdictLog(None)
    bound = log.bind("suite.py::test_x")
    bound.check("f", 1, unit="s", threshold=2, op="<", n=3, source="src")
    assert log.verdicts[0].nodeid == "suite.py::test_x"
    assert bound.verdicts == log.verdicts


def test_jsonl_written_as_recorded_and_truncated_per_session(tmp_path):
    path = tmp_path / "out" / "verdicts.jsonl"
    path.parent.mkdir()
    path.write_text("stale line from an earlier run\n")
    log = VerdictLog(path, run_id="r1")
    _check(log, 1.0)
    assert len(path.read_text().splitlines()) == 1
    with pytest.raises(AssertionError):
        _check(log, 99.0)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first, second = (Verdict.model_validate_json(line) for line in lines)
    assert first.passed and not second.passed
    assert json.loads(lines[1])["run_id"] == "r1"


def test_nan_survives_the_round_trip(tmp_path):
    path = tmp_path / "v.jsonl"
    log = VerdictLog(path)
    _check(log, math.nan, threshold=None)
    back = Verdict.model_validate_json(path.read_text().splitlines()[0])
    assert math.isnan(back.measured)


def _verdict(figure: str, source: str, passed: bool = True, threshold: float | None = 25.0):
    return Verdict(
        figure=figure,
        measured=12.3456,
        unit="ms",
        threshold=threshold,
        op="<=",
        n=1000,
        source=source,
        passed=passed,
    )


def test_table_fits_100_columns_and_wraps_long_text_without_losing_it():
    long_figure = "Kueue admission attempt P99 (histogram) " * 3
    long_source = " ".join(f"metric{i}" for i in range(40))
    verdicts = [
        _verdict(long_figure, long_source),
        _verdict("short", "src", passed=False),
        _verdict("info only", "client clock", threshold=None),
    ]
    header, rows = format_verdict_rows(verdicts)
    lines = format_verdict_table(verdicts)
    assert lines == header + [line for row in rows for line in row]
    assert all(len(line) <= 100 for line in lines)
    assert header[0].split() == ["figure", "measured", "threshold", "verdict", "n", "source"]
    assert len(rows[0]) > 1, "long figure and source wrap onto continuation lines"
    text = " ".join(rows[0])
    assert all(f"metric{i}" in text for i in range(40)), "no word of the source is lost"
    assert "PASS" in rows[0][0] and "FAIL" in rows[1][0] and "INFO" in rows[2][0]
    assert [len(r) for r in rows[1:]] == [1, 1]
    assert "<= 25 ms" in rows[1][0] and "12.35 ms" in rows[1][0] and "1000" in rows[1][0]


def test_short_table_is_not_padded_to_100():
    lines = format_verdict_table([_verdict("p99", "hist")])
    assert max(len(line) for line in lines) < 80
    assert lines[2].startswith("p99 ")


def test_empty_table_is_just_the_header():
    assert len(format_verdict_table([])) == 2
