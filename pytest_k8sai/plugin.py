"""pytest hooks of pytest-k8sai: options, markers, profile loading, skips and the verdict table."""

from __future__ import annotations

from collections.abc import Generator

import pluggy
import pytest

from pytest_k8sai import interrupts
from pytest_k8sai.core.errors import FailedEarlier, K8saiError, NotApplicable
from pytest_k8sai.core.profiles import REQUIREMENTS, builtin_names
from pytest_k8sai.core.requirements import requirements_of, skip_reason
from pytest_k8sai.core.verdicts import BoundVerdicts
from pytest_k8sai.fixtures import (  # noqa: F401 - imported so pytest registers them
    _k8sai_cluster_requirements,
    aic,
    cluster,
    k8s_namespace,
    k8sai_plots,
    k8sai_profile,
    k8sai_report,
    k8sai_results_dir,
    k8sai_run_id,
    preflight_and_exit,
    slo,
)
from pytest_k8sai.report import allure as allure_out
from pytest_k8sai.report import junit, redact, terminal
from pytest_k8sai.report.aic.session import check_marker_ids
from pytest_k8sai.report.labels import suite_of
from pytest_k8sai.report.session import RunReport
from pytest_k8sai.runstate import STATE, get_state, start_session

_FAILED = pytest.StashKey[bool]()

MARKERS = (
    "pr: fast checks for every pull request",
    "nightly: long-running performance checks",
    "scale: Kueue at cluster scale (thousands of workloads, KWOK nodes); make scale",
    "conformance: behaviour the AI stack's APIs promise",
    "aic(*ids): a check of the Kubernetes AI Conformance requirement ids named (e.g. "
    "gang_scheduling); implies conformance; --aic-report fills the checklist from them",
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
    group.addoption(
        "--preflight",
        action="store_true",
        default=False,
        help="attach to the cluster, print what it has, what this identity may do there and "
        "which suites will run, then stop before any test (exit 0: every suite runs in full; "
        "1: not; 3: unreachable). docs/preflight.md",
    )
    group.addoption(
        "--aic-report",
        default=None,
        metavar="PATH",
        help="write the Kubernetes AI Conformance checklist, filled from the run's "
        "@pytest.mark.aic checks, to PATH (also <results-dir>/aic-checklist.yaml and "
        "results.json; e.g. pytest -m conformance --aic-report PRODUCT.yaml). "
        "docs/conformance.md",
    )
    group.addoption(
        "--aic-requirements",
        default=None,
        metavar="PATH",
        help="the program's requirement file (AIConformance-1.NN.yaml) to fill, for a "
        "Kubernetes version whose file does not ship with pytest-k8sai (1.33-1.36 do)",
    )
    group.addoption(
        "--mutant",
        default=None,
        metavar="PATH|NAME",
        help="apply a seeded regression (a mutant file, or a catalogue name: k8sai mutants "
        "list) to the stack before the cluster starts; see docs/mutants.md",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    # Ctrl-C and SIGTERM stop the run, but never a teardown halfway (interrupts.py).
    interrupts.install(config)
    try:
        state = start_session(config)
    except K8saiError as exc:
        raise pytest.UsageError(str(exc)) from None
    if state.report is not None:
        config.pluginmanager.register(_TestOutcomes(state.report), "k8sai-test-outcomes")
    # Masks known secrets in each test report before the terminal, JUnit or Allure see it.
    config.pluginmanager.register(redact.ReportScrubber(), "k8sai-redact")
    config.stash[STATE] = state


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.getoption("--preflight"):
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        preflight_and_exit(get_state(session.config), tr.write_line if tr else print)


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(STATE, None)
    if state is None:
        return None
    return state.header_lines()


def _outcomes(item: pytest.Item | None = None) -> Generator[None, object, object]:
    """Library code raises core exceptions; here they become pytest outcomes (the only place
    besides fixtures.py that calls pytest.skip/fail). After the test body, the SLO checks that
    failed (all were evaluated) fail the test, each on its own line."""
    try:
        result = yield
    except NotApplicable as exc:
        pytest.skip(str(exc))
    except FailedEarlier as exc:
        pytest.fail(str(exc), pytrace=False)
    bound = getattr(item, "funcargs", {}).get("slo") if item is not None else None
    if isinstance(bound, BoundVerdicts) and bound.failures:
        pytest.fail("\n".join(bound.failures), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _outcomes())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _outcomes(item))


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
        live = state.cluster.endpoints.get("logs") if state.cluster is not None else None
        logs = allure_out.log_dir(live, state.results_dir)
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
    state.finish_conformance()
    checklist = state.aic_session
    if checklist.report_path is not None and session.exitstatus == 0:
        # A checklist the program would not accept is a failed run, not a note.
        if checklist.error:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        elif checklist.result is not None and checklist.result.problems:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    report.finish(int(session.exitstatus), allure_out.alluredir(session.config))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: before -m deselects, so `-m conformance` selects every aic check.
    for item in items:
        ids = [i for m in item.iter_markers("aic") for i in m.args]
        if ids or item.get_closest_marker("aic") is not None:
            try:
                check_marker_ids(item.nodeid, ids)
            except K8saiError as exc:
                raise pytest.UsageError(str(exc)) from None
            item.add_marker(pytest.mark.conformance)
            config.stash[STATE].aic_session.known[item.nodeid] = ids
    _skip_unmet_requirements(config, items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The AI Conformance checks this session will run (after deselection)."""
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    for item in session.items:
        ids = [i for m in item.iter_markers("aic") for i in m.args]
        if ids:
            state.aic_session.checks[item.nodeid] = ids


def _skip_unmet_requirements(config: pytest.Config, items: list[pytest.Item]) -> None:
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
    if state is not None:
        terminal.write_summary(terminalreporter, state.tables, state.verdicts, state.report)
        aic = state.aic_session
        terminal.write_conformance(terminalreporter, aic.result, full=aic.report_path is not None)
        terminal.write_notes(terminalreporter, state.notes)
