"""The baseline comparison: a planted regression is flagged, two runs of one configuration are
not, a change within the run-to-run spread is not flagged once runs are resampled before
samples, and broken baselines are named. Samples are generated with fixed seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_k8sai.core.profiles import Regression
from pytest_k8sai.measure.stats import mann_whitney_u
from pytest_k8sai.report.baseline import BaselineError, load_baseline, read_results
from pytest_k8sai.report.compare import (
    Comparer,
    _masked_statistic,
    _resampled_runs,
    bootstrap_diff_ci,
    compare_figure,
    hierarchical_diff_ci,
    runs_of,
    statistic,
)
from pytest_k8sai.report.results import Environment, Figure, Results, dump

POLICY = Regression()  # the profile defaults: tolerance 10 %, alpha 0.05, >= 10 samples


def latencies(seed: int, n: int = 30, median: float = 9.0, sigma: float = 0.15) -> list[float]:
    """Log-normal latencies (ms): right-skewed like admission or TTFT samples; sigma 0.15 is
    a coefficient of variation of about 15 %."""
    rng = np.random.default_rng(seed)
    return list(median * np.exp(rng.normal(0.0, sigma, n)))


def fig(samples, *, name="admission P50", op="<=", statistic=None, measured=None) -> Figure:
    return Figure(
        figure=name,
        measured=float(np.median(samples)) if measured is None else measured,
        unit="ms",
        threshold=None,
        op=op,
        verdict="INFO",
        n=len(samples),
        source="generated",
        statistic=statistic,
        samples=list(samples),
    )


def test_planted_20_percent_regression_is_flagged():
    base = fig(latencies(1))
    cur = fig([x * 1.2 for x in latencies(2)])
    change = compare_figure(cur, [base], POLICY)
    assert change.verdict == "REGRESSION", change
    assert change.change_pct == pytest.approx(20, abs=8)
    lo, hi = change.diff_ci
    assert 0 < lo < hi
    assert change.p_value < 0.05
    assert change.baseline_n == change.current_n == 30


def test_two_runs_of_the_same_configuration_are_not_flagged():
    change = compare_figure(fig(latencies(3)), [fig(latencies(4))], POLICY)
    assert change.verdict == "SAME", change
    lo, hi = change.diff_ci
    assert lo < 0 < hi


def test_rates_over_many_seeded_pairs():
    """Power and false-alarm rate of the rule at n = 30, CV ~15 %: >= 90 % of planted 20 %
    regressions flagged, <= 5 % of same-configuration pairs flagged (either way)."""
    flagged_planted = flagged_same = 0
    pairs = 200
    for i in range(pairs):
        base = fig(latencies(1000 + i))
        planted = fig([x * 1.2 for x in latencies(5000 + i)])
        same = fig(latencies(9000 + i))
        flagged_planted += compare_figure(planted, [base], POLICY).verdict == "REGRESSION"
        flagged_same += compare_figure(same, [base], POLICY).verdict != "SAME"
    assert flagged_planted / pairs >= 0.90, flagged_planted
    assert flagged_same / pairs <= 0.05, flagged_same


def test_higher_is_better_figures_regress_downwards():
    base = fig(latencies(5), op=">=", name="throughput")
    worse = fig([x * 0.8 for x in latencies(6)], op=">=", name="throughput")
    better = fig([x * 1.25 for x in latencies(7)], op=">=", name="throughput")
    assert compare_figure(worse, [base], POLICY).verdict == "REGRESSION"
    assert compare_figure(better, [base], POLICY).verdict == "IMPROVEMENT"


def test_significant_but_within_tolerance_is_same():
    base = fig(latencies(8, n=3000))
    cur = fig([x * 1.05 for x in latencies(9, n=3000)])
    change = compare_figure(cur, [base], POLICY)
    assert change.verdict == "SAME"
    assert change.diff_ci[0] > 0  # real, but 5 % < 10 % tolerance
    assert "within tolerance" in change.why


def test_the_figures_own_statistic_is_compared():
    # Same median, tail three times longer: a P99 figure regresses, a median one does not.
    rng = np.random.default_rng(10)
    body = list(rng.normal(1.0, 0.05, 970))
    base = body + list(rng.normal(5.0, 0.3, 30))
    cur = body + list(rng.normal(15.0, 0.9, 30))
    p99 = compare_figure(fig(cur, statistic="p99"), [fig(base, statistic="p99")], POLICY)
    assert p99.verdict == "REGRESSION"
    assert compare_figure(fig(cur), [fig(base)], POLICY).verdict == "SAME"


def test_too_few_samples_are_shown_not_judged():
    change = compare_figure(fig([12.0]), [fig([10.0])], POLICY)
    assert change.verdict == "UNTESTED"
    assert change.change_pct == pytest.approx(20)
    assert "min_samples" in change.why


def test_baseline_runs_are_resampled_as_runs():
    runs = [fig(latencies(s)) for s in (11, 12, 13)]
    change = compare_figure(fig(latencies(14)), runs, POLICY)
    assert change.baseline_n == 90 and change.verdict == "SAME"
    assert "runs: baseline 3, tonight 1" in change.why and "hierarchical" in change.test


def run_levels(levels, seed, n=40, median=9.0, sigma=0.10) -> list[list[float]]:
    """One run per level: log-normal samples (CV ~10 %) around ``median x level``."""
    return [
        latencies(seed + i, n=n, median=median * lvl, sigma=sigma) for i, lvl in enumerate(levels)
    ]


def test_a_change_within_the_run_to_run_spread_is_not_flagged():
    """Planted between-run shift. Baseline: 5 nights whose run medians differ by design
    (levels 0.8 .. 1.2 of 9 ms, i.e. 7.2 .. 11.1 ms measured); tonight: one run at 1.15, whose
    median (10.2 ms) lies inside the baseline runs' range. Pooling the 200 baseline samples as
    independent gives a narrow interval and flags a 13 % REGRESSION; resampling runs first
    widens the interval to cover 0, so the rule says SAME.

    Seeded figures (2,000 resamples): pooled CI [+0.69, +1.87] ms, hierarchical
    [-0.30, +2.75] ms."""
    base_runs = run_levels([0.80, 0.90, 1.00, 1.10, 1.20], seed=100)
    tonight = run_levels([1.15], seed=200)[0]
    run_medians = [float(np.median(r)) for r in base_runs]
    assert min(run_medians) < float(np.median(tonight)) < max(run_medians)

    pooled = compare_figure(fig(tonight), [fig([x for r in base_runs for x in r])], POLICY)
    hier = compare_figure(fig(tonight), [fig(r) for r in base_runs], POLICY)
    print(
        f"\npooled:       {pooled.verdict:10} change {pooled.change_pct:+.1f} % "
        f"CI [{pooled.diff_ci[0]:+.2f}, {pooled.diff_ci[1]:+.2f}] ms"
        f"\nhierarchical: {hier.verdict:10} change {hier.change_pct:+.1f} % "
        f"CI [{hier.diff_ci[0]:+.2f}, {hier.diff_ci[1]:+.2f}] ms"
    )
    assert pooled.verdict == "REGRESSION", pooled  # the old rule's false alarm
    assert hier.verdict == "SAME", hier
    assert hier.change_pct == pytest.approx(pooled.change_pct)  # same point estimate
    pooled_width = pooled.diff_ci[1] - pooled.diff_ci[0]
    hier_width = hier.diff_ci[1] - hier.diff_ci[0]
    assert hier_width > 2 * pooled_width
    assert hier.diff_ci[0] < 0 < hier.diff_ci[1]
    assert pooled.diff_ci == pytest.approx((0.685, 1.875), abs=0.01)
    assert hier.diff_ci == pytest.approx((-0.299, 2.745), abs=0.01)


def test_a_shift_beyond_the_run_to_run_spread_is_still_flagged():
    base_runs = run_levels([0.95, 0.98, 1.00, 1.02, 1.05], seed=300)
    hier = compare_figure(fig(run_levels([1.3], seed=400)[0]), [fig(r) for r in base_runs], POLICY)
    assert hier.verdict == "REGRESSION", hier


def test_run_groups_inside_one_results_file_are_runs():
    """``sample_runs`` splits one figure's samples into runs, on either side; a grouping that
    does not add up to the samples is named and ignored."""
    base_runs = run_levels([0.80, 0.90, 1.00, 1.10, 1.20], seed=100)
    flat = [x for r in base_runs for x in r]
    grouped = fig(flat).model_copy(update={"sample_runs": [len(r) for r in base_runs]})
    runs, note = runs_of(grouped)
    assert [r.size for r in runs] == [40] * 5 and not note
    tonight = fig(run_levels([1.15], seed=200)[0])
    one_file = compare_figure(tonight, [grouped], POLICY)
    five_files = compare_figure(tonight, [fig(r) for r in base_runs], POLICY)
    assert one_file.diff_ci == five_files.diff_ci and one_file.verdict == "SAME"

    bad = fig(flat).model_copy(update={"sample_runs": [40, 40]})
    runs, note = runs_of(bad)
    assert len(runs) == 1 and "do not split its 200 samples" in note
    assert "do not split" in compare_figure(tonight, [bad], POLICY).why


def test_one_run_per_side_is_the_plain_bootstrap():
    """With one run on each side the first stage is trivial: the same draws and interval as
    the plain (pooled) bootstrap, so one-run comparisons keep their numbers."""
    a, b = latencies(20), latencies(21)
    assert hierarchical_diff_ci([a], [b], seed=5) == bootstrap_diff_ci(a, b, seed=5)


@pytest.mark.parametrize("name", ["median", "p90", "p99", "mean", "min", "max"])
def test_runs_of_different_sizes(name):
    """Rows padded to the longest run are masked: each statistic equals numpy's over the
    drawn samples alone; and a two-stage resample of unequal runs is seeded."""
    rng = np.random.default_rng(30)
    values = rng.normal(size=(40, 25))
    valid = np.arange(25) < rng.integers(1, 26, size=(40, 1))
    expected = [float(statistic(row[keep], name)) for row, keep in zip(values, valid, strict=True)]
    assert _masked_statistic(values, valid, name) == pytest.approx(expected)
    runs = [rng.normal(size=k) for k in (5, 30, 12)]
    one = _resampled_runs(runs, name, 300, np.random.default_rng(1))
    assert np.array_equal(one, _resampled_runs(runs, name, 300, np.random.default_rng(1)))
    assert one.shape == (300,) and np.isfinite(one).all()


def test_between_run_spread_false_alarms_over_seeded_nights():
    """Nights whose level varies run to run (log-normal, sigma 0.10 between runs, 0.15 within,
    30 samples per run), no change planted; baseline: 5 nights. False alarms (verdict not SAME)
    over 100 seeded cases, pooled rule vs hierarchical rule, tonight one run and tonight three
    runs (``sample_runs``). Measured: tonight 1 run: pooled 31, hierarchical 28; tonight 3
    runs: pooled 21, hierarchical 16. The hierarchical rule is never worse, but with one run
    tonight its interval cannot hold tonight's own run-to-run spread (see docs/results.md)."""

    def night(rng, runs):
        out = []
        for _ in range(runs):
            level = np.exp(rng.normal(0.0, 0.10))
            out.append(list(9.0 * level * np.exp(rng.normal(0.0, 0.15, 30))))
        return out

    def as_fig(runs, grouped):
        flat = [x for r in runs for x in r]
        return fig(flat).model_copy(update={"sample_runs": [30] * len(runs) if grouped else None})

    alarms = {}
    for tonight_runs in (1, 3):
        pooled = hier = 0
        for i in range(100):
            rng = np.random.default_rng(i)
            base, cur = night(rng, 5), night(rng, tonight_runs)
            pooled += (
                compare_figure(as_fig(cur, False), [as_fig(base, False)], POLICY).verdict != "SAME"
            )
            hier += (
                compare_figure(as_fig(cur, True), [as_fig(base, True)], POLICY).verdict != "SAME"
            )
        alarms[tonight_runs] = (pooled, hier)
    print(f"\nfalse alarms /100 (pooled, hierarchical): {alarms}")
    assert all(hier <= pooled for pooled, hier in alarms.values()), alarms
    assert alarms[3][1] < alarms[1][0]


def test_bootstrap_is_reproducible_and_chunked():
    a, b = latencies(15, n=5000), latencies(16, n=5000)
    assert bootstrap_diff_ci(a, b, seed=3, resamples=1000) == bootstrap_diff_ci(
        a, b, seed=3, resamples=1000
    )
    assert statistic(np.array([1.0, 2.0, 3.0, 4.0]), "p99") == pytest.approx(3.97)


def test_mann_whitney_matches_a_hand_computed_case():
    # x = 1,2,3 vs y = 4,5,6: U = 0, mu = 4.5, var = 9*7/12 = 5.25, z = -(4.5-0.5)/sqrt(5.25)
    r = mann_whitney_u([1, 2, 3], [4, 5, 6])
    assert r.u == 0 and r.z == pytest.approx(-4 / 5.25**0.5)
    assert r.p_value == pytest.approx(0.0809, abs=1e-4)
    assert mann_whitney_u([2, 2, 2], [2, 2]).p_value == 1.0


def test_mann_whitney_corrects_for_ties():
    # x = 1,2,2,3 vs y = 2,3,3,4: average ranks 1, 3, 3, 6 -> U = 13 - 10 = 3, mu = 8; ties
    # 2,2,2 and 3,3,3 give var = 16/12 * (9 - 2*(27-3)/(8*7)); z = (3 - 8 + 0.5) / sqrt(var)
    r = mann_whitney_u([1, 2, 2, 3], [2, 3, 3, 4])
    var = 16 / 12 * (9 - 48 / 56)
    assert r.u == 3 and r.z == pytest.approx(-4.5 / var**0.5)
    assert r.p_value == pytest.approx(0.172034, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mann_whitney_is_symmetric_and_sees_a_shift(seed):
    # What the regression rule relies on: the two-sided p does not depend on which side is the
    # baseline, z's sign says which side is larger, and a clear shift gives a small p.
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(0, 1, 37), 1)  # rounded: ties
    y = np.round(rng.normal(1.5, 1, 52), 1)
    xy, yx = mann_whitney_u(x, y), mann_whitney_u(y, x)
    assert xy.p_value == pytest.approx(yx.p_value, rel=1e-12)
    assert xy.z < 0 < yx.z and xy.z == pytest.approx(-yx.z)
    assert xy.p_value < 1e-4
    assert mann_whitney_u(x, x).p_value > 0.9


def results_with(*figures: Figure, run_id: str = "r1") -> Results:
    env = Environment(profile="local", provider="local", time_compression=60, profile_data={})
    return Results(
        run_id=run_id, started_at="2026-11-27T00:00:00Z", environment=env, figures=list(figures)
    )


def test_comparer_lists_new_and_missing(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(dump(results_with(fig(latencies(1)), fig([3.0], name="gone"))))
    comparer = Comparer(load_baseline(path), POLICY)
    comparer.add(fig([x * 1.3 for x in latencies(2)]))
    comparer.add(fig([1.0], name="brand new"))
    comparer.finish()
    verdicts = {c.figure: c.verdict for c in comparer.comparison.changes}
    assert verdicts == {"admission P50": "REGRESSION", "brand new": "NEW", "gone": "MISSING"}
    assert [c.figure for c in comparer.regressions] == ["admission P50"]


def test_invalid_figures_are_neither_baseline_nor_compared(tmp_path):
    # A figure a fault spoiled (INVALID) is no baseline, and tonight's is not judged against one.
    spoiled = fig([x * 3 for x in latencies(1)]).model_copy(
        update={"verdict": "INVALID", "invalid": "Pod watch down 4.0 s"}
    )
    path = tmp_path / "results.json"
    path.write_text(dump(results_with(spoiled, fig(latencies(3), name="kept"))))
    comparer = Comparer(load_baseline(path), POLICY)
    assert comparer.add(fig(latencies(2))).verdict == "NEW"  # no valid baseline for it
    assert comparer.add(spoiled.model_copy(update={"figure": "kept"})) is None
    comparer.finish()
    verdicts = {c.figure: c.verdict for c in comparer.comparison.changes}
    assert verdicts == {"admission P50": "NEW"}


def test_baseline_directory_is_searched(tmp_path):
    for i in range(2):
        d = tmp_path / f"night{i}"
        d.mkdir()
        (d / "results.json").write_text(dump(results_with(fig(latencies(i)), run_id=f"n{i}")))
    b = load_baseline(tmp_path)
    assert [r.run_id for r in b.runs] == ["n0", "n1"] and not b.errors


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"schema": "pytest-k8sai/results", "schema_ver', "is not valid JSON (line 1"),
        ('{"schema": "pytest-k8sai/results", "schema_version": 2}', "schema version 2"),
        ('{"benchmarks": []}', "is not a pytest-k8sai results file"),
        ("[1, 2]", "is not a pytest-k8sai results file"),
        (
            '{"schema": "pytest-k8sai/results", "schema_version": 1, "run_id": 5}',
            "does not match results schema version 1: field 'run_id'",
        ),
    ],
)
def test_unusable_baseline_names_the_file(tmp_path, content, expected):
    path = tmp_path / "old.json"
    path.write_text(content)
    with pytest.raises(BaselineError) as err:
        read_results(path)
    assert str(path) in str(err.value) and expected in str(err.value)
    assert load_baseline(path).errors == [str(err.value)]


def test_missing_or_empty_baseline_paths(tmp_path):
    assert "no such file" in load_baseline(tmp_path / "nope.json").errors[0]
    assert "holds no results.json" in load_baseline(tmp_path).errors[0]


def test_results_round_trip_keeps_nan_and_samples(tmp_path):
    f = fig([1.0, float("nan"), 3.0], measured=float("nan"))
    path = tmp_path / "results.json"
    path.write_text(dump(results_with(f)))
    back = read_results(path).figures[0]
    assert np.isnan(back.measured) and back.samples[0] == 1.0 and np.isnan(back.samples[1])
    assert json.loads(path.read_text())["schema_version"] == 1


def test_comparison_table_fits_100_columns_and_wraps_names():
    from pytest_k8sai.report.summary import comparison_lines

    long_name = "two-cqs-borrowing: admission attempt P99 (exact) over every run of the night"
    changes = [
        compare_figure(
            fig(latencies(1), name=long_name, statistic="p99"),
            [fig(latencies(2), name=long_name, statistic="p99")],
            POLICY,
        ),
        compare_figure(fig([12.0]), [fig([10.0])], POLICY),
    ]
    header, *rows = comparison_lines(changes)
    lines = header + [line for row in rows for line in row]
    assert max(len(line) for line in lines) <= 100
    assert rows[0][0].startswith("two-cqs-borrowing:") and len(rows[0]) > 1
    assert rows[1][0].split()[-1] == "UNTESTED" and "+20.0 %" in rows[1][0]
