"""Which GPUs a container can reach: a probe pod that reports what it sees through its
termination message, the parser of that message, and the isolation rules a set of probes must
satisfy (each GPU pod sees exactly its own GPU, a pod without GPUs sees none).

Only meaningful where containers really run: KWOK nodes (annotated kwok.x-k8s.io/node) start
no container, so ``real_gpu_nodes`` leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_k8sai.clusters.local.kwok_nodes import KWOK_ANNOTATION
from pytest_k8sai.core.profiles import WorkloadPods
from pytest_k8sai.workloads.jobs import RESTRICTED, pod_security

ENV = "NVIDIA_VISIBLE_DEVICES"
# NVIDIA's device plugin in its volume-mounts strategy sets the variable to this directory and
# mounts one empty file per allocated GPU id into it; the ids are then the file names.
DEVICE_LIST_DIR = "/var/run/nvidia-container-devices"
# Values of the variable that give a container no GPU ("void" and "none" are the NVIDIA
# container runtime's own; "unset" is what the probe writes when the variable is absent).
NO_GPU = frozenset({"", "unset", "void", "none"})
TERMINATION_LOG = "/dev/termination-log"
# One line of POSIX sh (busybox has every command): the variable as set (or "unset"), the GPU
# device nodes /dev/nvidia<N> (not nvidiactl/nvidia-uvm, which every GPU container shares),
# and the device-list mount; written to the termination message, read back from the pod's
# status, so no log access is needed.
PROBE_SCRIPT = (
    f'v="${{{ENV}-unset}}"; '
    "d=$(ls -d /dev/nvidia[0-9]* 2>/dev/null | tr '\\n' ' '); "
    f"m=$(ls {DEVICE_LIST_DIR} 2>/dev/null | tr '\\n' ' '); "
    f'printf \'visible=%s\\ndevnodes=%s\\nmounted=%s\\n\' "$v" "$d" "$m" > {TERMINATION_LOG}'
)
KWOK_NODE_KEY = next(iter(KWOK_ANNOTATION))


def is_kwok_node(node: dict[str, Any]) -> bool:
    """True for a node KWOK plays (no kubelet, no container runtime behind it)."""
    return KWOK_NODE_KEY in (node.get("metadata", {}).get("annotations") or {})


def _count(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def real_gpu_nodes(nodes: list[dict[str, Any]], resource: str) -> list[tuple[str, int]]:
    """(name, allocatable GPUs) of the Ready, schedulable nodes that run containers and
    offer ``resource``, most GPUs first."""
    out = []
    for node in nodes:
        spec, status = node.get("spec", {}), node.get("status", {})
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        gpus = _count((status.get("allocatable") or {}).get(resource, 0))
        if gpus > 0 and ready and not spec.get("unschedulable") and not is_kwok_node(node):
            out.append((node["metadata"]["name"], gpus))
    return sorted(out, key=lambda ng: -ng[1])


def probe_pod(
    name: str,
    namespace: str,
    node: str,
    *,
    gpus: int,
    resource: str = "nvidia.com/gpu",
    pods: WorkloadPods | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod on ``node`` (through the scheduler, by its hostname label, so GPUs are counted)
    asking for ``gpus`` of ``resource`` (0: none) that runs PROBE_SCRIPT once and exits 0.
    ``pods``: the profile's workload (image, pull policy, host network, securityContext); the
    image must hold a POSIX shell."""
    pods = pods or WorkloadPods()
    container: dict[str, Any] = {
        "name": "probe",
        "image": pods.image,
        "imagePullPolicy": pods.pull_policy,
        "command": ["sh", "-c", PROBE_SCRIPT],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
    }
    if gpus:
        container["resources"] = {
            "requests": {resource: str(gpus)},
            "limits": {resource: str(gpus)},
        }
    if pods.restricted:
        container["securityContext"] = RESTRICTED
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "nodeSelector": {"kubernetes.io/hostname": node},
        # GPU nodes are often tainted for their resource; the GPU-less probe must land there too.
        "tolerations": [{"key": resource, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [container],
    }
    if pods.host_network:
        spec["hostNetwork"] = True
    if pods.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in pods.image_pull_secrets]
    if pods.restricted:
        spec["securityContext"] = pod_security(pods)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": spec,
    }


@dataclass(frozen=True)
class DeviceView:
    """What one probe container saw."""

    visible: str  # NVIDIA_VISIBLE_DEVICES as set, or "unset"
    device_nodes: tuple[str, ...]  # /dev/nvidia<N> present in the container
    mounted: tuple[str, ...]  # ids in DEVICE_LIST_DIR

    @property
    def ids(self) -> tuple[str, ...]:
        """The GPU ids the container is given (empty: none)."""
        value = self.visible.strip()
        if value.lower() in NO_GPU:
            return ()
        if value.rstrip("/") == DEVICE_LIST_DIR:
            return self.mounted
        return tuple(i.strip() for i in value.split(",") if i.strip())

    def describe(self) -> str:
        nodes = ",".join(self.device_nodes) or "none"
        return f"{ENV}={self.visible!r}, {len(self.device_nodes)} device node(s) ({nodes})"


def parse_probe(message: str) -> DeviceView | None:
    """The probe's termination message as a DeviceView; None when it is not the probe's
    (a missing line means the script did not run to its end)."""
    fields: dict[str, str] = {}
    for line in message.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value
    if not {"visible", "devnodes", "mounted"} <= fields.keys():
        return None
    return DeviceView(
        visible=fields["visible"].strip(),
        device_nodes=tuple(fields["devnodes"].split()),
        mounted=tuple(fields["mounted"].split()),
    )


def isolation_problems(
    with_gpu: dict[str, DeviceView], without: dict[str, DeviceView]
) -> list[str]:
    """What breaks isolation: each pod in ``with_gpu`` (one GPU requested) must see exactly one
    GPU id, and no two the same; each pod in ``without`` must see no GPU id and no device node.
    Device nodes, where a pod has any, must follow the same rules (exactly one, not shared)."""
    problems = []
    for name, view in without.items():
        if view.ids:
            problems.append(f"{name} requested no GPU but is given {view.describe()}")
        elif view.device_nodes:
            problems.append(f"{name} requested no GPU but can open {view.describe()}")
    seen_ids: dict[str, str] = {}
    seen_nodes: dict[str, str] = {}
    for name, view in with_gpu.items():
        if "all" in (i.lower() for i in view.ids):
            problems.append(f"{name} requested one GPU but is given every GPU: {view.describe()}")
        elif len(view.ids) != 1:
            problems.append(
                f"{name} requested one GPU but is given {len(view.ids)} id(s): {view.describe()}"
            )
        if view.device_nodes and len(view.device_nodes) != 1:
            problems.append(f"{name} requested one GPU but can open {view.describe()}")
        for gpu in view.ids:
            if gpu in seen_ids:
                problems.append(f"{name} and {seen_ids[gpu]} are both given GPU {gpu}")
            seen_ids.setdefault(gpu, name)
        for dev in view.device_nodes:
            if dev in seen_nodes:
                problems.append(f"{name} and {seen_nodes[dev]} can both open {dev}")
            seen_nodes.setdefault(dev, name)
    return problems


def ids_only(views: list[DeviceView]) -> bool:
    """True when GPU pods got ids but no device node: emulated GPUs (a device plugin that
    hands out ids), where isolation of real devices is not shown."""
    return bool(views) and all(v.ids and not v.device_nodes for v in views)
