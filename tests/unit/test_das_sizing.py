"""The GPU slicing suite sized to the GPUs a cluster has."""

from __future__ import annotations

import pytest

from pytest_k8sai.core.profiles import load_profile
from pytest_k8sai.das.sizing import concurrency_threshold, limited_per_model


def _with_gpus(per_node: int, nodes: int = 1):
    rosa = load_profile("rosa")
    gpus = rosa.capabilities.gpu_nodes.model_copy(
        update={"gpus_per_node": per_node, "count": nodes}
    )
    caps = rosa.capabilities.model_copy(update={"gpu_nodes": gpus})
    return rosa.model_copy(update={"capabilities": caps})


@pytest.mark.parametrize(
    ("per_node", "nodes", "want"), [(8, 1, 4), (6, 1, 3), (4, 1, 2), (2, 1, 1), (4, 2, 4)]
)
def test_limited_experiment_fits_every_job_on_its_own_gpu(per_node, nodes, want) -> None:
    assert limited_per_model(_with_gpus(per_node, nodes), 2) == want


def test_concurrency_threshold_scales_with_the_planners_best() -> None:
    p = _with_gpus(4)
    assert concurrency_threshold(p, 28) == (25, "")  # the paper's 8 A100-40GB
    threshold, note = concurrency_threshold(p, 20)  # the 4-GPU vendor: best 20
    assert threshold == pytest.approx(25 * 20 / 28) and threshold <= 20
    assert "best 20 / paper best 28" in note


SIZES = [(2, 1), (4, 1), (6, 1), (8, 1), (2, 2), (4, 2), (8, 2)]


@pytest.mark.parametrize(("per_node", "nodes"), SIZES)
def test_full_trace_threshold_never_asks_more_than_the_planners_best(per_node, nodes) -> None:
    """On 2, 4, 6 and 8 GPUs per node, one node or two: the concurrency the full trace must
    reach is at most what the planner can pack on those GPUs, and no job of the limited
    experiment waits for a GPU."""
    from pytest_k8sai.das.runs import slice_plan
    from pytest_k8sai.workloads.whisper import load_trace

    profile = _with_gpus(per_node, nodes)
    best = slice_plan(profile, load_trace().jobs).best_concurrency
    threshold, _ = concurrency_threshold(profile, best)
    assert 0 < threshold <= best <= len(load_trace().jobs)
    assert limited_per_model(profile, 2) * 2 <= profile.total_gpus
