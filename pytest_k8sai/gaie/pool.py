"""The InferencePool and the model-server Pods it selects.

Endpoint layout on the local tier (no container engine): each replica is a Pod on a KWOK node
whose ``spec.podCIDR`` is a loopback range, so KWOK gives the Pods loopback IPs
(127.0.1.x), and each llm-d-inference-sim process listens on its own port (the sim binds all
interfaces, so two sims cannot share a port). The pool lists every replica's port in
``targetPorts`` and each Pod carries ``inference.networking.k8s.io/active-ports`` with its own
port, so the EPP sees exactly one endpoint per Pod: ``<pod IP>:<its port>``, reachable on
loopback. The real EPP discovers them through the apiserver, as on a cluster.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters.local.kwok_nodes import KWOK_ANNOTATION, KWOK_TAINT
from pytest_k8sai.clusters.objects import ownership_labels
from pytest_k8sai.core.apis import POOL_ACTIVE_PORTS, POOL_GROUP, POOL_VERSION
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.workloads.kwok import KWOK_TOLERATION

# In the GAIE module: the CRD of inference.networking.k8s.io (the only one the suite needs).
POOL_CRD_FILE = "config/crd/bases/inference.networking.k8s.io_inferencepools.yaml"
ACTIVE_PORTS = POOL_ACTIVE_PORTS
POD_LABEL = "k8sai.io/inference-pool"
INFERENCE_NODE = "kwok-inference-0"
# Each stack makes a node of its own (this prefix, a random suffix) and deletes it after: two
# runs at once on one cluster must not delete the node the other's replicas run on.
INFERENCE_NODE_PREFIX = "kwok-inference"
# KWOK hands out Pod IPs from the node's podCIDR: loopback, so test traffic stays on it.
INFERENCE_POD_CIDR = "127.0.1.0/24"


def crd_file(gaie_module: Path) -> Path:
    return gaie_module / POOL_CRD_FILE


def inference_pool(name: str, ports: list[int], epp_service: str, epp_port: int) -> dict[str, Any]:
    """An InferencePool (v1) selecting the Pods labelled ``POD_LABEL=name``."""
    if not 1 <= len(ports) <= 8:
        raise ValueError(f"an InferencePool has 1..8 targetPorts, got {len(ports)}")
    return {
        "apiVersion": f"{POOL_GROUP}/{POOL_VERSION}",
        "kind": "InferencePool",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {POD_LABEL: name}},
            "targetPorts": [{"number": p} for p in ports],
            "endpointPickerRef": {
                "group": "",
                "kind": "Service",
                "name": epp_service,
                "port": {"number": epp_port},
                "failureMode": "FailClose",
            },
        },
    }


def new_inference_node_name() -> str:
    return f"{INFERENCE_NODE_PREFIX}-{secrets.token_hex(3)}"


def inference_node(run_id: str, name: str = INFERENCE_NODE) -> dict[str, Any]:
    """A KWOK node for model-server Pods, its podCIDR on loopback."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": dict(KWOK_ANNOTATION),
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                **ownership_labels(run_id),
            },
        },
        "spec": {
            "podCIDR": INFERENCE_POD_CIDR,
            "podCIDRs": [INFERENCE_POD_CIDR],
            "taints": [dict(KWOK_TAINT)],
        },
        "status": {
            "allocatable": {"cpu": "64", "memory": "512Gi", "pods": "110"},
            "capacity": {"cpu": "64", "memory": "512Gi", "pods": "110"},
        },
    }


def replica_pod(
    pool: str, index: int, port: int, model: str, run_id: str, node: str = INFERENCE_NODE
) -> dict[str, Any]:
    """Replica ``index`` of the pool: a Pod on the inference node serving on ``port``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{pool}-{index}",
            "labels": {POD_LABEL: pool, **ownership_labels(run_id)},
            "annotations": {ACTIVE_PORTS: str(port)},
        },
        "spec": {
            "nodeName": node,
            "tolerations": [dict(KWOK_TOLERATION)],
            "containers": [
                {
                    "name": "vllm",
                    "image": "llm-d-inference-sim",
                    "args": ["--model", model, "--port", str(port)],
                    "ports": [{"containerPort": port}],
                }
            ],
        },
    }


def create_inference_node(core: client.CoreV1Api, run_id: str) -> str:
    """Create a KWOK inference node of the caller's own; return its name (delete it after)."""
    name = new_inference_node_name()
    core.create_node(inference_node(run_id, name))
    return name


def pod_state(pod: client.V1Pod) -> str:
    """A Pod's state in a few words, for a message about waiting on it."""
    status = pod.status or client.V1PodStatus()
    parts = [f"phase {status.phase or 'unknown'}", f"node {pod.spec.node_name or 'none'}"]
    for c in status.conditions or []:
        if c.status != "True":
            why = ": ".join(filter(None, [c.reason, c.message]))
            parts.append(f"{c.type}={c.status}" + (f" ({why})" if why else ""))
    if not status.pod_ip:
        parts.append("no IP")
    return ", ".join(parts)


def wait_pod_ips(
    core: client.CoreV1Api, namespace: str, names: list[str], timeout_s: float
) -> dict[str, str]:
    """Wait until every Pod is Ready with an IP; return name -> IP. After ``timeout_s`` (the
    profile's gaie_suite.start_timeout_s) a ClusterError names each Pod still waited for and
    the state it was last seen in."""
    deadline = time.monotonic() + timeout_s
    ips: dict[str, str] = {}
    last: dict[str, str] = {}
    while True:
        for name in names:
            if name in ips:
                continue
            try:
                pod = core.read_namespaced_pod(name, namespace, _request_timeout=10)
            except ApiException as exc:
                last[name] = f"GET answered HTTP {exc.status} {exc.reason}"
                continue
            ready = any(
                c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
            )
            if ready and pod.status.pod_ip:
                ips[name] = pod.status.pod_ip
            last[name] = pod_state(pod)
        if len(ips) == len(names):
            return ips
        if time.monotonic() > deadline:
            waiting = sorted(set(names) - set(ips))
            raise ClusterError(
                f"Model-server Pods in namespace {namespace} were not Ready with an IP within "
                f"{timeout_s:.0f}s (gaie_suite.start_timeout_s); last seen: "
                + "; ".join(f"{n}: {last.get(n, 'never read')}" for n in waiting)
                + ". KWOK plays their lifecycle on their node: see the kwok log."
            )
        time.sleep(0.05)
