"""Plots from generated data: each function writes a readable PNG of the expected size, the
data shapes suites hand over are validated, and the plot log replaces redrawn plots."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from pytest_k8sai.report import plots
from pytest_k8sai.report.plots import LatencyPoint, PlotLog


def png_shape(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(path).shape


def test_makespan_by_setup(tmp_path):
    rng = np.random.default_rng(0)
    data = {
        "Pure Jobs": list(60 + rng.normal(0, 1, 3)),
        "BestEffortFIFO": list(62 + rng.normal(0, 2, 3)),
        "+ Preemption": [51.0],
    }
    out = plots.makespan_by_setup(
        data, tmp_path / "m.png", paper={"Pure Jobs": 60.5, "+ Preemption": 51.1}
    )
    h, w, _ = png_shape(out)
    assert w > h > 300


def test_jct_cdf_whole_gpu_vs_slices(tmp_path):
    rng = np.random.default_rng(1)
    out = plots.jct_cdf(
        {"whole GPU": list(rng.gamma(4, 7, 32)), "MIG slices": list(rng.gamma(4, 4.5, 32))},
        tmp_path / "cdf.png",
    )
    assert png_shape(out)[0] > 300


@pytest.mark.parametrize("log_y", [False, True])
def test_latency_vs_concurrency(tmp_path, log_y):
    rng = np.random.default_rng(2)
    points = [
        LatencyPoint.from_samples(setup, c, list(base * c**0.5 * rng.lognormal(0, 0.3, 50)))
        for setup, base in (("random", 120.0), ("prefix-cache-aware", 25.0))
        for c in (1, 2, 4, 8, 16)
    ]
    out = plots.latency_vs_concurrency(points, tmp_path / "ttft.png", log_y=log_y)
    assert png_shape(out)[1] > 500


def test_latency_point_from_samples():
    p = LatencyPoint.from_samples("gw", 4, [10.0, 12.0, 14.0])
    assert p.value == pytest.approx(12.0) and p.n == 3
    # t(2, 0.975) = 4.302653; s = 2; half width = 4.302653 * 2 / sqrt(3)
    assert p.ci_high - p.value == pytest.approx(4.302653 * 2 / 3**0.5, rel=1e-6)
    assert p.p99 == pytest.approx(13.96)
    one = LatencyPoint.from_samples("gw", 4, [10.0])
    assert one.ci_low is None and one.n == 1


def test_empty_data_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="makespan_by_setup: no series"):
        plots.makespan_by_setup({"a": []}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no points"):
        plots.latency_vs_concurrency([], tmp_path / "x.png")
    with pytest.raises(ValueError):
        LatencyPoint(setup="x", concurrency=0, value=1, n=1)


def test_plot_log_replaces_a_redrawn_plot_and_tells_listeners(tmp_path):
    log = PlotLog(tmp_path / "plots")
    heard = []
    log.listeners.append(heard.append)
    log.render("m.png", plots.makespan_by_setup, {"a": [1.0]}, title="makespan", suite="kueue")
    log.render("m.png", plots.makespan_by_setup, {"a": [1.0, 2.0]}, title="makespan", suite="kueue")
    assert [p.path.name for p in log.plots] == ["m.png"] and len(heard) == 2
    assert log.of_suite("kueue") == log.plots and log.of_suite("das") == []
    assert log.seconds > 0
    assert PlotLog(None).render("m.png", plots.makespan_by_setup, {"a": [1.0]}, title="t") is None
