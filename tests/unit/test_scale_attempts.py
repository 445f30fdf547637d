"""Admission-attempt figures of a scale run: exact percentiles and the histogram share."""

from __future__ import annotations

import math

import pytest

from pytest_k8sai.measure.prometheus import Histogram
from pytest_k8sai.scale.attempts import attempt_figures


def test_exact_percentiles_in_ms():
    f = attempt_figures([i / 1000 for i in range(1, 101)], None)  # 1..100 ms
    assert f.exact_n == 100
    assert f.exact_p50_ms == pytest.approx(50.5, abs=0.6)
    assert f.exact_p99_ms == pytest.approx(99.0, abs=1.0)
    assert f.exact_max_ms == 100.0
    assert f.hist_n == 0 and f.hist_p99_ms is None


def test_histogram_quantiles_and_buckets():
    h = Histogram("x", ((0.005, 50.0), (0.01, 90.0), (0.025, 100.0), (math.inf, 100.0)), 100, 0.7)
    f = attempt_figures(None, h, ["", "histogram: restarted"])
    assert f.hist_n == 100
    assert f.hist_p50_ms == pytest.approx(5.0)
    assert f.hist_p95_ms == pytest.approx(17.5)  # halfway between 10 and 25 ms
    assert f.hist_buckets[-1] == (None, 100.0)
    assert f.hist_buckets[0] == (5.0, 50.0)
    assert f.exact_n == 0 and f.exact_p50_ms is None
    assert f.invalid == ["histogram: restarted"]  # empty reasons dropped
