"""The cost-growth table and plot: figures that grow with known exponents get the right
verdict, missing or zero figures are not fitted, several runs per size give their median, bad
files name the file and field, the PNG and Markdown are written, and `k8sai scale growth` runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.image import imread

from pytest_k8sai import cli
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.scale import growth_report
from pytest_k8sai.scale.growth_report import growth_table, load_results, write_report
from pytest_k8sai.scale.record import ClassFigures, RateFigures
from pytest_k8sai.scale.results import (
    AttemptFigures,
    HarnessFigures,
    NodeResult,
    ProcResult,
    ScaleResult,
    SubmitFigures,
    write,
)

DATA = Path(__file__).resolve().parents[2] / "docs/measurements/data/scale-2026-12-07"
SIZES = (1_000, 5_000, 15_000)
NODES = {1_000: 100, 5_000: 500, 15_000: 1_000}


def _class(name: str, size: int) -> ClassFigures:
    return ClassFigures(
        class_name=name,
        planned=size,
        submitted=size,
        admitted=size,
        finished=size,
        evictions=0,
        avg_to_admission_ms=10.0,
        p50_to_admission_ms=20.0,  # the same at every size: flat
        p99_to_admission_ms=1e-3 * size**2,  # b = 2
        max_to_admission_ms=None,
        avg_to_quota_reserved_ms=None,
    )


def result(size: int, *, run: str = "a", factor: float = 1.0, **changes: object) -> ScaleResult:
    """A made-up run at ``size`` workloads; ``factor`` scales the linear figures."""
    r = ScaleResult(
        scenario=f"growth-{size}",
        run_id=f"scale-{size}-{run}",
        provider="local",
        started_utc="2026-12-08T00:00:00Z",
        budget_s=900.0,
        complete=True,
        plan={"workloads": size},
        nodes=NodeResult(
            requested=NODES[size], created=NODES[size], ready=NODES[size], create_s=1.0, ready_s=2.0
        ),
        submit=SubmitFigures(
            qps=100.0,
            burst=100,
            planned=size,
            sent=size,
            complete=True,
            wall_s=100.0,
            submissions_per_s=10.0,
            lag_p50_ms=1.0,
            lag_p99_ms=5.0,
            lag_max_ms=9.0,
            cpu_busy_share=0.01,
        ),
        classes=[_class("small", size), _class("large", size)],
        rates=RateFigures(admissions=size, peak_per_s=40, sustained_per_s=0.01 * size**0.5),
        attempts=AttemptFigures(exact_n=size, exact_p50_ms=3.0, exact_p99_ms=0.002 * size),
        wall_s=0.02 * size * factor,
        max_pending=0,  # 0 at every size: cannot go on a log scale
        processes=[
            ProcResult(name=n, pid=1, cpu_s=k * size * factor, peak_rss_mib=50 * size**0.3)
            for n, k in (("kube-apiserver", 0.05), ("etcd", 0.01), ("kueue", 2e-3))
        ],
        harness=HarnessFigures(cpu_s=1.0, cpu_share=0.02, watch_events=size, watch_lag_p99_ms=1.0),
    )
    return r.model_copy(update=changes)


def three_sizes() -> list[ScaleResult]:
    return [result(s) for s in SIZES]


def rows(table: str) -> dict[str, list[str]]:
    """figure name -> its cells (one per size, then the verdict)."""
    out = {}
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| figure"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            out[cells[0]] = cells[1:]
    return out


def test_known_exponents_get_their_verdicts():
    table = growth_table(three_sizes())
    header = table.splitlines()[0]
    assert "1,000 wl / 100 nodes" in header and "15,000 wl / 1,000 nodes" in header
    r = rows(table)
    assert r["wall time"] == [
        "20 s",
        "100 s",
        "300 s",
        "grows ~linearly (b=1.00 +/- 0.00), R^2 1.00",
    ]
    assert r["kube-apiserver CPU"][-1].startswith("grows ~linearly (b=1.00")
    assert r["kueue CPU"][:3] == ["2 s", "10 s", "30 s"]
    assert r["TTA P99 small"][-1] == "super-linear (b=2.00 +/- 0.00), R^2 1.00"
    assert r["TTA P99 large"][:3] == ["1,000 ms", "25,000 ms", "225,000 ms"]
    assert r["admissions/s sustained"][-1].startswith("sub-linear (b=0.50")
    assert r["etcd peak RSS"][-1].startswith("sub-linear (b=0.30")
    assert r["admission attempt P99"][-1].startswith("grows ~linearly (b=1.00")
    # the same value at every size: exponent 0, and no nan from the degenerate fit
    assert r["TTA P50 small"][-1] == "flat (b=0.00 +/- 0.00)"
    assert r["admissions/s peak"][:3] == ["40 /s"] * 3
    assert r["harness CPU share"][0] == "2 %"
    assert r["runs"][:3] == ["1", "1", "1"]
    assert "nan" not in table


def test_missing_and_zero_figures_are_not_fitted():
    results = three_sizes()
    # no attempts at the middle size (an older result), no create-call figures anywhere
    results[1] = results[1].model_copy(update={"attempts": None})
    r = rows(growth_table(results))
    assert r["admission attempt P99"] == [
        "2 ms",
        "-",
        "30 ms",
        "not fitted: 2 size(s) have it, 3 needed",
    ]
    assert r["create call P99"][-1] == "not fitted: no size has it, 3 needed"
    assert r["max pending depth"][-1].startswith("not fitted: 0 at 1,000 wl, 5,000 wl, 15,000 wl")
    assert r["kube-apiserver CPU"][-1].startswith("grows ~linearly")  # the rest still fits


def test_classes_only_when_every_size_has_them():
    results = three_sizes()
    results[2] = results[2].model_copy(update={"classes": results[2].classes[:1]})
    r = rows(growth_table(results))
    assert "TTA P99 small" in r and "TTA P99 large" not in r


def test_several_runs_per_size_use_the_median_and_stopped_runs_are_marked():
    results = [
        result(1_000),
        result(5_000, run="a", factor=1.0),
        result(5_000, run="b", factor=1.2),
        result(5_000, run="c", factor=3.0),  # an outlier the median ignores
        result(15_000, complete=False, stopped="budget ended during drain"),
    ]
    table = growth_table(results)
    r = rows(table)
    assert r["runs"][:3] == ["1", "3", "1 (1 stopped)"]
    assert r["wall time"][1] == "120 s"  # median of 100, 120, 300
    assert "scale-15000-a (growth-15000) stopped: budget ended during drain" in table


def test_two_scenarios_at_one_size_are_refused():
    other = result(5_000).model_copy(update={"scenario": "scale-kueue-perf"})
    with pytest.raises(K8saiError, match=r"5,000 workloads.*growth-5000, scale-kueue-perf"):
        growth_table([*three_sizes(), other])


def _files(tmp_path: Path, results: list[ScaleResult]) -> list[Path]:
    return [write(r, tmp_path / f"{r.run_id}.json") for r in results]


def test_load_results_round_trips_and_reads_older_results(tmp_path):
    paths = _files(tmp_path, three_sizes())
    assert load_results(paths) == three_sizes()
    # results written before the attempt figures existed still load
    old = load_results([DATA / "scale-tiny/scale-tiny.json", DATA / "scale-small/scale-small.json"])
    assert [growth_report.size_of(r) for r in old] == [100, 1_000]
    assert all(r.attempts is None for r in old)


def test_bad_files_name_the_file_and_field(tmp_path):
    missing = tmp_path / "gone.json"
    with pytest.raises(K8saiError, match=r"gone\.json: cannot read it"):
        load_results([missing])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(K8saiError, match=r"broken\.json: Invalid JSON"):
        load_results([broken])
    wrong = tmp_path / "wrong.json"
    data = json.loads(result(1_000).model_dump_json())
    data["nodes"]["ready_s"] = "soon"
    wrong.write_text(json.dumps(data))
    with pytest.raises(K8saiError, match=r"wrong\.json is not a scale run's result: field "
                       r"nodes\.ready_s: Input should be a valid number") as err:  # fmt: skip
        load_results([wrong])
    assert "\n" not in str(err.value)  # one paragraph
    sizeless = tmp_path / "sizeless.json"
    sizeless.write_text(result(1_000).model_copy(update={"plan": {}}).model_dump_json())
    with pytest.raises(K8saiError, match=r"sizeless\.json: field plan\.workloads of run "
                       r"scale-1000-a \(growth-1000\) is null"):  # fmt: skip
        load_results([sizeless])


def test_write_report_writes_the_table_and_a_png(tmp_path):
    results = three_sizes()
    sources = _files(tmp_path / "in", results)
    md, png = write_report(results, tmp_path / "out", sources)
    assert (md, png) == (tmp_path / "out/growth.md", tmp_path / "out/growth.png")
    text = md.read_text()
    assert text.startswith("# Scale tier: cost growth")
    assert f"- `{sources[0]}`: growth-1000, run scale-1000-a, started 2026-12-08T00:00:00Z" in text
    assert growth_table(results) in text and "![cost growth](growth.png)" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = imread(png).shape
    # 11 panels (wall time, 2 x TTA P99, sustained rate, attempt P99, 3 x CPU, 3 x RSS): 4 rows
    assert width > 1000 and height > 1200


def test_plot_needs_a_positive_value(tmp_path):
    empty = [
        result(s).model_copy(
            update={"wall_s": None, "classes": [], "rates": None, "attempts": None, "processes": []}
        )
        for s in SIZES
    ]
    with pytest.raises(K8saiError, match="none of the plotted figures"):
        growth_report.growth_plot(empty, tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def test_cli_scale_growth(tmp_path, capsys):
    paths = _files(tmp_path, three_sizes())
    out = tmp_path / "growth"
    assert cli.main(["scale", "growth", *map(str, paths), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| wall time | 20 s | 100 s | 300 s | grows ~linearly (b=1.00" in printed
    assert f"written: {out / 'growth.md'}, {out / 'growth.png'}" in printed
    assert (out / "growth.md").stat().st_size > 0 and (out / "growth.png").stat().st_size > 0


def test_cli_scale_growth_bad_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert cli.main(["scale", "growth", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"k8sai: error: Scale result {bad} is not a scale run's result")
    assert "Traceback" not in err and not (tmp_path / "o").exists()
