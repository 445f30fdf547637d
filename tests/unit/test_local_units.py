"""Unit tests of the local tier's pure parts: build recipes, stages, node and Job builders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pytest_k8sai.clusters.local import build, kwok_nodes
from pytest_k8sai.clusters.local.controlplane import Ports
from pytest_k8sai.core.errors import BuildError
from pytest_k8sai.core.profiles import GpuNodes
from pytest_k8sai.kueue.objects import ClusterQueueSpec, Quota
from pytest_k8sai.measure.prometheus import Histogram, histogram
from pytest_k8sai.workloads import kwok
from pytest_k8sai.workloads.jobs import gpu_job


def test_go_output_name_skips_major_version_suffix():
    assert build.go_output_name("go.etcd.io/etcd/server/v3") == "server"
    assert build.go_output_name("k8s.io/kubernetes/cmd/kube-apiserver") == "kube-apiserver"


def test_components_are_pinned_and_etcd_is_named_etcd():
    comps = build.load_components()
    assert set(comps) == {"kubernetes", "kubelet", "etcd", "kwok", "kueue", "inference-sim", "epp"}
    # The kubelet is the control plane's own release, built only for real nodes.
    assert (comps["kubelet"].module, comps["kubelet"].version) == (
        comps["kubernetes"].module,
        comps["kubernetes"].version,
    )
    assert comps["kubelet"].on_demand and not comps["kubernetes"].on_demand
    for c in comps.values():
        assert c.version.startswith("v") and c.version.count(".") == 2, c
    assert comps["etcd"].binary_name("go.etcd.io/etcd/server/v3") == "etcd"


def test_kubernetes_ldflags_stamp_the_real_version():
    flags = build.load_components()["kubernetes"].ldflag_string()
    v = build.load_components()["kubernetes"].version
    assert f"version.gitVersion={v}" in flags
    assert "gitMinor=" + v.split(".")[1] in flags


def test_cache_key_changes_with_version_and_go():
    c = build.load_components()["kwok"]
    assert c.key("go1.26.8") != c.key("go1.27.0")
    assert c.key("go1.26.8") != c.model_copy(update={"version": "v0.8.1"}).key("go1.26.8")


def test_missing_go_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BuildError, match="no 'go' command is on PATH"):
        build.go_version()


def test_cache_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("K8SAI_CACHE_DIR", str(tmp_path))
    assert build.cache_root() == tmp_path


def test_ports_are_distinct():
    p = Ports.allocate()
    values = list(p.model_dump().values())
    assert len(set(values)) == len(values)


def test_run_for_sets_delay_and_jitter_equal():
    ann = kwok.run_for(2.5)
    assert ann["pod-complete.stage.kwok.x-k8s.io/delay"] == "2500ms"
    assert ann["pod-complete.stage.kwok.x-k8s.io/jitter-delay"] == "2500ms"
    assert ann["pod-create.stage.kwok.x-k8s.io/jitter-delay"] == "0ms"
    with pytest.raises(ValueError):
        kwok.run_for(-1)


def test_gpu_node_carries_gpus_and_pods_capacity():
    node = kwok_nodes.gpu_node("n0", GpuNodes(extra_resources={"nvidia.com/mig-1g.5gb": 7}))
    alloc = node["status"]["allocatable"]
    assert alloc["nvidia.com/gpu"] == "8" and alloc["pods"] == "110"
    assert alloc["nvidia.com/mig-1g.5gb"] == "7"
    assert node["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB"


def test_gpu_job_is_suspended_tolerates_kwok_and_asks_for_gpus():
    job = gpu_job("j", "ns", run_seconds=1, gpus=2, queue="lq", priority_class="high")
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"] == {
        "kueue.x-k8s.io/queue-name": "lq",
        "kueue.x-k8s.io/priority-class": "high",
    }
    pod = job["spec"]["template"]
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"nvidia.com/gpu": "2"}
    assert kwok.KWOK_TOLERATION in pod["spec"]["tolerations"]
    assert gpu_job("j", "ns", run_seconds=1)["spec"]["suspend"] is False


def test_cluster_queue_body():
    body = ClusterQueueSpec(
        name="cq",
        flavor="f",
        cohort="team",
        quotas=[Quota(name="nvidia.com/gpu", nominal="4", borrowing_limit="4")],
    ).body()
    rg = body["spec"]["resourceGroups"][0]
    assert rg["coveredResources"] == ["nvidia.com/gpu"]
    assert rg["flavors"][0]["resources"][0] == {
        "name": "nvidia.com/gpu",
        "nominalQuota": "4",
        "borrowingLimit": "4",
    }
    assert body["spec"]["cohortName"] == "team"


def _hist(buckets, count):
    return Histogram("h", tuple(buckets), count, 0.0)


def test_histogram_quantile_interpolates_like_promql():
    h = _hist([(0.005, 50), (0.01, 90), (0.025, 100), (math.inf, 100)], 100)
    assert h.quantile(0.5) == pytest.approx(0.005)
    assert h.quantile(0.7) == pytest.approx(0.005 + 0.005 * 20 / 40)
    assert h.quantile(0.99) == pytest.approx(0.01 + 0.015 * 9 / 10)
    assert math.isnan(_hist([(math.inf, 0)], 0).quantile(0.5))
    # Samples above the last finite bound: PromQL answers with that bound.
    assert _hist([(0.005, 1), (math.inf, 10)], 10).quantile(0.99) == 0.005


def test_histogram_parses_and_sums_series():
    text = (
        "\n".join(
            [
                "# TYPE m_seconds histogram",
                'm_seconds_bucket{result="success",le="0.005"} 3',
                'm_seconds_bucket{result="success",le="+Inf"} 4',
                'm_seconds_sum{result="success"} 0.02',
                'm_seconds_count{result="success"} 4',
                'm_seconds_bucket{result="inadmissible",le="0.005"} 1',
                'm_seconds_bucket{result="inadmissible",le="+Inf"} 1',
                'm_seconds_sum{result="inadmissible"} 0.001',
                'm_seconds_count{result="inadmissible"} 1',
            ]
        )
        + "\n"
    )
    ok = histogram(text, "m_seconds", result="success")
    assert ok.count == 4 and ok.buckets == ((0.005, 3.0), (math.inf, 4.0))
    assert histogram(text, "m_seconds").count == 5
    with pytest.raises(KeyError):
        histogram(text, "absent")


def test_free_ports_avoid_the_ephemeral_range():
    from pytest_k8sai.clusters.local.processes import EPHEMERAL_RANGE, LOWEST_PORT, free_port

    low = int(EPHEMERAL_RANGE.read_text().split()[0]) if EPHEMERAL_RANGE.exists() else 0
    if low - LOWEST_PORT < 1000:
        pytest.skip(f"ephemeral range starts at {low}: no room below it")
    assert all(LOWEST_PORT <= free_port() < low for _ in range(20))


def test_supervisor_reports_every_start_so_a_half_started_cluster_can_be_stopped(tmp_path):
    from pytest_k8sai.clusters.local.processes import Supervisor, stop

    seen: list[list[str]] = []
    sup = Supervisor(tmp_path, on_start=lambda recs: seen.append([r.name for r in recs]))
    try:
        sup.start("a", Path("/bin/sleep"), ["30"])
        sup.start("b", Path("/bin/sleep"), ["30"])
        assert seen == [["a"], ["a", "b"]]
    finally:
        stop(list(sup.records))
