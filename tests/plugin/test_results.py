"""The results directory as a user gets it: results.json (schema v1), summary.md, JUnit
properties, --baseline verdicts and faults, Allure output. Inner pytest runs (pytester) that
never touch a cluster; samples are generated with fixed seeds."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections import namedtuple

import matplotlib.figure  # noqa: F401 - see below
import numpy as np
import pytest

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.report.baseline import read_results
from pytest_k8sai.runstate import check_results_dir

pytest_plugins = ["pytester"]
# matplotlib is imported above, in the outer session: pytester's in-process runs drop modules
# first imported inside them, and a second copy of matplotlib breaks its isinstance checks.

SUITE = """
import numpy as np
import pytest

SCALE = float(__import__("os").environ.get("K8SAI_TEST_SCALE", "1.0"))


@pytest.mark.parametrize("setup", ["fifo", "priority"])
def test_latency(setup, slo):
    rng = np.random.default_rng(7 if setup == "fifo" else 8)
    seed = int(__import__("os").environ.get("K8SAI_TEST_SEED", "0"))
    rng = np.random.default_rng(seed * 10 + (setup == "priority"))
    samples = list(9.0 * SCALE * np.exp(rng.normal(0, 0.15, 40)))
    slo.check(f"{setup}: admission P50", float(np.median(samples)), unit="ms", threshold=25,
              op="<=", n=len(samples), source="generated", samples=samples)
    slo.info(f"{setup}: makespan", 60.0 * SCALE, unit="s", n=1,
              source="generated")


def test_plot(k8sai_plots):
    from pytest_k8sai.report import plots
    k8sai_plots.render("makespan.png", plots.makespan_by_setup, {"fifo": [1.0, 1.2]},
                       title="makespan", suite="test_suite")
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_suite=SUITE)

    def _run(*args: str, seed: int = 0, scale: float = 1.0) -> pytest.RunResult:
        monkeypatch.setenv("K8SAI_TEST_SEED", str(seed))
        monkeypatch.setenv("K8SAI_TEST_SCALE", str(scale))
        return pytester.runpytest("-p", "pytest_k8sai.plugin", "-p", "no:cacheprovider", *args)

    return _run


def test_results_dir_holds_results_summary_and_plots(run, pytester):
    result = run("--results-dir=out", "--junitxml=junit.xml")
    result.assert_outcomes(passed=3)
    out = pytester.path / "out"
    res = read_results(out / "results.json")
    assert res.status == "finished" and res.exit_status == 0
    assert res.environment.profile == "local" and res.environment.python
    assert [f.figure for f in res.figures] == [
        "fifo: admission P50",
        "fifo: makespan",
        "priority: admission P50",
        "priority: makespan",
    ]
    first = res.figures[0]
    assert len(first.samples) == 40 and first.setup == "fifo" and first.verdict == "PASS"
    assert first.unit == "ms" and first.threshold == 25 and first.source == "generated"
    assert sorted(t.outcome for t in res.tests) == ["passed"] * 3
    assert [p.file for p in res.plots] == ["plots/makespan.png"]
    assert (out / "plots" / "makespan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res.files == {
        "verdicts": "verdicts.jsonl",
        "summary": "summary.md",
    }
    assert 0 < res.report_overhead_s < res.wall_s
    summary = (out / "summary.md").read_text()
    assert "| fifo: admission P50 |" in summary and "![makespan](plots/makespan.png)" in summary
    result.stdout.fnmatch_lines(
        [
            "k8sai results: *out/results.json",
            "  beside it: verdicts.jsonl, summary.md, plots/makespan.png",
            "  report writing took *",
        ]
    )
    # JUnit XML: every figure of a test is a property of its testcase.
    case = ET.parse(pytester.path / "junit.xml").find(".//testcase[@name='test_latency[fifo]']")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["k8sai: fifo: makespan"] == (
        "measured=60 s; threshold=-; verdict=INFO; n=1; source=generated"
    )
    assert "verdict=PASS; n=40" in props["k8sai: fifo: admission P50"]


def test_results_are_written_as_they_arrive(pytester, monkeypatch):
    """A crash keeps what was measured: the file is complete after each figure."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        test_crash="""
        import json, os
        def test_a(slo):
            slo.info("first", 1.0, unit="ms", n=1, source="x")
            data = json.load(open("out/results.json"))
            assert data["status"] == "running"
            assert [f["figure"] for f in data["figures"]] == ["first"]
            os._exit(9)  # as a kill would: no teardown, no session end
        """
    )
    # In a subprocess: the test ends its interpreter.
    result = pytester.runpytest_subprocess(
        "-p", "pytest_k8sai.plugin", "-p", "no:cacheprovider", "--results-dir=out", "test_crash.py"
    )
    assert result.ret == 9
    res = read_results(pytester.path / "out" / "results.json")
    assert res.status == "running" and [f.figure for f in res.figures] == ["first"]


def test_same_configuration_against_itself_is_same_and_planted_regression_fails(run, pytester):
    assert run("--results-dir=night1", seed=1).ret == 0
    same = run("--results-dir=night2", "--baseline=night1", seed=2)
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*k8sai comparison with the baseline*"])
    res = read_results(pytester.path / "night2" / "results.json")
    verdicts = {c.figure: c.verdict for c in res.comparison.changes}
    assert verdicts == {
        "fifo: admission P50": "SAME",
        "fifo: makespan": "UNTESTED",
        "priority: admission P50": "SAME",
        "priority: makespan": "UNTESTED",
    }
    slow = run("--results-dir=night3", "--baseline=night1/results.json", seed=3, scale=1.2)
    assert slow.ret == 1  # every test passed its SLO; the regression fails the run
    slow.assert_outcomes(passed=3)
    slow.stdout.fnmatch_lines(["fifo: admission P50 (ms)*+*%*REGRESSION", "2 regression(s)*"])
    res = read_results(pytester.path / "night3" / "results.json")
    assert res.exit_status == 1
    assert "REGRESSION" in (pytester.path / "night3" / "summary.md").read_text()


def test_corrupt_or_foreign_baseline_is_named_and_results_still_written(run, pytester):
    bad = pytester.path / "old.json"
    bad.write_text('{"schema": "pytest-k8sai/results", "schema_version": 0}')
    result = run("--results-dir=out", f"--baseline={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes(passed=3)
    text = result.stdout.str()
    assert "Traceback" not in text
    assert f"BASELINE ERROR: Baseline {bad} has results schema version 0" in text
    res = read_results(pytester.path / "out" / "results.json")
    assert len(res.figures) == 4 and res.comparison.errors and res.exit_status == 4


def test_baseline_may_be_the_results_dir_itself(run, pytester):
    run("--results-dir=out", seed=1)
    result = run("--results-dir=out", "--baseline=out/results.json", seed=2)
    assert result.ret == 0
    res = read_results(pytester.path / "out" / "results.json")
    assert res.comparison.baseline_run_ids and res.comparison.baseline_run_ids[0] != res.run_id


def test_allure_labels_attachments_and_environment(run, pytester):
    pytest.importorskip("allure_pytest")
    result = run("-p", "allure_pytest.plugin", "--alluredir=allure", "--results-dir=out")
    result.assert_outcomes(passed=3)
    allure = pytester.path / "allure"
    cases = [json.loads(p.read_text()) for p in allure.glob("*-result.json")]
    fifo = next(c for c in cases if c["name"] == "test_latency[fifo]")
    labels = {(x["name"], x["value"]) for x in fifo["labels"]}
    # A test file at the root is its own suite (under suites/NAME/ the suite is NAME).
    assert ("epic", "test_suite") in labels and ("feature", "fifo") in labels
    names = [a["name"] for a in fifo["attachments"]]
    assert "figures" in names and "raw results (figures with samples)" in names
    csv = next(a for a in fifo["attachments"] if a["name"] == "figures")
    assert "fifo: admission P50" in (allure / csv["source"]).read_text()
    plot = next(c for c in cases if c["name"] == "test_plot")
    assert [a["name"] for a in plot["attachments"] if a["type"] == "image/png"] == ["makespan"]
    env = (allure / "environment.properties").read_text()
    assert "profile=local" in env and "run\\ id=" in env


def test_full_disk_or_unwritable_dir_fails_at_start(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(K8saiError, match=r"--results-dir=.*only 1.0 MiB free.*at least 64 MiB"):
        check_results_dir(tmp_path / "out")


def test_full_disk_is_a_usage_error_before_tests(run, pytester, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 0))
    result = run("--results-dir=out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "only 0.0 MiB free" in result.stderr.str()
    assert not (pytester.path / "out").exists()


def test_results_file_honours_umask_and_leaves_no_temporary_files(tmp_path):
    from pytest_k8sai.report.results import write_atomic

    path = tmp_path / "results.json"
    write_atomic(path, "{}")
    write_atomic(path, "{}")
    assert path.stat().st_mode & 0o044  # readable by others (umask 022), unlike mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_allure_attaches_component_logs_to_a_failed_test(pytester, monkeypatch):
    pytest.importorskip("allure_pytest")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    # Where the cluster fixture copies component logs after a failure (the cluster is gone).
    logs = pytester.path / "out" / "logs"
    logs.mkdir(parents=True)
    (logs / "kueue.log").write_text("line 1\nscheduler: admission failed\n")
    pytester.makepyfile(
        test_fail="""
        def test_ok(slo):
            slo.info("x", 1.0, unit="ms", n=1, source="s")

        def test_bad(slo):
            slo.check("y", 30.0, unit="ms", threshold=25, op="<=", n=1, source="s")
        """
    )
    result = pytester.runpytest(
        "-p",
        "pytest_k8sai.plugin",
        "-p",
        "allure_pytest.plugin",
        "-p",
        "no:cacheprovider",
        "--alluredir=allure",
        "--results-dir=out",
    )
    result.assert_outcomes(passed=1, failed=1)
    allure = pytester.path / "allure"
    cases = {
        c["name"]: c for c in (json.loads(p.read_text()) for p in allure.glob("*-result.json"))
    }
    bad = [a for a in cases["test_bad"]["attachments"] if a["name"].startswith("component log")]
    assert [a["name"] for a in bad] == ["component log kueue.log (tail)"]
    assert "admission failed" in (allure / bad[0]["source"]).read_text()
    ok = [a["name"] for a in cases["test_ok"]["attachments"]]
    assert not [n for n in ok if n.startswith("component log")]


def test_verdicts_stay_backwards_compatible_and_carry_samples(tmp_path):
    from pytest_k8sai.core.verdicts import Verdict, VerdictLog

    old = (
        '{"figure": "f", "measured": 1.0, "unit": "ms", "threshold": null, "op": "<=", "n": 1,'
        ' "source": "s", "passed": true, "nodeid": "", "run_id": ""}'
    )
    v = Verdict.model_validate_json(old)
    assert v.samples is None and v.statistic is None and v.suite == "" and v.setup == ""
    log = VerdictLog(tmp_path / "v.jsonl", run_id="r")
    heard = []
    log.listeners.append(heard.append)
    bound = log.bind("suites/kueue/test_x.py::t[fifo]", suite="kueue", setup="fifo")
    got = bound.check(
        "p99", 3.0, unit="ms", threshold=25, op="<=", n=3, source="s",
        samples=np.array([1.0, 2.0, 3.0]), statistic="max",
    )  # fmt: skip
    assert heard == [got] and got.samples == [1.0, 2.0, 3.0] and got.statistic == "max"
    assert (got.suite, got.setup) == ("kueue", "fifo")
    assert Verdict.model_validate_json((tmp_path / "v.jsonl").read_text()) == got
