"""KWOK on the local tier: the stages it plays (read from the sigs.k8s.io/kwok module) and the
simulated GPU nodes a profile asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from pytest_k8sai.clusters.base import CREATED_BY_LABEL, CREATED_BY_VALUE
from pytest_k8sai.core.profiles import GpuNodes

# Stage sets from the kwok module: fast node start-up, lease heartbeats, and the "general" pod
# lifecycle whose delays are read from each pod's annotations (see pytest_k8sai.workloads.kwok).
STAGE_DIRS = (
    "kustomize/stage/node/fast",
    "kustomize/stage/node/heartbeat-with-lease",
    "kustomize/stage/pod/general",
)
KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


def stages_yaml(kwok_module: Path) -> str:
    """Concatenate the Stage documents each chosen kustomization lists, in its order."""
    docs = []
    for d in STAGE_DIRS:
        kustomization = yaml.safe_load((kwok_module / d / "kustomization.yaml").read_text())
        docs += [(kwok_module / d / res).read_text().strip() for res in kustomization["resources"]]
    return "\n---\n".join(docs) + "\n"


def gpu_node(
    name: str,
    spec: GpuNodes,
    *,
    whole_gpus: int | None = None,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A KWOK node with the profile's GPUs. ``whole_gpus`` overrides how many whole GPUs it
    exposes as nvidia.com/gpu (0 for a node whose GPUs are all cut into MIG slices, which the
    mixed strategy exposes only as nvidia.com/mig-* resources from ``extra_resources``)."""
    gpus = spec.gpus_per_node if whole_gpus is None else whole_gpus
    resources = {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.max_pods)}
    if gpus:
        resources["nvidia.com/gpu"] = str(gpus)
    resources |= {k: str(v) for k, v in spec.extra_resources.items()}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": dict(KWOK_ANNOTATION),
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                GPU_PRODUCT_LABEL: spec.product,
                "nvidia.com/gpu.count": str(spec.gpus_per_node),
                CREATED_BY_LABEL: CREATED_BY_VALUE,
                **(extra_labels or {}),
            },
        },
        "spec": {"taints": [dict(KWOK_TAINT)]},
        "status": {"allocatable": resources, "capacity": dict(resources)},
    }


def create_gpu_nodes(api: client.ApiClient, spec: GpuNodes) -> list[str]:
    core = client.CoreV1Api(api)
    names = [f"kwok-gpu-{i}" for i in range(spec.count)]
    for name in names:
        # Status is kept by KWOK's node-initialize stage, which fills only what is missing.
        core.create_node(gpu_node(name, spec))
    return names


def nodes_ready(api: client.ApiClient, names: list[str]) -> bool:
    core = client.CoreV1Api(api)
    for name in names:
        conds = core.read_node_status(name).status.conditions or []
        if not any(c.type == "Ready" and c.status == "True" for c in conds):
            return False
    return True
