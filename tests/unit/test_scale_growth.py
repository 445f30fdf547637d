"""The growth exponent across sizes and its verdict."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.scale.growth import fit_growth, verdict

SIZES = [100, 1_000, 5_000, 15_000]


def test_exact_power_laws_are_recovered():
    lin = fit_growth({s: 0.3 * s for s in SIZES})
    assert lin.exponent == pytest.approx(1.0) and lin.stderr == pytest.approx(0, abs=1e-9)
    assert lin.verdict.startswith("grows ~linearly (b=1.00")
    sq = fit_growth({s: 2e-4 * s**2 for s in SIZES})
    assert sq.exponent == pytest.approx(2.0)
    assert sq.verdict == "super-linear (b=2.00 +/- 0.00)"
    assert sq.intercept == pytest.approx(np.log(2e-4)) and sq.sizes == 4


def test_noisy_data_gives_the_exponent_within_its_error():
    rng = np.random.default_rng(7)
    pts = {s: 5 * s**1.45 * float(np.exp(rng.normal(0, 0.05))) for s in [*SIZES, 500, 2_000]}
    g = fit_growth(pts, "Kueue CPU seconds")
    assert abs(g.exponent - 1.45) < 3 * g.stderr + 0.02
    assert g.verdict.startswith("super-linear (b=1.4")
    assert 0.99 < g.r_squared <= 1


def test_verdict_bands():
    assert verdict(0.05, 0.02) == "flat (b=0.05 +/- 0.02)"
    assert verdict(0.5, 0.1).startswith("sub-linear")
    assert verdict(0.9, 0.1).startswith("grows ~linearly")
    assert verdict(1.45, 0.1) == "super-linear (b=1.45 +/- 0.10)"
    assert verdict(-0.6, 0.1).startswith("shrinks")
    assert fit_growth({100: 7.0, 1000: 7.1, 10000: 6.95}).verdict.startswith("flat")


def test_too_few_sizes_or_bad_values_are_refused():
    with pytest.raises(K8saiError, match=r"2 size\(s\) \(100, 1000\).*at least 3"):
        fit_growth({100: 1.0, 1000: 2.0}, "wall time")
    with pytest.raises(K8saiError, match=r"finite and > 0.*1000 -> 0"):
        fit_growth({100: 1.0, 1000: 0.0, 5000: 3.0})
    with pytest.raises(K8saiError, match="-5 -> 1"):
        fit_growth({-5: 1.0, 1000: 2.0, 5000: 3.0})
    with pytest.raises(K8saiError, match="nan"):
        fit_growth({100: 1.0, 1000: float("nan"), 5000: 3.0})
