"""Statistics for latency samples (numpy and scipy underneath).

Every function takes any sequence of floats and returns NaN when the input is too short to
say anything (empty, or a single value where a spread is asked for), so a suite can compute a
summary of a run that produced nothing and fail on the NaN with a clear message.

- ``percentile``: numpy's default ``method="linear"`` (Hyndman & Fan type 7): the q-th
  percentile of n sorted values is interpolated at rank ``(n - 1) * q / 100``. This is what
  numpy, pandas and Excel's PERCENTILE.INC report, so figures compare one to one.
- ``std``: the sample standard deviation (``ddof=1``); NaN below two values.
- ``mean_ci``: the mean with a Student-t confidence interval, ``mean ± t * s / sqrt(n)``,
  t from ``scipy.stats.t.ppf``.
- ``mann_whitney_u``: ``scipy.stats.mannwhitneyu``, two-sided, normal approximation with tie
  and continuity corrections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

Values = Sequence[float] | np.ndarray


def _array(values: Values) -> np.ndarray:
    return np.asarray(values, dtype=float)


def percentile(values: Values, q: float) -> float:
    """The ``q``-th percentile (0..100), linear interpolation; NaN when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {q}")
    arr = _array(values)
    if arr.size == 0:
        return math.nan
    return float(np.percentile(arr, q, method="linear"))


def median(values: Values) -> float:
    return percentile(values, 50)


def mean(values: Values) -> float:
    arr = _array(values)
    return float(arr.mean()) if arr.size else math.nan


def std(values: Values) -> float:
    """Sample standard deviation (ddof=1); NaN with fewer than two values."""
    arr = _array(values)
    return float(arr.std(ddof=1)) if arr.size >= 2 else math.nan


@dataclass(frozen=True)
class MeanCI:
    mean: float
    half_width: float  # t * s / sqrt(n); NaN with fewer than two values
    n: int
    confidence: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def mean_ci(values: Values, confidence: float = 0.95) -> MeanCI:
    """Mean and the half-width of its two-sided Student-t confidence interval."""
    arr = _array(values)
    n = int(arr.size)
    if n == 0:
        return MeanCI(math.nan, math.nan, 0, confidence)
    if n == 1:
        return MeanCI(float(arr[0]), math.nan, 1, confidence)
    half = t_critical(n - 1, confidence) * float(arr.std(ddof=1)) / math.sqrt(n)
    return MeanCI(float(arr.mean()), half, n, confidence)


def t_critical(df: int, confidence: float = 0.95) -> float:
    """Two-sided Student-t critical value: P(|T_df| <= t) = confidence."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    return float(scipy_stats.t.ppf(0.5 + confidence / 2, df))


@dataclass(frozen=True)
class MannWhitney:
    u: float  # U statistic of the first sample
    z: float  # standardised, with tie and continuity corrections
    p_value: float  # two-sided, normal approximation


def mann_whitney_u(x: Values, y: Values) -> MannWhitney:
    """Mann-Whitney U test of x against y, two-sided, by the normal approximation with the tie
    correction and a continuity correction of 0.5 (what scipy.stats.mannwhitneyu reports with
    ``method="asymptotic"``). Good from about 8 values per side; NaN p below one value."""
    a, b = _array(x), _array(y)
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        return MannWhitney(math.nan, math.nan, math.nan)
    if np.all(np.concatenate([a, b]) == a[0]):
        return MannWhitney(n1 * n2 / 2, 0.0, 1.0)  # every value equal: no evidence of a shift
    res = scipy_stats.mannwhitneyu(
        a, b, alternative="two-sided", use_continuity=True, method="asymptotic"
    )
    u, p = float(res.statistic), min(1.0, float(res.pvalue))
    # scipy gives U and p; z is the standard normal deviate with that two-sided p, signed.
    shift = u - n1 * n2 / 2
    z = math.copysign(float(scipy_stats.norm.isf(p / 2)), shift) if shift else 0.0
    return MannWhitney(u, z, p)
