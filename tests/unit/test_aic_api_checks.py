"""The AI-conformance API checks' decisions (pytest_k8sai/clusters/aicprobes.py) on plain dicts,
shaped as the API server, GPU feature discovery, NVIDIA's DRA driver, DCGM exporter and
Prometheus write them."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_k8sai.clusters import aicprobes as probes
from pytest_k8sai.clusters.base import CREATED_BY_LABEL, CREATED_BY_VALUE, RUN_ID_LABEL

JSON = dict[str, Any]


def _cond(ctype: str, status: str, reason: str = "") -> JSON:
    return {"type": ctype, "status": status, "reason": reason}


def _node(name: str, labels: dict[str, str] | None = None, **alloc: str) -> JSON:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "status": {"allocatable": {"cpu": "96", **alloc}},
    }


# -- conditions and Gateway API ----------------------------------------------------------------


def test_conditions_read_objects_and_status_entries() -> None:
    obj = {"status": {"conditions": [_cond("Accepted", "True", "Accepted")]}}
    parent = {"conditions": [_cond("Accepted", "False", "NotAllowedByListeners")]}
    assert probes.is_true(obj, "Accepted")
    assert not probes.is_true(parent, "Accepted")
    assert not probes.is_true({}, "Accepted")
    assert not probes.is_true(None, "Accepted")
    assert probes.describe(probes.conditions(parent), "Accepted", "ResolvedRefs") == (
        "Accepted=False (NotAllowedByListeners), ResolvedRefs: not set"
    )
    assert probes.describe({}) == "no conditions"


def _gateway_class(name: str, *conds: JSON) -> JSON:
    return {
        "metadata": {"name": name},
        "spec": {"controllerName": f"example.com/{name}"},
        "status": {"conditions": list(conds)},
    }


def test_only_classes_a_controller_accepted_count() -> None:
    classes = [
        _gateway_class("zeta", _cond("Accepted", "True", "Accepted")),
        _gateway_class("waiting", _cond("Accepted", "Unknown", "Pending")),
        _gateway_class("alpha", _cond("Accepted", "True", "Accepted")),
        _gateway_class("bare"),
    ]
    assert probes.accepted_classes(classes) == ["alpha", "zeta"]
    states = probes.class_states(classes)
    assert "waiting (example.com/waiting): Accepted=Unknown (Pending)" in states
    assert "bare (example.com/bare): Accepted: not set" in states


def test_route_has_weighted_backends_and_an_openai_header_match() -> None:
    backends = [probes.Backend("a", 8000, 80), probes.Backend("b", 8000, 20)]
    route = probes.weighted_route_body(
        "r", "gw", backends, path="/v1/chat/completions", header=("x-model-name", "m"),
        version="v1beta1",
    )  # fmt: skip
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
    assert route["spec"]["parentRefs"] == [{"name": "gw"}]
    (rule,) = route["spec"]["rules"]
    (match,) = rule["matches"]
    assert match["path"] == {"type": "PathPrefix", "value": "/v1/chat/completions"}
    assert match["headers"] == [{"type": "Exact", "name": "x-model-name", "value": "m"}]
    assert [(b["name"], b["port"], b["weight"]) for b in rule["backendRefs"]] == [
        ("a", 8000, 80),
        ("b", 8000, 20),
    ]
    gw = probes.gateway_body("gw", "cls")
    assert gw["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gw["spec"]["gatewayClassName"] == "cls"
    assert gw["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    svc = probes.backend_service_body("a", 8000, {"k8sai.io/run-id": "r1"})
    assert svc["metadata"]["labels"] == {"k8sai.io/run-id": "r1"}
    assert svc["spec"]["ports"][0]["port"] == 8000


def test_route_parent_is_the_entry_for_our_gateway() -> None:
    ours = {
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"},
        "controllerName": "example.com/gw",
        "conditions": [_cond("Accepted", "True"), _cond("ResolvedRefs", "True")],
    }
    route = {
        "status": {
            "parents": [
                {"parentRef": {"name": "gw", "namespace": "elsewhere"}, "conditions": []},
                {"parentRef": {"name": "gw", "kind": "Service"}, "conditions": []},
                {"parentRef": {"name": "other"}, "conditions": []},
                ours,
            ]
        }
    }
    assert probes.route_parent(route, "gw", "ns") == ours
    assert probes.route_parent({"status": {}}, "gw", "ns") is None
    assert probes.route_parent({}, "gw", "ns") is None


def test_pick_version_prefers_in_order() -> None:
    assert probes.pick_version(["v1beta1", "v1"], probes.GATEWAY_VERSIONS) == "v1"
    assert probes.pick_version(["v1beta2", "v1beta1"], probes.DRA_VERSIONS) == "v1beta2"
    assert probes.pick_version(["v1alpha3"], probes.DRA_VERSIONS) is None


# -- nodes: driver labels and sharing ---------------------------------------------------------


def test_driver_version_from_gfd_labels() -> None:
    full = {"nvidia.com/cuda.driver-version.full": "550.54.15"}
    assert probes.driver_version_from_labels(full) == (
        "nvidia.com/cuda.driver-version.full",
        "550.54.15",
    )
    parts = {
        "nvidia.com/cuda.driver-version.major": "550",
        "nvidia.com/cuda.driver-version.minor": "54",
        "nvidia.com/cuda.driver-version.revision": "15",
    }
    assert probes.driver_version_from_labels(parts) == (
        "nvidia.com/cuda.driver-version.*",
        "550.54.15",
    )
    old = {"nvidia.com/cuda.driver.major": "535", "nvidia.com/cuda.driver.minor": "104"}
    assert probes.driver_version_from_labels(old) == ("nvidia.com/cuda.driver.*", "535.104")
    # A major alone is not a version; an empty full label falls back to the parts.
    assert probes.driver_version_from_labels({"nvidia.com/cuda.driver.major": "535"}) is None
    assert probes.driver_version_from_labels({"nvidia.com/cuda.driver-version.full": " "}) is None
    assert probes.driver_version_from_labels({}) is None


def test_runtime_version_from_gfd_labels() -> None:
    assert probes.runtime_version_from_labels({"nvidia.com/cuda.runtime-version.full": "12.4"}) == (
        "nvidia.com/cuda.runtime-version.full",
        "12.4",
    )
    old = {"nvidia.com/cuda.runtime.major": "12", "nvidia.com/cuda.runtime.minor": "2"}
    assert probes.runtime_version_from_labels(old) == ("nvidia.com/cuda.runtime.*", "12.2")
    assert probes.runtime_version_from_labels({}) is None


def test_gpu_and_own_nodes() -> None:
    own = _node(
        "mig-slices-0", {CREATED_BY_LABEL: CREATED_BY_VALUE, RUN_ID_LABEL: "r1"},
        **{"nvidia.com/mig-1g.5gb": "7"},
    )  # fmt: skip
    assert probes.is_own(own) and probes.is_gpu_node(own)
    # The local tier's own nodes are that cluster (its tier says they are emulated).
    tier = _node("kwok-gpu-0", {CREATED_BY_LABEL: CREATED_BY_VALUE}, **{"nvidia.com/gpu": "8"})
    assert not probes.is_own(tier) and probes.is_gpu_node(tier)
    assert probes.is_gpu_node(_node("g", **{"nvidia.com/gpu": "1"}))
    assert probes.is_gpu_node(_node("m", **{"nvidia.com/mig-1g.5gb": "7"}))
    assert probes.is_gpu_node(_node("d", **{"mig.das.com/1g.5gb": "7"}))
    assert probes.is_gpu_node(_node("l", {"nvidia.com/gpu.present": "true"}))
    assert not probes.is_gpu_node(_node("cpu", **{"nvidia.com/gpu": "0"}))
    assert not probes.is_own(_node("cpu", {CREATED_BY_LABEL: "someone-else"}))
    assert probes.count("1k") == 0 and probes.count(None) == 0 and probes.count("3") == 3


def test_node_sharing_names_each_kind_of_shared_gpu() -> None:
    mig = _node("m", **{"nvidia.com/mig-1g.5gb": "7", "nvidia.com/mig-3g.20gb": "0"})
    assert probes.node_sharing(mig) == ["nvidia.com/mig-1g.5gb: 7 allocatable (MIG)"]
    das = _node("d", **{"mig.das.com/2g.10gb": "3"})
    assert probes.node_sharing(das) == ["mig.das.com/2g.10gb: 3 allocatable (DAS)"]
    sliced = _node(
        "t",
        {"nvidia.com/gpu.sharing-strategy": "time-slicing", "nvidia.com/gpu.replicas": "4"},
        **{"nvidia.com/gpu": "4"},
    )
    assert probes.node_sharing(sliced) == [
        "nvidia.com/gpu.sharing-strategy=time-slicing",
        "nvidia.com/gpu.replicas=4",
    ]
    mig_replicas = _node("r", {"nvidia.com/mig-1g.5gb.replicas": "2"})
    assert probes.node_sharing(mig_replicas) == ["nvidia.com/mig-1g.5gb.replicas=2"]
    # What GFD writes on an unshared GPU node.
    plain = _node(
        "p",
        {"nvidia.com/gpu.sharing-strategy": "none", "nvidia.com/gpu.replicas": "1"},
        **{"nvidia.com/gpu": "8"},
    )
    assert probes.node_sharing(plain) == []


# -- DRA ResourceSlices -------------------------------------------------------------------------


def _slice(node: str, *devices: JSON, driver: str = "gpu.nvidia.com") -> JSON:
    return {
        "metadata": {"name": f"{node}-{driver}"},
        "spec": {
            "driver": driver,
            "nodeName": node,
            "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
            "devices": list(devices),
        },
    }


GPU0_V1 = {
    "name": "gpu-0",
    "attributes": {
        "type": {"string": "gpu"},
        "driverVersion": {"version": "550.54.15"},
        "cudaDriverVersion": {"version": "12.4.0"},
        "resource.kubernetes.io/pciBusID": {"string": "0000:3b:00.0"},
    },
}
MIG_V1BETA1 = {
    "name": "gpu-0-mig-1g5gb-0",
    "basic": {
        "attributes": {
            "type": {"string": "mig"},
            "gpu.nvidia.com/driverVersion": {"version": "550.54.15"},
            "profile": {"string": "1g.5gb"},
        }
    },
}


def test_device_attributes_from_v1_and_v1beta1() -> None:
    attrs = probes.device_attributes(GPU0_V1)
    assert attrs["driverVersion"] == "550.54.15"
    assert attrs["pciBusID"] == "0000:3b:00.0"  # qualified names also by their short name
    beta = probes.device_attributes(MIG_V1BETA1)
    assert beta["driverVersion"] == "550.54.15" and beta["type"] == "mig"
    assert probes.device_attributes({"attributes": {"ok": {"bool": True}, "n": {"int": 3}}}) == {
        "ok": "true",
        "n": "3",
    }
    assert probes.device_attributes({"name": "bare"}) == {}


def test_dra_versions_and_partitions() -> None:
    slices = [
        _slice("node-a", GPU0_V1, MIG_V1BETA1),
        _slice("node-b", {"name": "nic-0", "attributes": {}}, driver="dra.net"),
    ]
    found = probes.dra_versions(slices)
    assert [(v.node, v.device, v.key, v.version) for v in found] == [
        ("node-a", "gpu-0", "driverVersion", "550.54.15"),
        ("node-a", "gpu-0-mig-1g5gb-0", "driverVersion", "550.54.15"),
    ]
    runtime = probes.dra_versions(slices, probes.DRA_RUNTIME_VERSION_ATTRS)
    assert [v.version for v in runtime] == ["12.4.0"]
    assert probes.dra_partitions(slices) == ["node-a/gpu-0-mig-1g5gb-0"]
    pool_only = {"spec": {"pool": {"name": "p"}, "devices": [{"name": "x"}]}}
    assert probes.slice_node(pool_only) == "(pool p)"


# -- APIServices --------------------------------------------------------------------------------


def _apiservice(name: str, group: str, available: str, reason: str = "", svc: bool = True) -> JSON:
    return {
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "version": name.split(".", 1)[0],
            "service": {"namespace": "monitoring", "name": "adapter"} if svc else None,
        },
        "status": {"conditions": [_cond("Available", available, reason)]},
    }


def test_metrics_apis_only_the_groups_asked_with_availability() -> None:
    items = [
        _apiservice("v1beta1.custom.metrics.k8s.io", "custom.metrics.k8s.io", "True", "Passed"),
        _apiservice(
            "v1beta1.external.metrics.k8s.io",
            "external.metrics.k8s.io",
            "False",
            "FailedDiscoveryCheck",
        ),  # fmt: skip
        _apiservice("v1.apps", "apps", "True", "Local", svc=False),
    ]
    apis = probes.metrics_apis(items)
    assert [(a.group, a.available, a.why) for a in apis] == [
        ("custom.metrics.k8s.io", True, "Passed"),
        ("external.metrics.k8s.io", False, "FailedDiscoveryCheck"),
    ]
    no_status = dict(items[0], status={})
    (a,) = probes.metrics_apis([no_status])
    assert not a.available and a.why == "service monitoring/adapter"


# -- Prometheus targets -------------------------------------------------------------------------


def test_monitor_targets_count_only_what_monitors_discovered() -> None:
    doc = {
        "status": "success",
        "data": {
            "activeTargets": [
                {"scrapePool": "serviceMonitor/ml/vllm/0", "health": "up"},
                {"scrapePool": "serviceMonitor/ml/vllm/0", "health": "up"},
                {"scrapePool": "podMonitor/ml/trainer/0", "health": "down"},
                {"scrapePool": "kubernetes-apiservers", "health": "up"},  # a static job
            ]
        },
    }
    t = probes.monitor_targets(doc)
    assert (t.up, t.total, t.pools) == (2, 3, ["serviceMonitor/ml/vllm/0"])
    assert probes.monitor_targets({"status": "success", "data": {}}).total == 0
    with pytest.raises(ValueError, match="status 'error'"):
        probes.monitor_targets({"status": "error", "error": "bad"})


# -- metrics pages ------------------------------------------------------------------------------

DCGM_PAGE = """\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",device="nvidia0",Hostname="n1"} 37
DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",device="nvidia1",Hostname="n1"} 0
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-a",device="nvidia0",Hostname="n1"} 1024
DCGM_FI_DEV_FB_USED{gpu="1",UUID="GPU-b",device="nvidia1",Hostname="n1"} 0
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="n1"} 41
"""


def test_dcgm_page_has_per_device_utilisation_and_memory() -> None:
    found = probes.accelerator_metrics(DCGM_PAGE)
    assert found.ok and found.missing() == []
    assert found.devices == ["n1/gpu=0", "n1/gpu=1"]
    assert found.optional == {"DCGM_FI_DEV_GPU_TEMP": 1}
    assert found.unlabelled == []


def test_metrics_without_memory_or_device_labels_do_not_pass() -> None:
    no_memory = "\n".join(line for line in DCGM_PAGE.splitlines() if "FB_USED" not in line)
    found = probes.accelerator_metrics(no_memory + "\n")
    assert not found.ok
    assert found.missing() == ["per-device memory (DCGM_FI_DEV_FB_USED or DCGM_FI_DEV_FB_FREE)"]
    node_level = 'DCGM_FI_DEV_GPU_UTIL 37\nDCGM_FI_DEV_FB_FREE{Hostname="n1"} 10\n'
    found = probes.accelerator_metrics(node_level)
    assert not found.ok and len(found.missing()) == 2
    assert found.unlabelled == ["DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_UTIL"]
    with pytest.raises(ValueError):
        probes.accelerator_metrics("<html><body>login</body></html>\n")


def test_metrics_port_and_proxy_path() -> None:
    gpu_operator = {"spec": {"ports": [{"name": "gpu-metrics", "port": 9400}]}}
    assert probes.metrics_port(gpu_operator) == "gpu-metrics"
    chart = {"spec": {"ports": [{"name": "other", "port": 1}, {"name": "metrics", "port": 9400}]}}
    assert probes.metrics_port(chart) == "metrics"
    assert probes.metrics_port({"spec": {"ports": [{"port": 9400}]}}) == "9400"
    assert probes.metrics_port({"spec": {}}) is None
    assert probes.service_proxy_path("gpu-operator", "dcgm", "gpu-metrics", "/metrics") == (
        "/api/v1/namespaces/gpu-operator/services/dcgm:gpu-metrics/proxy/metrics"
    )
