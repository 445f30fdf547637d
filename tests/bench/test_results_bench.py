"""What writing results costs: one results.json rewrite with a Kueue-sized run in it (5 setups,
about 40 figures, 2,000 raw admission attempts per setup), and one comparison of a 500-sample
figure. pytest-benchmark times them (``--benchmark-autosave`` / ``--benchmark-compare`` track
them across commits); the assertions check the content, never a time."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_k8sai.core.profiles import Regression
from pytest_k8sai.report.baseline import read_results
from pytest_k8sai.report.compare import compare_figure
from pytest_k8sai.report.results import Environment, Figure, Results, ResultsWriter

pytest.importorskip("pytest_benchmark")


def figure(i: int, n: int, rng: np.random.Generator, scale: float = 1.0) -> Figure:
    samples = list(scale * rng.lognormal(0.0, 0.5, n))
    return Figure(
        figure=f"figure {i}",
        measured=float(np.median(samples)),
        unit="ms",
        threshold=25.0,
        op="<=",
        verdict="PASS",
        n=n,
        source="generated",
        samples=samples,
    )


@pytest.fixture(scope="module")
def kueue_sized() -> Results:
    rng = np.random.default_rng(0)
    env = Environment(profile="local", provider="local", time_compression=60, profile_data={})
    figs = [figure(i, 2000 if i % 8 == 0 else 32, rng) for i in range(40)]
    return Results(run_id="bench", started_at="2026-11-27T00:00:00Z", environment=env, figures=figs)


@pytest.mark.benchmark(group="results")
def test_rewrite_results_file(benchmark, kueue_sized, tmp_path):
    writer = ResultsWriter(tmp_path / "results.json", kueue_sized)
    benchmark.pedantic(writer.write, rounds=10, iterations=1)
    back = read_results(tmp_path / "results.json")
    assert len(back.figures) == 40 and len(back.figures[0].samples) == 2000
    benchmark.extra_info["bytes"] = (tmp_path / "results.json").stat().st_size


@pytest.mark.benchmark(group="results")
def test_compare_one_figure(benchmark):
    rng = np.random.default_rng(1)
    base, cur = figure(0, 500, rng), figure(0, 500, rng, scale=1.3)
    change = benchmark.pedantic(
        compare_figure, args=(cur, [base], Regression()), rounds=5, iterations=1
    )
    assert change.verdict == "REGRESSION"
