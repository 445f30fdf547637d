"""Unit tests of the AI-conformance checks' pure logic: gang admission and queue drain read off
Kueue objects, Kueue's webhooks and CRDs as a robust controller, and what a GPU probe pod
reports (its script, message parser, isolation rules, node choice, pod spec)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from pytest_k8sai.core.apis import KUEUE_GROUP
from pytest_k8sai.core.profiles import WorkloadPods
from pytest_k8sai.kueue import controller as kc
from pytest_k8sai.kueue import gang
from pytest_k8sai.workloads import devicecheck as dc
from pytest_k8sai.workloads.jobs import gpu_job

# --- gang ----------------------------------------------------------------------------------


def _wl(count=2, assignments=None, conditions=None):
    wl = {
        "metadata": {"name": "job-a-1"},
        "spec": {"podSets": [{"name": "main", "count": count}]},
        "status": {"conditions": conditions or []},
    }
    if assignments is not None:
        wl["status"]["admission"] = {"clusterQueue": "cq", "podSetAssignments": assignments}
    return wl


def _cond(kind, status="True"):
    return {"type": kind, "status": status}


def test_pods_assigned_sums_assignment_counts():
    wl = _wl(2, [{"name": "main", "count": 2, "resourceUsage": {"nvidia.com/gpu": "2"}}])
    assert gang.pods_requested(wl) == 2
    assert gang.pods_assigned(wl) == 2
    assert gang.assigned_usage(wl, "nvidia.com/gpu") == "2"
    assert gang.assigned_usage(wl, "cpu") is None


def test_pods_assigned_without_count_covers_the_whole_pod_set():
    assert gang.pods_assigned(_wl(3, [{"name": "main"}])) == 3


def test_pods_assigned_is_zero_without_admission():
    assert gang.pods_assigned(_wl(3)) == 0
    assert gang.pods_assigned(_wl(3, [])) == 0


def test_partial_assignment_is_counted_as_such():
    assert gang.pods_assigned(_wl(3, [{"name": "main", "count": 2}])) == 2


@pytest.mark.parametrize(
    ("conditions", "holds"),
    [
        ([], False),
        ([_cond("QuotaReserved", "False")], False),
        ([_cond("QuotaReserved")], True),
        ([_cond("QuotaReserved", "False"), _cond("Admitted")], True),
    ],
)
def test_holds_quota(conditions, holds):
    assert gang.holds_quota(_wl(conditions=conditions)) is holds
    assert gang.holds_quota(None) is False


def test_unfinished_lists_workloads_without_finished():
    done = _wl(conditions=[_cond("Admitted"), _cond("Finished")])
    pending = _wl(conditions=[_cond("QuotaReserved", "False")])
    pending["metadata"]["name"] = "job-b-1"
    assert gang.unfinished([done, pending]) == ["job-b-1"]
    assert gang.unfinished([done]) == []


@pytest.mark.parametrize(
    ("status", "drained"),
    [
        (None, False),
        ({}, False),
        ({"pendingWorkloads": 1, "reservingWorkloads": 0, "admittedWorkloads": 0}, False),
        ({"pendingWorkloads": 0, "reservingWorkloads": 1, "admittedWorkloads": 1}, False),
        ({"pendingWorkloads": 0, "reservingWorkloads": 0, "admittedWorkloads": 0}, True),
        ({"pendingWorkloads": 0, "conditions": []}, True),  # absent counts are 0
    ],
)
def test_queue_drained(status, drained):
    lq = {"metadata": {"name": "lq"}} if status is None else {"status": status}
    assert gang.queue_drained(lq) is drained


def test_gpu_job_parallelism_sets_completions_too():
    job = gpu_job("j", "ns", run_seconds=1, queue="lq", parallelism=3)
    assert job["spec"]["parallelism"] == job["spec"]["completions"] == 3
    one = gpu_job("j", "ns", run_seconds=1)
    assert one["spec"]["parallelism"] == one["spec"]["completions"] == 1


# --- robust controller ---------------------------------------------------------------------


def _hook(name, resources, groups=(KUEUE_GROUP,), ops=("CREATE", "UPDATE"), ca="Y2E=", url=None):
    cc = {"url": url} if url else {"service": {"namespace": "kueue-system", "name": "svc"}}
    if ca:
        cc["caBundle"] = ca
    rule = {"apiGroups": list(groups), "resources": list(resources), "operations": list(ops)}
    return {"name": name, "rules": [rule], "clientConfig": cc}


def _cfg(name, *hooks):
    return {"metadata": {"name": name}, "webhooks": list(hooks)}


def test_kueue_webhooks_found_by_group_and_checked_for_ca_bundle():
    configs = [
        _cfg(
            "kueue-validating-webhook-configuration",
            _hook("vclusterqueue.kb.io", ["clusterqueues"], url="https://127.0.0.1:1/x"),
            _hook("vworkload.kb.io", ["workloads"], ca=""),
        ),
        _cfg("other", _hook("vpod.example.com", ["pods"], groups=("",))),
    ]
    hooks = kc.kueue_webhooks(configs)
    assert [h["name"] for _, h in hooks] == ["vclusterqueue.kb.io", "vworkload.kb.io"]
    assert kc.without_ca_bundle(hooks) == ["kueue-validating-webhook-configuration/vworkload.kb.io"]
    assert kc.covers(hooks[0][1], "clusterqueues")
    assert not kc.covers(hooks[0][1], "clusterqueues", "DELETE")
    assert not kc.covers(hooks[1][1], "clusterqueues")
    assert kc.target(hooks[0][1]) == "https://127.0.0.1:1/x"
    assert kc.target(hooks[1][1]).startswith("service kueue-system/svc")


def test_crd_condition():
    crd = {"status": {"conditions": [_cond("NamesAccepted"), _cond("Established", "False")]}}
    assert kc.crd_condition(crd, "NamesAccepted") == "True"
    assert kc.crd_condition(crd, "Established") == "False"
    assert kc.crd_condition({}, "Established") == ""
    assert kc.crd_names()[0] == f"clusterqueues.{KUEUE_GROUP}"


def test_mismatched_cluster_queue_passes_the_crd_size_rule_but_names_another_resource():
    cq = kc.mismatched_cluster_queue("bad", "f", "nvidia.com/gpu")
    rg = cq["spec"]["resourceGroups"][0]
    # What the CRD's CEL rule checks: as many flavor resources as covered resources.
    assert all(len(f["resources"]) == len(rg["coveredResources"]) for f in rg["flavors"])
    assert rg["flavors"][0]["resources"][0]["name"] != rg["coveredResources"][0]
    assert kc.other_resource("cpu") == "memory"


def test_denial_problem_needs_a_kueue_webhook_named():
    msg = (
        'admission webhook "vclusterqueue.kb.io" denied the request: spec.resourceGroups[0]'
        '.flavors[0].resources[0].name: Invalid value: "cpu": must match the name in '
        "coveredResources"
    )
    assert kc.denial_problem(msg, ["vclusterqueue.kb.io"]) is None
    assert "none of Kueue's" in kc.denial_problem(msg, ["other.kb.io"])
    schema = 'ClusterQueue.kueue.x-k8s.io "bad" is invalid: spec: Invalid value: ...'
    assert "not through an admission webhook" in kc.denial_problem(schema, ["vclusterqueue.kb.io"])


def test_not_ready_pods():
    ready = {"metadata": {"name": "a"}, "status": {"phase": "Running",
             "conditions": [_cond("Ready")]}}  # fmt: skip
    crash = {"metadata": {"name": "b"}, "status": {"phase": "Running",
             "conditions": [_cond("Ready", "False")]}}  # fmt: skip
    assert kc.not_ready([ready, crash]) == ["b (Running)"]


# --- secure accelerator access -------------------------------------------------------------


def _view(visible="unset", nodes="", mounted=""):
    return dc.parse_probe(f"visible={visible}\ndevnodes={nodes}\nmounted={mounted}\n")


def test_parse_probe_reads_ids_and_device_nodes():
    v = _view("GPU-1,GPU-2", "/dev/nvidia0 /dev/nvidia1 ")
    assert v.ids == ("GPU-1", "GPU-2")
    assert v.device_nodes == ("/dev/nvidia0", "/dev/nvidia1")
    assert dc.parse_probe("something else") is None
    assert dc.parse_probe("visible=x\n") is None


@pytest.mark.parametrize("value", ["unset", "", "void", "none", "NONE"])
def test_values_that_give_no_gpu(value):
    assert _view(value).ids == ()


def test_device_list_strategy_takes_ids_from_the_mount():
    assert _view(dc.DEVICE_LIST_DIR, mounted="GPU-7 ").ids == ("GPU-7",)


def test_isolation_holds_for_distinct_single_gpus():
    a, b, c = _view("GPU-1"), _view("GPU-2"), _view()
    assert dc.isolation_problems({"a": a, "b": b}, {"c": c}) == []
    assert dc.ids_only([a, b])


def test_isolation_problems_name_each_violation():
    problems = dc.isolation_problems(
        {"a": _view("GPU-1"), "b": _view("GPU-1,GPU-2")},
        {"c": _view("all"), "d": _view("", "/dev/nvidia3")},
    )
    text = "\n".join(problems)
    assert "c requested no GPU but is given" in text
    assert "d requested no GPU but can open" in text
    assert "b requested one GPU but is given 2 id(s)" in text
    assert "b and a are both given GPU GPU-1" in text


def test_isolation_checks_device_nodes_where_present():
    a = _view("GPU-1", "/dev/nvidia0")
    b = _view("GPU-2", "/dev/nvidia0")
    problems = dc.isolation_problems({"a": a, "b": b}, {})
    assert problems == ["b and a can both open /dev/nvidia0"]
    assert not dc.ids_only([a, b])
    assert "every GPU" in dc.isolation_problems({"a": _view("all")}, {})[0]


def test_a_gpu_pod_that_sees_nothing_is_a_problem():
    assert "given 0 id(s)" in dc.isolation_problems({"a": _view()}, {})[0]


def _node(name, gpus, kwok=False, ready="True", unschedulable=False):
    meta = {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"} if kwok else {}}
    return {
        "metadata": meta,
        "spec": {"unschedulable": unschedulable},
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "conditions": [_cond("Ready", ready)],
        },
    }


def test_real_gpu_nodes_leave_out_kwok_unready_and_cordoned_nodes():
    nodes = [
        _node("kwok-0", 8, kwok=True),
        _node("real-1", 2),
        _node("real-0", 8),
        _node("down", 8, ready="False"),
        _node("cordoned", 8, unschedulable=True),
        _node("cpu", 0),
    ]
    assert dc.real_gpu_nodes(nodes, "nvidia.com/gpu") == [("real-0", 8), ("real-1", 2)]
    assert dc.is_kwok_node(nodes[0]) and not dc.is_kwok_node(nodes[1])


def test_probe_pod_spec():
    pods = WorkloadPods(image="img", pull_policy="Never", host_network=True, sleep=True)
    gpu = dc.probe_pod("a", "ns", "n0", gpus=1, pods=pods, labels={"k": "v"})
    spec = gpu["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "n0"}
    assert spec["hostNetwork"] is True and spec["restartPolicy"] == "Never"
    (ctr,) = spec["containers"]
    assert ctr["image"] == "img" and ctr["imagePullPolicy"] == "Never"
    assert ctr["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert "resources" not in dc.probe_pod("c", "ns", "n0", gpus=0)["spec"]["containers"][0]
    restricted = dc.probe_pod("c", "ns", "n0", gpus=0, pods=WorkloadPods(restricted=True))
    assert restricted["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX sh")
@pytest.mark.parametrize("visible", [None, "GPU-abc"])
def test_probe_script_output_parses(tmp_path, visible):
    out = tmp_path / "termination-log"
    script = dc.PROBE_SCRIPT.replace(dc.TERMINATION_LOG, str(out))
    env = {k: v for k, v in os.environ.items() if k != dc.ENV}
    if visible is not None:
        env[dc.ENV] = visible
    subprocess.run(["sh", "-c", script], env=env, check=True, timeout=10)
    view = dc.parse_probe(out.read_text())
    assert view is not None
    assert view.visible == (visible or "unset")
    assert view.ids == ((visible,) if visible else ())
