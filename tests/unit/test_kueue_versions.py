"""Kueue v1beta1 and v1beta2: the version spoken follows what the cluster serves."""

from __future__ import annotations

from pytest_k8sai.core.apis import kueue_body, kueue_version_of
from pytest_k8sai.kueue.objects import ClusterQueueSpec, Quota, local_queue


def test_version_follows_discovery() -> None:
    assert kueue_version_of(["v1beta2", "v1beta1"]) == "v1beta2"
    assert kueue_version_of(["v1beta1"]) == "v1beta1"  # Kueue before v0.15
    assert kueue_version_of(None) == "v1beta2"


def test_cluster_queue_cohort_is_spelled_per_version() -> None:
    cq = ClusterQueueSpec(
        name="a", flavor="f", quotas=[Quota(name="nvidia.com/gpu", nominal="4")], cohort="c"
    ).body()
    old = kueue_body(cq, "v1beta1")
    assert old["apiVersion"] == "kueue.x-k8s.io/v1beta1"
    assert old["spec"]["cohort"] == "c" and "cohortName" not in old["spec"]
    assert cq["spec"]["cohortName"] == "c"  # the original is left as it was
    assert kueue_body(old, "v1beta2")["spec"]["cohortName"] == "c"
    assert kueue_body(cq, "v1beta2") is cq
    lq = kueue_body(local_queue("q", "ns", "a"), "v1beta1")
    assert lq["apiVersion"].endswith("/v1beta1") and lq["spec"] == {"clusterQueue": "a"}
    job = {"apiVersion": "batch/v1", "kind": "Job"}
    assert kueue_body(job, "v1beta1") is job
