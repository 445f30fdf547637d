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

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_k8sai.clusters import make_provider
from pytest_k8sai.clusters.base import (
    CREATED_BY_LABEL,
    CREATED_BY_VALUE,
    RUN_ID_LABEL,
    ClusterHandle,
    ClusterProvider,
)
from pytest_k8sai.errors import K8saiError
from pytest_k8sai.profiles import Profile
from pytest_k8sai.runstate import RunState, get_state
from pytest_k8sai.verdicts import BoundVerdicts

# Exit status when no cluster could be created or reached (pytest uses 1 for failed tests).
EXIT_CLUSTER_UNAVAILABLE = 3
NAMESPACE_READY_TIMEOUT_S = 30.0
API_TIMEOUT_S = 30.0


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


@pytest.fixture
def slo(request: pytest.FixtureRequest) -> BoundVerdicts:
    """``slo.check(figure, measured, unit=, threshold=, op=, n=, source=)`` for this test."""
    return get_state(request.config).verdicts.bind(request.node.nodeid)


def _collect_logs(provider: ClusterProvider, state: RunState) -> str:
    """Collect component logs; return a sentence saying where they are (or why not)."""
    dest = state.results_dir / "logs"
    try:
        files = provider.collect_logs(dest)
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


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[ClusterHandle]:
    """The cluster under test, created (or attached to) once per session."""
    state = get_state(request.config)
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
    try:
        yield handle
    finally:
        handle.close()
        notes = [_collect_logs(provider, state)] if request.session.testsfailed else []
        if state.keep_cluster and provider.created:
            notes.append(
                f"Kept cluster '{state.profile.name}' (--keep-cluster); use it with: "
                f"export KUBECONFIG={handle.kubeconfig}"
            )
        else:
            notes.append(_release(provider, state))
        state.notes.extend(n for n in notes if n)


def _wait_for_default_sa(core: client.CoreV1Api, namespace: str) -> bool:
    # Pods are rejected until the service-account controller has made "default".
    deadline = time.monotonic() + NAMESPACE_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_service_account("default", namespace, _request_timeout=10)
            return True
        except ApiException as exc:
            if exc.status != 404:
                raise
        time.sleep(0.2)
    return False


@pytest.fixture
def k8s_namespace(cluster: ClusterHandle, k8sai_run_id: str) -> Iterator[str]:
    """A fresh labelled namespace whose default ServiceAccount exists; deleted afterwards."""
    core = cluster.core
    name = f"k8sai-{secrets.token_hex(3)}"
    body = client.V1Namespace(
        metadata=client.V1ObjectMeta(
            name=name,
            labels={CREATED_BY_LABEL: CREATED_BY_VALUE, RUN_ID_LABEL: k8sai_run_id},
        )
    )
    try:
        core.create_namespace(body, _request_timeout=API_TIMEOUT_S)
    except ApiException as exc:
        pytest.fail(
            f"Cannot create namespace {name}: HTTP {exc.status} {exc.reason}.", pytrace=False
        )
    try:
        if not _wait_for_default_sa(core, name):
            pytest.fail(
                f"Namespace {name}: ServiceAccount 'default' did not appear within "
                f"{NAMESPACE_READY_TIMEOUT_S:g} s, so no pod could be admitted there; is "
                "kube-controller-manager (its serviceaccount controller) running?",
                pytrace=False,
            )
        yield name
    finally:
        # Background deletion: return at once, the namespace controller finishes the job.
        try:
            core.delete_namespace(
                name, propagation_policy="Background", _request_timeout=API_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status != 404:
                pytest.fail(
                    f"Cannot delete namespace {name} (label {RUN_ID_LABEL}={k8sai_run_id}): "
                    f"HTTP {exc.status} {exc.reason}; delete it by hand.",
                    pytrace=False,
                )
