"""A small suite that tests/reliability/test_timeouts.py runs in a pytest session of its own, with a
profile whose ``kueue_suite.job_timeout_s`` is a few seconds: a Job Kueue never admits, a Job
whose pod no node can take, a wave of pods that never ends, then an ordinary Job. Each wait is
the library's own (``JobLatencyRecorder.wait_complete``, ``PodPhaseRecorder.wait_finished``),
bounded by the profile. Not collected by itself: its name does not start with ``test_``.
"""

from __future__ import annotations

import pytest

from pytest_k8sai.clusters.objects import ObjectTracker
from pytest_k8sai.kueue import objects as kueue
from pytest_k8sai.measure.joblatency import JobLatencyRecorder
from pytest_k8sai.measure.podphases import PodPhaseRecorder
from pytest_k8sai.workloads.jobs import gpu_job

pytestmark = pytest.mark.requires("kueue", "gpu")


@pytest.fixture
def queue(cluster, k8s_namespace, k8sai_run_id):
    """A ClusterQueue with one node's GPUs, open to this test's namespace."""
    gpus = cluster.profile.capabilities.gpu_nodes.gpus_per_node
    with ObjectTracker(cluster.api_client, k8sai_run_id, cluster.kueue_version) as objs:
        yield kueue.create_gpu_queue(objs, k8s_namespace, gpus, resource=cluster.gpu_resource)


def _run(cluster, namespace: str, jobs: list[dict], *, queued: bool) -> None:
    """Create ``jobs`` and wait, as the Kueue suite does, until every one is Complete."""
    recorder = JobLatencyRecorder(
        cluster.api_client, namespace, kueue=queued, kueue_version=cluster.kueue_version
    ).start()
    try:
        for body in jobs:
            cluster.batch.create_namespaced_job(namespace, body)
        names = {b["metadata"]["name"] for b in jobs}
        recorder.wait_complete(names, cluster.profile.kueue_suite.job_timeout_s)
    finally:
        recorder.stop()


def _too_many_gpus(cluster) -> int:
    return cluster.profile.capabilities.gpu_nodes.gpus_per_node + 1


def test_1_job_kueue_never_admits(cluster, k8s_namespace, queue):
    job = gpu_job(
        "too-big", k8s_namespace, run_seconds=1, gpus=_too_many_gpus(cluster), queue=queue,
        resource=cluster.gpu_resource,
    )  # fmt: skip
    _run(cluster, k8s_namespace, [job], queued=True)


def test_2_job_whose_pod_no_node_takes(cluster, k8s_namespace):
    job = gpu_job(
        "no-node", k8s_namespace, run_seconds=1, gpus=_too_many_gpus(cluster),
        resource=cluster.gpu_resource,
    )  # fmt: skip
    _run(cluster, k8s_namespace, [job], queued=False)


def test_3_pod_wave_that_never_ends(cluster, k8s_namespace):
    recorder = PodPhaseRecorder(cluster.api_client, k8s_namespace).start()
    try:
        cluster.batch.create_namespaced_job(
            k8s_namespace,
            gpu_job(
                "wave-0",
                k8s_namespace,
                run_seconds=1,
                gpus=_too_many_gpus(cluster),
                resource=cluster.gpu_resource,
            ),  # fmt: skip
        )
        recorder.wait_finished("wave-", 1, cluster.profile.kueue_suite.job_timeout_s)
    finally:
        recorder.stop()


def test_4_ordinary_job_still_completes(cluster, k8s_namespace, queue):
    job = gpu_job(
        "fits", k8s_namespace, run_seconds=0.5, queue=queue, resource=cluster.gpu_resource
    )
    _run(cluster, k8s_namespace, [job], queued=True)
