"""Small, dependency-light statistics for latency samples.

Every function takes any sequence of floats and returns NaN when the input is too short to
say anything (empty, or a single value where a spread is asked for), so a suite can compute a
summary of a run that produced nothing and fail on the NaN with a clear message.

- ``percentile``: numpy's default ``method="linear"`` (Hyndman & Fan type 7): the q-th
  percentile of n sorted values is interpolated at rank ``(n - 1) * q / 100``. This is what
  numpy, pandas and Excel's PERCENTILE.INC report, so figures compare one to one.
- ``std``: the sample standard deviation (``ddof=1``); NaN below two values.
- ``mean_ci``: the mean with a Student-t confidence interval, ``mean ± t * s / sqrt(n)``.
  The t critical value is computed here, without scipy: for df <= 200 exactly, by bisection on
  the closed-form finite series of the t distribution for integer df (Abramowitz & Stegun
  26.7.3-4); above that by the Cornish-Fisher expansion around the normal quantile (A&S
  26.7.5, four terms; error below 1e-9 for confidence up to 0.999). Checked against the
  published t tables to all nine of their decimals (tests/test_stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

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


# Exact series up to this many degrees of freedom; the expansion is accurate beyond it.
_EXACT_DF_MAX = 200


def t_critical(df: int, confidence: float = 0.95) -> float:
    """Two-sided Student-t critical value: P(|T_df| <= t) = confidence."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    if df > _EXACT_DF_MAX:
        return _cornish_fisher(df, 0.5 + confidence / 2)
    lo, hi = 0.0, 1.0
    while _coverage(hi, df) < confidence:
        lo, hi = hi, hi * 2
    # The coverage is monotone in t; 200 halvings reach float resolution well before the end.
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if _coverage(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
    return hi


def _coverage(t: float, df: int) -> float:
    """A(t|df) = P(|T| <= t) for integer df, as a finite sum (A&S 26.7.3 and 26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    c2 = c * c
    if df % 2 == 0:
        term = total = 1.0
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * c2
            total += term
        return s * total
    if df == 1:
        return 2 * theta / math.pi
    term = total = 1.0
    for k in range(1, (df - 1) // 2):
        term *= (2 * k) / (2 * k + 1) * c2
        total += term
    return 2 / math.pi * (theta + s * c * total)


def _cornish_fisher(df: int, p: float) -> float:
    """Quantile p of t_df from the normal quantile (Abramowitz & Stegun 26.7.5)."""
    z = NormalDist().inv_cdf(p)
    z3, z5, z7, z9 = z**3, z**5, z**7, z**9
    return (
        z
        + (z3 + z) / (4 * df)
        + (5 * z5 + 16 * z3 + 3 * z) / (96 * df**2)
        + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df**3)
        + (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * df**4)
    )


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
    both = np.concatenate([a, b])
    n = n1 + n2
    # Average ranks (1-based) for ties: each distinct value gets the mean of its positions.
    values, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0
    ranks = avg_rank[inverse]
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2)
    mu = n1 * n2 / 2
    tie = float((counts**3 - counts).sum())
    var = n1 * n2 / 12 * ((n + 1) - tie / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return MannWhitney(u, 0.0, 1.0)  # every value equal: no evidence of a shift
    z = (u - mu - math.copysign(0.5, u - mu) if u != mu else 0.0) / math.sqrt(var)
    p = min(1.0, 2 * (1 - NormalDist().cdf(abs(z))))
    return MannWhitney(u, z, p)
