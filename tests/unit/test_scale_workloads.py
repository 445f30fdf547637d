"""Pod-less Workload bodies and the runner's two status patches (finish, give quota back)."""

from __future__ import annotations

from pytest_k8sai.scale import workloads as wl
from pytest_k8sai.scale.plan import Submission, plan
from pytest_k8sai.scale.scenario import load_scenario

NOW = "2026-12-07T13:00:00Z"


def _sub(**kw):
    base = dict(
        offset_s=0.4,
        cluster_queue="r-cq-0-0-cohort-0",
        local_queue="cq-0-0-cohort-0",
        class_name="large",
        runtime_s=6.0,
        request=20,
        priority=200,
        priority_class="r-p200",
        name="cq-0-0-cohort-0-large-2-0-0",
    )
    return Submission(**{**base, **kw})


def test_a_workload_has_one_pod_set_and_no_owner():
    body = wl.workload(_sub(), "ns-a", "nvidia.com/gpu", {"k8sai.io/run-id": "r1"})
    assert body["apiVersion"] == "kueue.x-k8s.io/v1beta2" and body["kind"] == "Workload"
    meta = body["metadata"]
    assert meta["name"] == "cq-0-0-cohort-0-large-2-0-0" and meta["namespace"] == "ns-a"
    assert "ownerReferences" not in meta  # no Job: the runner finishes it
    assert meta["labels"] == {
        "k8sai.io/run-id": "r1",
        wl.CLASS_LABEL: "large",
        wl.RUNTIME_LABEL: "6000",
    }
    spec = body["spec"]
    assert spec["queueName"] == "cq-0-0-cohort-0"
    assert spec["priority"] == 200
    assert spec["priorityClassRef"] == {
        "group": "kueue.x-k8s.io",
        "kind": "WorkloadPriorityClass",
        "name": "r-p200",
    }
    (ps,) = spec["podSets"]
    assert ps["name"] == "main" and ps["count"] == 1
    (c,) = ps["template"]["spec"]["containers"]
    # 20 GPUs in one pod set: more than one 8-GPU node, admitted all the same without pods.
    assert c["resources"]["requests"] == {"nvidia.com/gpu": "20"}


def test_v1beta1_names_the_priority_class_by_name_and_source():
    spec = wl.workload(_sub(), "ns", "nvidia.com/gpu", version="v1beta1")["spec"]
    assert "priorityClassRef" not in spec
    assert spec["priorityClassName"] == "r-p200"
    assert spec["priorityClassSource"] == "kueue.x-k8s.io/workloadpriorityclass"


def test_every_planned_submission_becomes_a_valid_name_and_queue():
    p = plan(load_scenario("scale-tiny"), "r1", "ns-a")
    lqs = {lq["metadata"]["name"] for lq in p.local_queues}
    bodies = [wl.workload(s, "ns-a", "nvidia.com/gpu") for s in p.submissions]
    assert {b["spec"]["queueName"] for b in bodies} == lqs
    assert len({b["metadata"]["name"] for b in bodies}) == 100
    pcs = {pc["metadata"]["name"] for pc in p.priority_classes}
    assert {b["spec"]["priorityClassRef"]["name"] for b in bodies} == pcs


def test_finish_applies_only_the_finished_condition():
    body = wl.finished_apply("w1", "ns-a", NOW, generation=3)
    assert body["metadata"] == {"name": "w1", "namespace": "ns-a"}
    assert body["status"]["conditions"] == [
        {
            "type": "Finished",
            "status": "True",
            "reason": "ByTest",
            "message": "By the k8sai scale runner",
            "lastTransitionTime": NOW,
            "observedGeneration": 3,
        }
    ]
    assert set(body["status"]) == {"conditions"}  # nothing else is claimed by the apply


def _evicted(reserved="True"):
    return {
        "metadata": {"name": "w1", "resourceVersion": "42", "generation": 1},
        "status": {
            "admission": {"clusterQueue": "cq"},
            "conditions": [
                {"type": "QuotaReserved", "status": reserved, "reason": "QuotaReserved"},
                {"type": "Admitted", "status": "True", "reason": "Admitted"},
                {"type": "Evicted", "status": "True", "reason": "Preempted"},
                {"type": "Preempted", "status": "True", "reason": "InCohortReclamation"},
            ],
        },
    }


def test_giving_back_quota_keeps_the_eviction_and_guards_with_the_resource_version():
    patch = wl.unreserve_patch(_evicted(), NOW)
    assert patch["metadata"] == {"resourceVersion": "42"}
    assert patch["status"]["admission"] is None  # merge patch: removes status.admission
    conds = {c["type"]: c for c in patch["status"]["conditions"]}
    assert conds["QuotaReserved"]["status"] == "False"
    assert conds["QuotaReserved"]["reason"] == "Pending"
    assert conds["Admitted"]["status"] == "False"
    assert conds["Evicted"] == {"type": "Evicted", "status": "True", "reason": "Preempted"}
    assert conds["Preempted"]["reason"] == "InCohortReclamation"
    assert [c["type"] for c in patch["status"]["conditions"]] == [
        "QuotaReserved",
        "Admitted",
        "Evicted",
        "Preempted",
    ]


def test_a_condition_already_false_keeps_its_transition_time():
    obj = _evicted()
    obj["status"]["conditions"][1] = {
        "type": "Admitted",
        "status": "False",
        "lastTransitionTime": "then",
    }
    conds = {c["type"]: c for c in wl.unreserve_patch(obj, NOW)["status"]["conditions"]}
    assert conds["Admitted"]["lastTransitionTime"] == "then"


def test_who_needs_quota_given_back():
    assert wl.needs_unreserve(_evicted())
    released = _evicted(reserved="False")
    released["status"].pop("admission")
    assert not wl.needs_unreserve(released)
    finished = _evicted()
    finished["status"]["conditions"].append({"type": "Finished", "status": "True"})
    assert not wl.needs_unreserve(finished)
    admitted = _evicted()
    admitted["status"]["conditions"][2]["status"] = "False"
    assert not wl.needs_unreserve(admitted)
    assert not wl.needs_unreserve({"metadata": {"name": "x"}})
