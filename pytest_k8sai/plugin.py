"""pytest hooks of pytest-k8sai: options, markers, profile loading, skips and the verdict table."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_k8sai.clusters import check_reach_flags
from pytest_k8sai.errors import K8saiError
from pytest_k8sai.fixtures import (  # noqa: F401 - imported so pytest registers them
    _k8sai_cluster_requirements,
    cluster,
    k8s_namespace,
    k8sai_profile,
    k8sai_report,
    k8sai_results_dir,
    k8sai_run_id,
    slo,
)
from pytest_k8sai.profiles import REQUIREMENTS, builtin_names, load_profile
from pytest_k8sai.report.tables import TableLog
from pytest_k8sai.requirements import requirements_of, skip_reason
from pytest_k8sai.runstate import STATE, RunState, check_results_dir, new_run_id
from pytest_k8sai.verdicts import VERDICTS_FILE, VerdictLog, format_verdict_rows

TABLES_FILE = "tables.md"

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
        help="where verdicts.jsonl and collected logs go (default: k8sai-results)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    opt = config.option
    try:
        profile = load_profile(opt.cluster)
        check_reach_flags(profile, kubeconfig=opt.kubeconfig, context=opt.context)
        # Relative to where pytest was started, so a later chdir cannot move it.
        results_dir = (config.invocation_params.dir / Path(opt.results_dir)).resolve()
        check_results_dir(results_dir)
    except K8saiError as exc:
        raise pytest.UsageError(str(exc)) from None
    run_id = new_run_id()
    config.stash[STATE] = RunState(
        profile=profile,
        run_id=run_id,
        results_dir=results_dir,
        kubeconfig=opt.kubeconfig,
        context=opt.context,
        keep_cluster=opt.keep_cluster,
        verdicts=VerdictLog(results_dir / VERDICTS_FILE, run_id=run_id),
        tables=TableLog(results_dir / TABLES_FILE),
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(STATE, None)
    if state is None:
        return None
    p = state.profile
    return f"k8sai: profile {p.name} (provider {p.provider}), run id {state.run_id}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
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
    for note in state.notes:
        tr.write_line(f"k8sai: {note}", yellow=True)
