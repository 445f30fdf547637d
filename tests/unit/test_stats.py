"""Statistics helpers: numpy-compatible percentiles, sample std, Student-t intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_k8sai.measure import stats

# Two-sided 95 % and 99 % critical values from published t tables (9 decimals).
T975 = {
    1: 12.706204736,
    2: 4.302652730,
    3: 3.182446305,
    5: 2.570581836,
    10: 2.228138852,
    20: 2.085963447,
    30: 2.042272456,
    60: 2.000297822,
    100: 1.983971519,
    120: 1.979930405,
}
T995 = {1: 63.656741163, 10: 3.169272673, 100: 2.625890521}


@pytest.mark.parametrize("df", sorted(T975))
def test_t_critical_95_matches_tables(df):
    assert stats.t_critical(df) == pytest.approx(T975[df], abs=2e-9)


@pytest.mark.parametrize("df", sorted(T995))
def test_t_critical_99_matches_tables(df):
    assert stats.t_critical(df, 0.99) == pytest.approx(T995[df], abs=2e-9)


def test_t_critical_tends_to_the_normal_quantile():
    assert stats.t_critical(10**6) == pytest.approx(1.959963985, abs=1e-5)


def test_t_critical_rejects_bad_input():
    with pytest.raises(ValueError):
        stats.t_critical(0)
    with pytest.raises(ValueError):
        stats.t_critical(5, 1.0)


def test_percentile_is_numpy_linear():
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    for q in (0, 5, 25, 50, 90, 95, 99, 100):
        assert stats.percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert stats.percentile([10.0, 20.0], 95) == pytest.approx(19.5)
    assert stats.median([1.0, 2.0, 3.0, 4.0]) == 2.5
    with pytest.raises(ValueError):
        stats.percentile(values, 101)


def test_mean_std_and_ci():
    values = [1.0, 2.0, 3.0, 4.0]
    assert stats.mean(values) == 2.5
    assert stats.std(values) == pytest.approx(math.sqrt(5 / 3))
    ci = stats.mean_ci(values)
    assert ci.n == 4 and ci.mean == 2.5
    assert ci.half_width == pytest.approx(3.182446305 * math.sqrt(5 / 3) / 2)
    assert ci.low == pytest.approx(2.5 - ci.half_width) and ci.high > ci.mean


def test_empty_and_single_inputs_are_nan():
    for fn in (stats.mean, stats.median, stats.std, lambda v: stats.percentile(v, 95)):
        assert math.isnan(fn([]))
    assert math.isnan(stats.std([1.0]))
    ci = stats.mean_ci([])
    assert math.isnan(ci.mean) and math.isnan(ci.half_width) and ci.n == 0
    one = stats.mean_ci([7.0])
    assert one.mean == 7.0 and math.isnan(one.half_width)
