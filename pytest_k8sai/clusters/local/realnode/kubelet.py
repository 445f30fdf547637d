"""The real node's kubelet: its KubeletConfiguration, command line, and the node status fix
a loopback node needs. Settings and the errors that led to them: docs/real-nodes.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from pytest_k8sai.clusters.base import CREATED_BY_LABEL, CREATED_BY_VALUE

NODE_TYPE_LABEL = "type"
NODE_TYPE = "real"


def config(
    *,
    run_dir: Path,
    port: int,
    healthz_port: int,
    containerd_socket: Path,
    cgroup_root: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "containerRuntimeEndpoint": f"unix://{containerd_socket}",
        "cgroupDriver": "cgroupfs",
        # Its own cgroup subtree, made in every v1 controller beforehand and removed after.
        "cgroupRoot": cgroup_root,
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        # This host's hierarchy is v1 (hybrid); kubelet 1.36 refuses v1 unless told not to.
        "failCgroupV1": False,
        "failSwapOn": False,
        # Else it adds KUBE-FIREWALL (with a DROP rule) and canary chains to the host's iptables.
        "makeIPTablesUtilChains": False,
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "staticPodPath": "",
        "podLogsDir": str(run_dir / "pod-logs"),
        # The host's disk is what it is: evict only when it is really full.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        # The device plugin's GPUs reach the node's capacity at the next status update: 1 s,
        # not the default 10 s, so a node is usable within the start budget. Unchanged status
        # is still reported only every nodeStatusReportFrequency (5 min).
        "nodeStatusUpdateFrequency": "1s",
        # No pulls: every image is imported into containerd beforehand (no registry here).
        "serializeImagePulls": False,
    }


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def node_labels(product: str, gpus: int) -> dict[str, str]:
    """What the GPU operator's feature discovery would put on an A100 node, plus ours."""
    return {
        NODE_TYPE_LABEL: NODE_TYPE,
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(gpus),
        "nvidia.com/gpu.present": "true",
        CREATED_BY_LABEL: CREATED_BY_VALUE,
    }


def args(
    *, config_file: Path, kubeconfig: Path, run_dir: Path, node: str, labels: dict[str, str]
) -> list[str]:
    root = run_dir / "kubelet"
    return [
        f"--config={config_file}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={root}",
        f"--cert-dir={root / 'pki'}",
        f"--hostname-override={node}",
        "--node-ip=127.0.0.1",
        "--node-labels=" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "--v=2",
    ]


def fix_node_addresses(api: client.ApiClient, node: str) -> bool:
    """The kubelet registers a loopback node with no addresses ("nodeIP can't be loopback
    address"); give it InternalIP 127.0.0.1 and nothing else. A Hostname address would make
    the apiserver resolve the node's name through the machine's DNS, outside loopback.
    Returns whether the node exists (and so was patched)."""
    core = client.CoreV1Api(api)
    try:
        current = core.read_node_status(node)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    want = [{"type": "InternalIP", "address": "127.0.0.1"}]
    have = [{"type": a.type, "address": a.address} for a in current.status.addresses or []]
    if have != want:
        core.patch_node_status(node, {"status": {"addresses": want}})
    return True


def gpus_advertised(api: client.ApiClient, node: str, resource: str) -> int:
    alloc = client.CoreV1Api(api).read_node_status(node).status.allocatable or {}
    try:
        return int(alloc.get(resource, "0"))
    except ValueError:
        return 0


def node_ready(api: client.ApiClient, node: str) -> bool:
    conds = client.CoreV1Api(api).read_node_status(node).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conds)
