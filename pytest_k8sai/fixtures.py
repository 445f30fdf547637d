"""Fixtures suites use: the cluster, a throw-away namespace, the SLO recorder and the profile.

Why a cluster that cannot be created ends the session with ``pytest.exit(msg, returncode=3)``
instead of ``pytest.fail``: a failed session fixture is re-raised for every test that uses it,
so fail() prints the same paragraph once per test and exits 1 like an ordinary test failure.
exit() prints the paragraph once, stops at once (every later test would fail the same way) and
returns 3, which CI can tell apart from test failures (1). Output written from inside a fixture
is captured, so messages meant for the user go to ``RunState.notes`` and are printed in the
terminal summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_k8sai.clusters import make_provider, sweep
from pytest_k8sai.clusters.base import (
    ClusterHandle,
    ClusterProvider,
)
from pytest_k8sai.clusters.objects import run_namespace
from pytest_k8sai.clusters.preflight import report as preflight
from pytest_k8sai.clusters.preflight.outlook import gpu_resource
from pytest_k8sai.core.apis import KUEUE_GROUP, kueue_version_of
from pytest_k8sai.core.errors import ClusterError, K8saiError
from pytest_k8sai.core.paper import paper_numbers
from pytest_k8sai.core.profiles import Profile
from pytest_k8sai.core.requirements import requirements_of
from pytest_k8sai.core.verdicts import BoundVerdicts
from pytest_k8sai.report import redact
from pytest_k8sai.report.aic.evidence import AicEvidence
from pytest_k8sai.report.labels import setup_of, suite_of
from pytest_k8sai.report.plots import PlotLog
from pytest_k8sai.report.tables import TableLog
from pytest_k8sai.runstate import RunState, get_state

# Exit status when no cluster could be created or reached (pytest uses 1 for failed tests).
EXIT_CLUSTER_UNAVAILABLE = 3


@pytest.fixture(scope="session")
def k8sai_profile(pytestconfig: pytest.Config) -> Profile:
    """The profile chosen with --cluster."""
    return get_state(pytestconfig).profile


@pytest.fixture(scope="session")
def k8sai_run_id(pytestconfig: pytest.Config) -> str:
    """This session's run id; also the value of the RUN_ID_LABEL on objects it creates."""
    return get_state(pytestconfig).run_id


@pytest.fixture(scope="session")
def k8sai_results_dir(pytestconfig: pytest.Config) -> Path:
    """The --results-dir directory (created on first use) for artifacts tests want to keep."""
    path = get_state(pytestconfig).results_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def k8sai_report(pytestconfig: pytest.Config) -> TableLog:
    """``k8sai_report.add(Table(...))``: printed at the end of the run, kept in tables.md."""
    return get_state(pytestconfig).tables


@pytest.fixture(scope="session")
def k8sai_plots(pytestconfig: pytest.Config) -> PlotLog:
    """``k8sai_plots.render("name.png", plots.makespan_by_setup, data, title=, suite=)``:
    a PNG in <results-dir>/plots, listed in results.json and attached in Allure."""
    return get_state(pytestconfig).plots


@pytest.fixture
def aic(request: pytest.FixtureRequest) -> AicEvidence:
    """``aic.tier("runtime"|"api", what)``, ``aic.partial(why)``, ``aic.note(text)``,
    ``aic.absent(why)``, ``aic.untestable(why)``: what this AI-conformance check saw, for the
    checklist (``--aic-report``; docs/conformance.md)."""
    return get_state(request.config).aic.bind(request.node.nodeid)


@pytest.fixture
def slo(request: pytest.FixtureRequest) -> BoundVerdicts:
    """``slo.check(figure, measured, unit=, threshold=, op=, n=, source=)`` for this test;
    optional ``samples=`` (raw values, for results and --baseline) and ``statistic=``."""
    node = request.node
    return get_state(request.config).verdicts.bind(
        node.nodeid, suite=suite_of(node.nodeid), setup=setup_of(node), paper=paper_numbers()
    )


def _collect_logs(provider: ClusterProvider, state: RunState) -> str:
    """Collect component logs; return a sentence saying where they are (or why not)."""
    dest = state.results_dir / "logs"
    try:
        files = provider.collect_logs(dest)
        redact.scrub_files(files)  # a component may log a credential it was sent
    except Exception as exc:  # noqa: BLE001 - a log problem must not hide the real failure
        return f"Could not collect component logs into {dest}: {exc}"
    if not files:
        return ""
    return f"Component logs ({len(files)} files) are in {dest}"


def _release(provider: ClusterProvider, state: RunState) -> str:
    """Destroy unless --keep-cluster; return a sentence for the user (or "")."""
    if state.keep_cluster:
        return "Not destroyed because of --keep-cluster" if provider.created else ""
    try:
        provider.destroy()
    except Exception as exc:  # noqa: BLE001
        return f"Could not destroy the cluster cleanly: {exc}"
    return ""


def _preflight(handle: ClusterHandle, state: RunState) -> None:
    """Preflight the attached cluster into results.json; a failure is a note, never fatal
    (the suites' own checks still decide)."""
    # What the profile says namespaces need holds even where preflight cannot read the cluster.
    handle.namespace_labels.update(handle.profile.reach.namespace_labels)
    try:
        state.preflight = preflight.run(handle, timeout_s=handle.profile.reach.connect_timeout_s)
    except Exception as exc:  # noqa: BLE001 - preflight informs; it must never stop a run
        state.notes.append(f"Preflight could not read the cluster: {exc}")
        return
    # Detection over assumption: namespaces get what the cluster's Kueue needs to manage them.
    handle.namespace_labels.update(state.preflight.facts.kueue_namespace_labels)
    handle.das_namespace_labels.update(state.preflight.facts.das_namespace_labels)
    served = (state.preflight.facts.groups or {}).get(KUEUE_GROUP)
    handle.kueue_version = handle.profile.kueue_suite.api_version or kueue_version_of(served)
    handle.gpu_resource = gpu_resource(handle.profile, state.preflight.facts)
    if state.report is not None:
        state.report.on_preflight(state.preflight.as_dict())


def _audit(handle: ClusterHandle, state: RunState) -> list[str]:
    """Warnings naming each object this run left on a cluster that outlives it."""
    timeout = handle.profile.reach.connect_timeout_s
    try:
        api = preflight.api_client(handle)
    except K8saiError as exc:
        return [f"Could not audit what this run left on the cluster: {exc}"]
    try:
        return sweep.audit(api, state.run_id, timeout)
    except Exception as exc:  # noqa: BLE001 - an audit problem must not hide the run's result
        return [f"Could not audit what this run left on the cluster: {exc}"]
    finally:
        api.close()


def attach(state: RunState) -> tuple[ClusterProvider, ClusterHandle]:
    """Create or attach to the profile's cluster and record it; a cluster that cannot be had
    ends the session (exit 3) after its logs are collected and what started is stopped."""
    try:
        provider = make_provider(
            state.profile,
            kubeconfig=state.kubeconfig,
            context=state.context,
            keep=state.keep_cluster,
        )
    except K8saiError as exc:
        pytest.exit(str(exc), returncode=EXIT_CLUSTER_UNAVAILABLE)
    try:
        handle = provider.create()
    except K8saiError as exc:
        # A half-started cluster still has logs worth reading and processes to stop.
        extra = [_collect_logs(provider, state), _release(provider, state)]
        msg = " ".join([str(exc)] + [f"{s}." for s in extra if s])
        pytest.exit(msg, returncode=EXIT_CLUSTER_UNAVAILABLE)
    except BaseException:
        # A bug or Ctrl-C while starting: stop what was started, then show it as it is.
        _release(provider, state)
        raise
    state.attach_cluster(handle)
    _preflight(handle, state)
    return provider, handle


def preflight_and_exit(state: RunState, write: Callable[[str], None]) -> None:
    """``--preflight``: attach, ``write`` what preflight found, release, stop before any test
    (exit 0: every suite runs in full; 1: not; 3: the cluster could not be read)."""
    provider, handle = attach(state)
    found = state.preflight
    handle.close()
    if note := _release(provider, state):
        state.notes.append(note)
    if found is None:
        pytest.exit("preflight could not read the cluster: " + " ".join(state.notes), returncode=3)
    write(preflight.render(found))
    full = sum(s.status == "will run" for s in found.suites)
    pytest.exit(
        f"preflight: {full} of {len(found.suites)} suites will run in full, "
        f"{len(found.contradicted)} profile claims contradicted",
        returncode=0 if found.ok else 1,
    )


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[ClusterHandle]:
    """The cluster under test, created (or attached to) once per session."""
    state = get_state(request.config)
    provider, handle = attach(state)
    try:
        yield handle
    finally:
        if not (provider.created and not state.keep_cluster):
            found = _audit(handle, state)  # the cluster outlives the run
            state.notes.extend(found)
            state.left_behind.extend(found)
        handle.close()
        notes = [_collect_logs(provider, state)] if request.session.testsfailed else []
        if state.keep_cluster and provider.created:
            notes.append(
                f"Kept cluster '{state.profile.name}' (--keep-cluster); use it with: "
                f"export KUBECONFIG={handle.kubeconfig}"
            )
        elif problem := _release(provider, state):
            notes.append(problem)
            state.left_behind.append(problem)
        state.notes.extend(n for n in notes if n)


@pytest.fixture(autouse=True)
def _k8sai_cluster_requirements(request: pytest.FixtureRequest) -> None:
    """Skip a test whose requires(...) names something the live cluster turned out to lack
    (the profile-based skips happen at collection, before any cluster exists)."""
    if "cluster" not in request.fixturenames:
        return
    try:
        needed = requirements_of(request.node)
    except K8saiError:
        return  # reported at collection already
    if needed and (missing := request.getfixturevalue("cluster").missing):
        for name in needed:
            if name in missing:
                pytest.skip(missing[name])


@pytest.fixture
def k8s_namespace(cluster: ClusterHandle, k8sai_run_id: str) -> Iterator[str]:
    """A fresh labelled namespace whose default ServiceAccount exists; deleted afterwards."""
    try:
        with run_namespace(cluster, k8sai_run_id) as name:
            yield name
    except ClusterError as exc:
        pytest.fail(str(exc), pytrace=False)
