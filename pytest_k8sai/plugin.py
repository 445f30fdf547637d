"""pytest hooks of pytest-k8sai: options, markers, profile loading, skips and the verdict table."""

from __future__ import annotations

import signal
import threading
from collections.abc import Generator
from pathlib import Path

import pluggy
import pytest

from pytest_k8sai.clusters import check_reach_flags
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.profiles import REQUIREMENTS, builtin_names, load_profile
from pytest_k8sai.core.requirements import requirements_of, skip_reason
from pytest_k8sai.core.runstate import STATE, RunState, check_results_dir, new_run_id
from pytest_k8sai.core.verdicts import VERDICTS_FILE, VerdictLog, format_verdict_rows
from pytest_k8sai.fixtures import (  # noqa: F401 - imported so pytest registers them
    _k8sai_cluster_requirements,
    cluster,
    k8s_namespace,
    k8sai_plots,
    k8sai_profile,
    k8sai_report,
    k8sai_results_dir,
    k8sai_run_id,
    slo,
)
from pytest_k8sai.report import allure as allure_out
from pytest_k8sai.report import junit
from pytest_k8sai.report.baseline import load_baseline
from pytest_k8sai.report.labels import suite_of
from pytest_k8sai.report.plots import PLOTS_DIR, PlotLog
from pytest_k8sai.report.session import RunReport, command_line, environment
from pytest_k8sai.report.summary import comparison_lines
from pytest_k8sai.report.tables import TableLog

TABLES_FILE = "tables.md"
_FAILED = pytest.StashKey[bool]()

MARKERS = (
    "pr: fast checks for every pull request",
    "nightly: long-running performance checks",
    "conformance: behaviour the AI stack's APIs promise",
    "requires(*names): skip unless the cluster profile has every named capability "
    f"({', '.join(REQUIREMENTS)})",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k8sai", "pytest-k8sai: Kubernetes AI stack checks")
    group.addoption(
        "--cluster",
        default="local",
        metavar="PROFILE",
        help=f"cluster profile: a built-in name ({', '.join(builtin_names())}) or a YAML path "
        "(default: local)",
    )
    group.addoption(
        "--kubeconfig",
        default=None,
        metavar="PATH",
        help="kubeconfig of an existing cluster (overrides the profile's reach.kubeconfig)",
    )
    group.addoption(
        "--context",
        default=None,
        metavar="NAME",
        help="kubeconfig context (overrides the profile's reach.context)",
    )
    group.addoption(
        "--keep-cluster",
        action="store_true",
        default=False,
        help="do not destroy a cluster this run created; print its kubeconfig instead",
    )
    group.addoption(
        "--runs",
        type=int,
        default=None,
        metavar="N",
        help="repetitions per experiment setup (default: the profile's, e.g. kueue_suite.runs)",
    )
    group.addoption(
        "--results-dir",
        default="k8sai-results",
        metavar="DIR",
        help="where results.json, summary.md, verdicts.jsonl, tables.md, plots/ and collected "
        "logs go (default: k8sai-results)",
    )
    group.addoption(
        "--baseline",
        default=None,
        metavar="PATH",
        help="a previous results.json, or a directory searched for them, to compare this run's "
        "figures with (profile field 'regression' sets the tolerance)",
    )


def _interrupt_on_sigterm() -> None:
    """SIGTERM (``timeout``, a CI job cancelled, ``kill``) ends the run as Ctrl-C does, so
    fixtures tear down: the suite's namespaces and queues are deleted and a local cluster it
    started is stopped. A handler someone else installed is left alone."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
        raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")

    signal.signal(signal.SIGTERM, interrupt)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    _interrupt_on_sigterm()
    opt = config.option
    try:
        profile = load_profile(opt.cluster)
        check_reach_flags(profile, kubeconfig=opt.kubeconfig, context=opt.context)
        # Relative to where pytest was started, so a later chdir cannot move it.
        results_dir = (config.invocation_params.dir / Path(opt.results_dir)).resolve()
        check_results_dir(results_dir)
    except K8saiError as exc:
        raise pytest.UsageError(str(exc)) from None
    # Read before this run writes anything: the baseline may be the results dir's last run.
    baseline = None
    if opt.baseline:
        baseline = load_baseline((config.invocation_params.dir / opt.baseline).resolve())
    run_id = new_run_id()
    state = RunState(
        profile=profile,
        run_id=run_id,
        results_dir=results_dir,
        kubeconfig=opt.kubeconfig,
        context=opt.context,
        keep_cluster=opt.keep_cluster,
        verdicts=VerdictLog(results_dir / VERDICTS_FILE, run_id=run_id),
        tables=TableLog(results_dir / TABLES_FILE),
        plots=PlotLog(results_dir / PLOTS_DIR),
    )
    if not config.option.collectonly and not config.option.help:
        state.report = RunReport(
            results_dir=results_dir,
            run_id=run_id,
            env=environment(profile, config.rootpath, command_line()),
            verdicts=state.verdicts,
            tables=state.tables,
            plots=state.plots,
            baseline=baseline,
            profile=profile,
        )
        config.pluginmanager.register(_TestOutcomes(state.report), "k8sai-test-outcomes")
    config.stash[STATE] = state


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(STATE, None)
    if state is None:
        return None
    p = state.profile
    lines = [
        f"k8sai: profile {p.name} (provider {p.provider}), run id {state.run_id}",
        f"k8sai: results in {state.results_dir}",
    ]
    report = state.report
    if report is not None and report.comparer is not None:
        comp = report.comparer.comparison
        if comp.baseline_files:
            lines.append(
                f"k8sai: baseline {len(comp.baseline_files)} file(s), run(s) "
                f"{', '.join(comp.baseline_run_ids)}"
            )
        lines += [f"k8sai: BASELINE ERROR: {e}" for e in report.baseline_errors]
    return lines


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    state = item.config.stash.get(STATE, None)
    if state is not None:
        # Before the report is made: pytest copies user_properties into it (JUnit XML).
        junit.add_properties(item, state.verdicts.verdicts)
    outcome = yield
    report = outcome.get_result()
    if state is None or state.report is None:
        return
    if report.failed:
        item.stash[_FAILED] = True
    if report.when == "teardown" and allure_out.alluredir(item.config) is not None:
        # The live cluster's log directory; after the last test the cluster is gone and the
        # logs were copied into <results-dir>/logs (the cluster fixture does that on failure).
        live = state.cluster.endpoints.get("logs") if state.cluster is not None else None
        dirs = [Path(live)] if live else []
        logs = next((d for d in [*dirs, state.results_dir / "logs"] if d.is_dir()), None)
        state.report.attach_to_allure(
            item, suite_of(item.nodeid), failed=item.stash.get(_FAILED, False), logs=logs
        )


class _TestOutcomes:
    """pytest_runtest_logreport has no config argument: one of these per session carries the
    report to it (registered in pytest_configure; nested pytester sessions get their own)."""

    def __init__(self, report: RunReport) -> None:
        self.report = report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.report.on_test_report(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or state.report is None:
        return
    report = state.report
    if report.regressions and report.fail_on_regression and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if report.baseline_errors and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    report.finish(int(session.exitstatus), allure_out.alluredir(session.config))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    if allure_out.alluredir(config) is not None:
        allure_out.add_labels(items)
    for item in items:
        try:
            reason = skip_reason(state.profile, requirements_of(item))
        except K8saiError as exc:
            raise pytest.UsageError(str(exc)) from None
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    state = terminalreporter.config.stash.get(STATE, None)
    if state is None:
        return
    tr = terminalreporter
    for table in state.tables.tables:
        title, *lines = table.text()
        tr.write_sep("=", title)
        for line in lines:
            tr.write_line(line)
    verdicts = state.verdicts.verdicts
    if verdicts:
        tr.write_sep("=", "k8sai verdicts")
        header, rows = format_verdict_rows(verdicts)
        for line in header:
            tr.write_line(line, bold=True)
        for row, v in zip(rows, verdicts, strict=True):
            for line in row:
                tr.write_line(line, red=not v.passed, green=v.passed and v.threshold is not None)
        tr.write_line(f"verdicts: {state.verdicts.path}")
    report = state.report
    if report is not None:
        _write_comparison(tr, report)
        _write_files(tr, state, report)
    for note in state.notes:
        tr.write_line(f"k8sai: {note}", yellow=True)


def _write_comparison(tr: pytest.TerminalReporter, report: RunReport) -> None:
    comp = report.results.comparison
    if comp is None:
        return
    tr.write_sep("=", "k8sai comparison with the baseline")
    for err in report.baseline_errors:
        tr.write_line(f"BASELINE ERROR: {err}", red=True, bold=True)
    if comp.baseline_files:
        tr.write_line(
            f"baseline: {', '.join(comp.baseline_files)}; tolerance {comp.tolerance_pct:g} %, "
            f"{(1 - comp.alpha) * 100:g} % bootstrap CI of the difference, test needs >= "
            f"{comp.min_samples} samples per side"
        )
    # Figures only on one side are listed by name, not as rows of dashes.
    shown = [c for c in comp.changes if c.verdict not in ("NEW", "MISSING")]
    for kind, meaning in (("NEW", "not in the baseline"), ("MISSING", "not measured tonight")):
        names = [c.figure for c in comp.changes if c.verdict == kind]
        if names:
            tr.write_line(f"{kind} ({meaning}): {len(names)}: {'; '.join(names)}")
    if not shown:
        return
    header, *rows = comparison_lines(shown)
    for line in header:
        tr.write_line(line, bold=True)
    for lines, change in zip(rows, shown, strict=True):
        color = {"REGRESSION": "red", "IMPROVEMENT": "green"}.get(change.verdict)
        for line in lines:
            tr.write_line(line, **({color: True} if color else {}))
    if report.regressions:
        fail = " (the run fails: regression.fail_run)" if report.fail_on_regression else ""
        tr.write_line(f"{len(report.regressions)} regression(s){fail}", red=True, bold=True)


def _write_files(tr: pytest.TerminalReporter, state: RunState, report: RunReport) -> None:
    res = report.results
    wall = res.wall_s or 0.0
    share = f" ({res.report_overhead_s / wall * 100:.1f} % of {wall:.1f} s)" if wall else ""
    others = [v for k, v in res.files.items()] + [p.file for p in res.plots]
    tr.write_line(f"k8sai results: {report.path}")
    tr.write_line(f"  beside it: {', '.join(others)}")
    tr.write_line(f"  report writing took {res.report_overhead_s:.2f} s{share}")
    if report.writer.error:
        tr.write_line(f"k8sai: RESULTS NOT COMPLETE: {report.writer.error}", red=True)
