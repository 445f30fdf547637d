"""``k8sai calibrate`` on synthetic trials (verdicts.jsonl files; no cluster): grouping by slo
key, the worst per trial, the margin's direction, YAML that the Profile model reads back,
one-paragraph errors, and running trials as child processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from pytest_k8sai import calibrate as cal
from pytest_k8sai.cli import main
from pytest_k8sai.core.profiles import Slo, load_profile, parse_profile
from pytest_k8sai.core.verdicts import VERDICTS_FILE, Verdict, judge

P99 = "kueue_admission_attempt_p99_ms"
HIT = "gaie_prefix_hit_rate_min"
RATIO = "kueue_preemption_makespan_ratio_max"


def verdict(key: str, measured: float, op: str = "<=", threshold: float | None = 25.0) -> Verdict:
    return Verdict(
        figure=f"{key} figure",
        measured=measured,
        unit="ms" if key.endswith("_ms") else "",
        threshold=threshold,
        op=op,
        n=10,
        source="synthetic",
        passed=judge(measured, op, threshold),
        key=key,
    )


def write_trial(directory: Path, verdicts: list[Verdict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(v.model_dump_json() + "\n" for v in verdicts)
    (directory / VERDICTS_FILE).write_text(lines, encoding="utf-8")
    return directory


# Five trials: the admission P99 of two setups (upper bound), the hit rate at two concurrency
# levels (lower bound), an ordering ratio, an INFO figure with a key, a figure without a key.
P99_BY_TRIAL = [(20.0, 31.0), (22.0, 28.0), (19.0, 40.0), (21.0, 30.0), (35.0, 18.0)]
HIT_BY_TRIAL = [(0.90, 0.85), (0.88, 0.92), (0.80, 0.95), (0.91, 0.86), (0.87, 0.89)]


def five_trials(root: Path) -> list[Path]:
    dirs = []
    for k, (p99s, hits) in enumerate(zip(P99_BY_TRIAL, HIT_BY_TRIAL, strict=True), start=1):
        vs = [verdict(P99, x) for x in p99s]
        vs += [verdict(HIT, x, op=">=", threshold=0.6) for x in hits]
        vs += [verdict(RATIO, 0.95, op="<", threshold=1.0)]
        vs += [verdict(P99, 99.0, threshold=None)]  # INFO: nothing to calibrate
        vs += [verdict("", 5.0)]  # no key
        dirs.append(write_trial(root / f"trial-{k}", vs))
    return dirs


def outcome_of(root: Path, keys=cal.DEFAULT_KEYS, margin: float = 0.25) -> cal.Outcome:
    dirs = five_trials(root)
    trials = [cal.read_verdicts(d) for d in dirs]
    return cal.calibrate(trials, keys, margin, load_profile("local"), dirs=dirs)


def test_grouped_by_key_worst_per_trial_then_mean_and_worst(tmp_path):
    out = outcome_of(tmp_path)
    rows = {r.key: r for r in out.rows}
    assert set(rows) == {P99, HIT}
    p99 = rows[P99]
    # Upper bound: the highest setup per trial; INFO verdicts (no threshold) are left out.
    assert p99.per_trial == [31.0, 28.0, 40.0, 30.0, 35.0]
    assert p99.trials == 5 and p99.n == 10
    assert p99.mean == pytest.approx(32.8) and p99.worst == 40.0
    hit = rows[HIT]
    # Lower bound: the lowest concurrency level per trial.
    assert hit.per_trial == [0.85, 0.88, 0.80, 0.86, 0.87]
    assert hit.worst == 0.80 and hit.mean == pytest.approx(0.852)
    assert any(RATIO in s and "not calibrated" in s for s in out.skipped)
    assert any(
        s.startswith("no judged verdict") and "das_slice_provisioning_p99_ms" in s
        for s in out.skipped
    )


def test_margin_goes_outward_for_upper_and_lower_bounds(tmp_path):
    rows = {r.key: r for r in outcome_of(tmp_path).rows}
    assert rows[P99].proposed == 50.0  # 40 x 1.25, an upper bound: up
    assert rows[HIT].proposed == 0.6  # 0.80 x 0.75, a lower bound: down
    assert cal.propose(64.12, True, 0.25, P99) == (80.2, "")  # 80.15 rounded up
    assert cal.propose(0.913, False, 0.25, HIT) == (0.684, "")  # 0.68475 rounded down
    # A negative worst (an overhead below zero): outward is still upward.
    assert cal.propose(-2.0, True, 0.25, "kwok_duration_tolerance_ms")[0] is None
    value, note = cal.propose(-2.0, True, 0.5, "kueue_borrowed_gpus_min")  # ge 0
    assert value == 0.0 and "held to the field's range (>= 0)" in note


def test_field_range_bounds_the_proposal():
    value, note = cal.propose(0.9, True, 0.25, HIT)  # ge 0, le 1
    assert value == 1.0 and "held to the field's range (<= 1)" in note
    value, note = cal.propose(0.0, True, 0.25, P99)  # gt 0: no valid value leaves a margin
    assert value is None and "(> 0)" in note


def test_looser_than_the_paper_is_said(tmp_path):
    rows = {r.key: r for r in outcome_of(tmp_path).rows}
    current = load_profile("local").slo.kueue_admission_attempt_p99_ms  # the calibrated one
    assert rows[P99].paper == 25.0 and rows[P99].current == current
    assert any("looser than the paper's 25 (Table 4" in n for n in rows[P99].notes)
    assert rows[HIT].notes == []  # no paper value for the hit rate


def test_yaml_round_trips_through_the_profile_model(tmp_path):
    out = outcome_of(tmp_path)
    text = cal.profile_yaml(out, "test box (2 cores, x86_64)", "2026-12-06")
    assert "# <=; 5 trials: mean 32.8, worst 40 ms; margin 25 %; paper 25" in text
    data = yaml.safe_load(text)
    profile = parse_profile({"name": "t", "provider": "local", **data}, "calibration.yaml")
    assert profile.slo.kueue_admission_attempt_p99_ms == 50.0
    assert profile.slo.gaie_prefix_hit_rate_min == 0.6
    c = profile.calibration[P99]
    assert (c.trials, c.n, c.mean, c.worst, c.margin) == (5, 10, 32.8, 40.0, 0.25)
    assert c.machine == "test box (2 cores, x86_64)" and c.date == "2026-12-06"
    assert set(profile.calibration) == {P99, HIT}


def test_keys_choose_what_is_calibrated(tmp_path):
    out = outcome_of(tmp_path, keys=[RATIO])
    assert [r.key for r in out.rows] == [RATIO]
    assert out.rows[0].proposed == 1.19  # 0.95 x 1.25 = 1.1875, up
    assert any(P99 in s and "--keys" in s for s in out.skipped)


def test_default_keys_are_latencies_and_rates_not_orderings():
    ms = {k for k in Slo.model_fields if "_ms" in k}
    assert ms <= set(cal.DEFAULT_KEYS) and HIT in cal.DEFAULT_KEYS
    for ordering in (RATIO, "kueue_priority_large_queue_ratio_max", "kueue_fifo_order_kept_min"):
        assert ordering not in cal.DEFAULT_KEYS
    assert set(cal.DEFAULT_KEYS) <= set(Slo.model_fields)


def test_from_dirs_end_to_end_writes_md_and_yaml(tmp_path, capsys):
    five_trials(tmp_path / "cal")
    assert main(["calibrate", "--from", str(tmp_path / "cal"), "--machine", "box"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == [
        "key", "trials", "mean", "worst", "margin", "proposed", "current", "paper",
    ]  # fmt: skip
    current = load_profile("local").slo.kueue_admission_attempt_p99_ms
    assert f"{P99}  5" in printed and "<= 50 ms" in printed and f"<= {current:g} ms" in printed
    written = yaml.safe_load((tmp_path / "cal" / cal.OUTPUT_YAML).read_text())
    assert written["slo"] == {P99: 50.0, HIT: 0.6}
    md = (tmp_path / "cal" / cal.OUTPUT_MD).read_text()
    assert "| kueue_admission_attempt_p99_ms | 5 | 32.8 ms | 40 ms |" in md
    assert "```yaml" in md and "trial-5" in md


def test_from_several_results_dirs_and_a_cut_last_line(tmp_path, capfd):
    a = write_trial(tmp_path / "night-a", [verdict(P99, 30.0)])
    b = write_trial(tmp_path / "night-b", [verdict(P99, 20.0)])
    with (b / VERDICTS_FILE).open("a") as fh:
        fh.write('{"figure": "cut sh')  # a crash mid-write
    assert cal.trial_dirs([a, b / VERDICTS_FILE]) == [a, b]
    assert main(["calibrate", "--from", str(a), str(b), "--keys", P99]) == 0
    assert (tmp_path / cal.OUTPUT_YAML).is_file()  # beside both: their common directory
    assert "2 trials: thresholds are calibrated on at least 5" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p / "nope", "no such file or directory"),
        (lambda p: p, "holds no verdicts.jsonl, nor do its subdirectories"),
        (lambda p: write_trial(p / "t", []), "holds no verdicts: the run stopped"),
        (
            lambda p: (
                (write_trial(p / "t", []) / VERDICTS_FILE).write_text('{"figure": 1}\n\n')
                and p / "t"
            ),
            "line 1 is not a verdict (field 'figure'",
        ),
        (lambda p: write_trial(p / "t", [verdict("", 1.0)]), "Nothing to calibrate"),
    ],
)
def test_a_bad_results_dir_is_one_paragraph(tmp_path, capsys, make, expected):
    path = make(tmp_path)
    assert main(["calibrate", "--from", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert err.startswith("k8sai: error: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--margin", "11"], "--margin: Input should be less than or equal to 10"),
        (["--trials", "0"], "--trials: Input should be greater than or equal to 1"),
        (["--keys", "p99,nope"], "--keys: Value error, p99, nope not slo fields"),
    ],
)
def test_invalid_options_are_one_paragraph(tmp_path, capsys, argv, expected):
    assert main(["calibrate", "--from", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and err.count("\n") == 1


CHILD = textwrap.dedent(
    """
    import sys, pathlib
    from pytest_k8sai.core.verdicts import Verdict
    d = pathlib.Path(sys.argv[1]); d.mkdir(parents=True, exist_ok=True)
    k = int(d.name.split("-")[1])
    v = Verdict(figure="p99", measured=10.0 * k, unit="ms", threshold=25.0, op="<=", n=5,
                source="child", passed=10 * k <= 25, key="kueue_admission_attempt_p99_ms")
    (d / "verdicts.jsonl").write_text(v.model_dump_json() + "\\n")
    print("trial", k, "done")
    sys.exit(0 if 10 * k <= 25 else 1)
    """
)


def test_trials_run_one_after_another(tmp_path, capfd):
    opts = cal.Options(trials=3)
    out = tmp_path / "cal"
    dirs = cal.run_trials(opts, out, command=lambda d: [sys.executable, "-c", CHILD, str(d)])
    assert dirs == [out / f"trial-{k}" for k in (1, 2, 3)]
    assert "trial 2 done" in (out / "trial-2.log").read_text()
    err = capfd.readouterr().err
    assert "trial 3/3 done" in err and "exit 1 (some tests failed" in err
    rows = cal.calibrate([cal.read_verdicts(d) for d in dirs], [P99], 0.25).rows
    assert rows[0].per_trial == [10.0, 20.0, 30.0]
    with pytest.raises(cal.CalibrationError, match="already holds trial-1, trial-2, trial-3"):
        cal.run_trials(opts, out, command=lambda d: [sys.executable, "-c", CHILD, str(d)])


def test_a_trial_that_cannot_run_is_one_paragraph(tmp_path):
    script = "print('ERROR: profile nope not found'); raise SystemExit(4)"
    with pytest.raises(cal.CalibrationError) as err:
        cal.run_trials(
            cal.Options(trials=2), tmp_path, command=lambda d: [sys.executable, "-c", script]
        )
    text = str(err.value)
    assert "Trial 1" in text and "exited 4 (usage, profile or results-directory error)" in text
    assert "last line: 'ERROR: profile nope not found'" in text and "trial-1.log" in text


def test_ctrl_c_sends_the_child_one_sigint_and_waits(tmp_path):
    marker = tmp_path / "stopped"
    script = textwrap.dedent(
        f"""
        import signal, sys, time, pathlib
        def stop(*_):
            pathlib.Path({str(marker)!r}).write_text("tore down")
            sys.exit(2)
        signal.signal(signal.SIGINT, stop)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    cal.stop_child(proc, wait_s=20)
    proc.stdout.close()
    assert proc.returncode == 2 and marker.read_text() == "tore down"
