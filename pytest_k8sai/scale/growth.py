"""How a figure grows with cluster size: the exponent b of value ~ size^b, fitted as
log(value) = a + b log(size) by least squares (scipy.stats.linregress), with its standard
error, and a verdict in words for the growth table.

The bands are fixed (not "b within 2 standard errors of 1"), because with three or four sizes
the standard error is wide and would call almost anything linear; the text always carries
b and its error, so a reader sees how sure the fit is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats as scipy_stats

from pytest_k8sai.core.errors import K8saiError

MIN_SIZES = 3  # two points always fit a line exactly: no error, no check of the power law
FLAT_BELOW = 0.15  # |b| below: the figure does not depend on size
LINEAR_WITHIN = 0.15  # |b - 1| within: linear


@dataclass(frozen=True)
class Growth:
    exponent: float  # b
    stderr: float  # standard error of b
    intercept: float  # a (natural log)
    r_squared: float
    sizes: int
    verdict: str  # one line, e.g. "grows ~linearly (b=1.02 +/- 0.05)"


def verdict(b: float, se: float) -> str:
    fit = f"(b={b:.2f} +/- {se:.2f})"
    if abs(b) < FLAT_BELOW:
        return f"flat {fit}"
    if b < 0:
        return f"shrinks {fit}"
    if abs(b - 1) <= LINEAR_WITHIN:
        return f"grows ~linearly {fit}"
    return f"{'sub' if b < 1 else 'super'}-linear {fit}"


def fit_growth(points: Mapping[float, float], what: str = "figure") -> Growth:
    """Fit ``size -> value``; K8saiError with fewer than 3 sizes or a value that is not > 0."""
    bad = {s: v for s, v in points.items() if not (s > 0 and v > 0 and math.isfinite(v))}
    if bad:
        raise K8saiError(
            f"Growth of {what}: sizes and values must be finite and > 0 to fit on a log scale, "
            f"but got {', '.join(f'{s:g} -> {v:g}' for s, v in bad.items())}."
        )
    if len(points) < MIN_SIZES:
        raise K8saiError(
            f"Growth of {what}: measured at {len(points)} size(s) "
            f"({', '.join(f'{s:g}' for s in sorted(points)) or 'none'}); a growth exponent needs "
            f"at least {MIN_SIZES}."
        )
    sizes = sorted(points)
    fit = scipy_stats.linregress([math.log(s) for s in sizes], [math.log(points[s]) for s in sizes])
    b, se = float(fit.slope), float(fit.stderr)
    return Growth(b, se, float(fit.intercept), float(fit.rvalue) ** 2, len(sizes), verdict(b, se))
