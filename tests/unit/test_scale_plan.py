"""A scenario expanded into Kueue objects and a submission schedule (Kueue generator timing)."""

from __future__ import annotations

from collections import Counter

import pytest

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.scale import kueueperf
from pytest_k8sai.scale.plan import plan
from pytest_k8sai.scale.scenario import KUEUE_PERF, load_scenario


def test_tiny_objects_reuse_the_kueue_builders():
    p = plan(load_scenario("scale-tiny"), "run1", "ns-a")
    kinds = [(b["kind"], plural) for b, plural in p.cluster_objects]
    assert kinds[0] == ("ResourceFlavor", "resourceflavors")
    assert [k for k, _ in kinds[1:4]] == ["WorkloadPriorityClass"] * 3
    assert [k for k, _ in kinds[4:]] == ["ClusterQueue"] * 2
    assert {pc["metadata"]["name"]: pc["value"] for pc in p.priority_classes} == {
        "run1-p50": 50,
        "run1-p100": 100,
        "run1-p200": 200,
    }
    cq = p.cluster_queues[0]
    assert cq["metadata"]["name"] == "run1-cq-0-0-cohort-0"
    assert cq["apiVersion"] == "kueue.x-k8s.io/v1beta2"
    assert cq["spec"]["cohortName"] == "run1-cohort-0"
    (res,) = cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
    assert res == {"name": "nvidia.com/gpu", "nominalQuota": "40", "borrowingLimit": "40"}
    assert cq["spec"]["preemption"] == {
        "reclaimWithinCohort": "Any",
        "withinClusterQueue": "LowerPriority",
    }
    assert cq["spec"]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ns-a"}
    lq = p.local_queues[1]
    assert lq["metadata"] == {"name": "cq-0-1-cohort-0", "namespace": "ns-a"}
    assert lq["spec"]["clusterQueue"] == "run1-cq-0-1-cohort-0"
    assert p.queue_class_of == {"run1-cq-0-0-cohort-0": "cq", "run1-cq-0-1-cohort-0": "cq"}


def test_tiny_schedule_follows_kueues_generator():
    p = plan(load_scenario("scale-tiny"), "run1", "ns-a")
    subs = p.submissions
    assert len(subs) == 100 and len({s.name for s in subs}) == 100
    offsets = [s.offset_s for s in subs]
    assert offsets == sorted(offsets)
    small = [
        s.offset_s for s in subs if s.class_name == "small" and s.local_queue.startswith("cq-0-0")
    ]
    # The generator waits one interval before each create: 0.4 s, 0.8 s, ... 14.0 s.
    assert small == pytest.approx([0.4 * (i + 1) for i in range(35)])
    large = [s for s in subs if s.class_name == "large"]
    assert {(s.request, s.runtime_s, s.priority, s.priority_class) for s in large} == {
        (8, 6.0, 200, "run1-p200")
    }
    t = p.totals
    assert t.workloads == 100
    assert t.workloads_by_class == {"large": 10, "medium": 20, "small": 70}
    assert t.gpu_seconds_by_class == {"large": 480.0, "medium": 320.0, "small": 140.0}
    assert (t.cohorts, t.cluster_queues, t.quota_gpus, t.node_gpus) == (1, 2, 80, 80)
    assert t.submit_span_s == 15.0
    assert t.busy_lower_bound_s == pytest.approx(940 / 80)
    assert t.peak_rate_per_s == 10 and t.classes_over_one_node == []


def test_growth_sizes_totals():
    for name, workloads, cqs in [
        ("scale-small", 1_000, 20),
        ("scale-5k", 5_000, 100),
        ("scale-1k", 15_000, 200),
    ]:
        t = plan(load_scenario(name), "r", "ns").totals
        assert (t.workloads, t.cluster_queues) == (workloads, cqs), name
        assert t.quota_gpus == t.node_gpus
        assert t.workloads_by_class["small"] / t.workloads == pytest.approx(0.7, abs=0.01)


def test_a_name_too_long_is_refused():
    with pytest.raises(K8saiError, match=r"scale-tiny.*more than 63"):
        plan(load_scenario("scale-tiny"), "x" * 50, "ns")


def test_kueues_baseline_plans_5_cohorts_of_6_queues():
    try:
        kueueperf.kueue_generator_path()
    except K8saiError as exc:
        pytest.skip(f"Kueue's module is not downloaded: {exc}")
    p = plan(load_scenario(KUEUE_PERF), "perf", "ns")
    t = p.totals
    assert (t.cohorts, t.cluster_queues, t.workloads) == (5, 30, 15_000)
    per_queue = Counter((s.cluster_queue, s.class_name) for s in p.submissions)
    assert len(per_queue) == 90
    assert {c: n for (_, c), n in per_queue.items()} == {"small": 350, "medium": 100, "large": 50}
    assert t.quota_gpus == 600 and t.submit_span_s == 60.0
    assert t.classes_over_one_node == ["large"]  # 20 GPUs: more than one 8-GPU node
