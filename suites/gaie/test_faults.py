"""A replica or an EPP that exits during start: one error naming it and its log, and nothing
of the stack left running."""

from __future__ import annotations

import socket

import pytest

from pytest_k8sai.gaie.extra import missing_reason

if reason := missing_reason():
    pytest.skip(reason, allow_module_level=True)

from pytest_k8sai.clusters.local.processes import pid_alive
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.gaie.stack import LocalStack

pytestmark = [pytest.mark.pr, pytest.mark.requires("inference_gateway")]


@pytest.fixture
def stack(cluster, k8s_namespace, k8sai_run_id, k8sai_results_dir):
    if cluster.profile.provider != "local":
        pytest.skip("the local tier starts its own replicas and EPP")
    s = LocalStack(
        cluster, k8s_namespace, k8sai_run_id, cluster.profile.gaie_suite, "gaie-fault", 1,
        k8sai_results_dir / "gaie-faults", lambda m: None,
    )  # fmt: skip
    yield s
    s.close()


def _assert_nothing_left(stack: LocalStack, started: list) -> None:
    stack.close()
    assert not [r.name for r in started if pid_alive(r)]
    assert not stack.sup.records


def test_replica_that_exits_is_named_with_its_log(stack):
    stack.create_objects()
    # Something else holds the replica's port: the sim cannot listen and exits.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stack.replicas[0].port))
        squatter.listen()
        with pytest.raises(ClusterError) as err:
            stack.start_replicas(kv_blocks=None, tag="bad")
    started = list(stack.sup.records)
    msg = str(err.value)
    assert "'sim-0-bad'" in msg and str(stack.log_of("sim-0-bad")) in msg
    _assert_nothing_left(stack, started)


def test_epp_that_exits_is_named_with_its_log(stack):
    stack.create_objects()
    stack.start_replicas(kv_blocks=None, tag="ok")
    bad = {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": [{"type": "no-such-plugin"}],
    }
    with pytest.raises(ClusterError) as err:
        stack.start_epp("bad", bad)
    started = list(stack.sup.records)
    msg = str(err.value)
    assert "'epp-bad'" in msg and str(stack.log_of("epp-bad")) in msg
    _assert_nothing_left(stack, started)
