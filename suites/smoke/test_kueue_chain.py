"""Smoke: the whole chain a batch GPU job goes through, on whatever cluster the profile names.

A Job labelled for a Kueue LocalQueue is created suspended, Kueue admits it (Workload
QuotaReserved + Admitted) and unsuspends it, kube-scheduler puts its pod on a GPU node, the
pod runs for the time written on it and the Job completes. Kueue's metrics endpoint then shows
admission attempts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from pytest_k8sai.clusters.objects import ObjectTracker
from pytest_k8sai.kueue import objects as kueue
from pytest_k8sai.kueue.runs import admission_source
from pytest_k8sai.measure import prometheus
from pytest_k8sai.measure.podphases import PodPhaseRecorder
from pytest_k8sai.workloads.jobs import gpu_job

pytestmark = [pytest.mark.pr, pytest.mark.conformance, pytest.mark.requires("kueue", "gpu")]

RUN_SECONDS = 3.0
STEP_TIMEOUT_S = 60.0
ADMISSION_METRIC = "kueue_admission_attempt_duration_seconds"


@pytest.fixture
def queue(cluster, k8s_namespace, k8sai_run_id):
    """A ResourceFlavor, a ClusterQueue with one node's GPUs and a LocalQueue, removed after."""
    gpus = cluster.profile.capabilities.gpu_nodes.gpus_per_node
    with ObjectTracker(cluster.api_client, k8sai_run_id, cluster.kueue_version) as objs:
        yield kueue.create_gpu_queue(objs, k8s_namespace, gpus, resource=cluster.gpu_resource)


def _wait(what: str, probe, timeout_s: float = STEP_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while (value := probe()) is None or value is False:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}", pytrace=False)
        time.sleep(0.05)
    return value


@dataclass
class Chain:
    created: float
    admitted: float
    completed: float
    running: float
    succeeded: float
    node: str


def run_chain(cluster, namespace: str, queue: str, run_seconds: float, run_id: str) -> Chain:
    """Submit one queued GPU Job and follow it to completion, asserting each step."""
    recorder = PodPhaseRecorder(cluster.api_client, namespace).start()
    try:
        job = gpu_job(
            "smoke", namespace, run_seconds=run_seconds, gpus=1, queue=queue,
            pods=cluster.profile.workload, resource=cluster.gpu_resource, run_id=run_id,
        )  # fmt: skip
        created = time.monotonic()
        cluster.batch.create_namespaced_job(namespace, job)
        wl = _wait(
            "Kueue to create a Workload for Job smoke",
            lambda: kueue.workload_for_job(
                cluster.api_client, namespace, "smoke", cluster.kueue_version
            ),
        )
        name = wl["metadata"]["name"]

        _wait(
            f"Workload {name} to be QuotaReserved and Admitted",
            lambda: kueue.is_admitted(
                kueue.workload_for_job(
                    cluster.api_client, namespace, "smoke", cluster.kueue_version
                )
            ),
        )
        admitted_at = time.monotonic()
        _wait(
            "Kueue to unsuspend Job smoke",
            lambda: cluster.batch.read_namespaced_job("smoke", namespace).spec.suspend is False,
        )

        pods = recorder.wait_phase("Succeeded", STEP_TIMEOUT_S + run_seconds)
        ((pod_name, times),) = pods.items()
        assert "Running" in times.phases, f"pod {pod_name} was never seen Running: {times}"
        alloc = cluster.core.read_node(times.node).status.allocatable or {}
        # On a DAS cluster the webhook rewrote the request to one of DAS's mig.das.com/* slices.
        gpus = [
            k for k, v in alloc.items() if k == cluster.gpu_resource or k.startswith("mig.das.com/")
        ]
        assert any(int(alloc[k]) >= 1 for k in gpus), (
            f"pod {pod_name} ran on {times.node}, which has no {cluster.gpu_resource}"
        )

        def complete() -> bool:
            status = cluster.batch.read_namespaced_job_status("smoke", namespace).status
            return any(
                c.type == "Complete" and c.status == "True" for c in (status.conditions or [])
            )

        _wait("Job smoke to be Complete", complete)
        return Chain(
            created=created,
            admitted=admitted_at,
            completed=time.monotonic(),
            running=times.phases["Running"],
            succeeded=times.phases["Succeeded"],
            node=times.node,
        )
    finally:
        recorder.stop()


def test_job_admitted_by_kueue_runs_on_gpu_node_and_completes(
    cluster, k8s_namespace, queue, slo, k8sai_run_id
):
    chain = run_chain(cluster, k8s_namespace, queue, RUN_SECONDS, k8sai_run_id)
    run_s = chain.succeeded - chain.running
    slo.check(
        "smoke pod run time error vs written",
        abs(run_s - RUN_SECONDS) * 1000,
        unit="ms",
        threshold=cluster.profile.slo.kwok_duration_tolerance_ms,
        op="<=",
        n=1,
        source=f"pod watch Running->Succeeded ({run_s:.3f}s, written {RUN_SECONDS}s)",
        key="kwok_duration_tolerance_ms",
    )
    slo.info(
        "smoke job queue time",
        (chain.admitted - chain.created) * 1000,
        unit="ms",
        n=1,
        source="Job create -> Workload Admitted, polled every 50 ms",
    )
    slo.info(
        "smoke job JCT",
        (chain.completed - chain.created) * 1000,
        unit="ms",
        n=1,
        source="Job create -> Complete, polled every 50 ms",
    )


def test_kueue_metrics_expose_admission_attempts(cluster, k8s_namespace, queue, slo, k8sai_run_id):
    if why := admission_source(cluster):  # an existing cluster: kueue_suite.metrics_url
        pytest.skip(why)
    url = cluster.endpoints.get("kueue_metrics")
    if url is None:
        pytest.skip(f"provider '{cluster.provider}' exposes no Kueue metrics endpoint")

    def scrape() -> prometheus.Histogram | None:
        text = prometheus.scrape(
            url,
            token=cluster.endpoints.get("kueue_metrics_token"),
            ca_file=cluster.endpoints.get("ca_file"),
        )
        try:
            return prometheus.histogram(text, ADMISSION_METRIC, result="success")
        except KeyError:
            return None  # not exposed before Kueue's first attempt

    before = scrape()
    run_chain(cluster, k8s_namespace, queue, 0.5, k8sai_run_id)  # guarantees >= 1 admission
    after = scrape()
    assert after is not None, f"{ADMISSION_METRIC} is not exposed after an admission"
    # Only this test's window: a reused cluster's histogram holds earlier runs too.
    hist = after.minus(before) if before is not None else after
    assert hist.count >= 1, f"{ADMISSION_METRIC}{{result=success}} has no new samples"
    slo.check(
        "Kueue admission attempt P99 (histogram)",
        hist.quantile(0.99) * 1000,
        unit="ms",
        threshold=cluster.profile.slo.kueue_admission_attempt_p99_ms,
        op="<=",
        n=int(hist.count),
        source=f"{ADMISSION_METRIC}{{result=success}} increase during this test, default "
        "buckets, interpolated (histogram_quantile)",
        key="kueue_admission_attempt_p99_ms",
    )
