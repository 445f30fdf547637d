"""AI conformance, secure_accelerator_access: a container reaches only the accelerators it was
allocated.

Like the upstream check (kubernetes-sigs/ai-conformance TestSecureAcceleratorAccess): three
probe pods on one GPU node that runs containers. A and B each request one GPU, C requests
none. Each writes what it sees (NVIDIA_VISIBLE_DEVICES, the /dev/nvidia<N> device nodes) to
its termination message and exits 0; the message is read back from the pod's status. C must
see no GPU, A and B exactly one each, and not the same one.

Only a node with a kubelet and a container runtime can show this: KWOK nodes start no
container, so on a tier made only of KWOK GPU nodes the check is untestable (left for
attestation). Where the GPUs are emulated by a device plugin that hands out ids but no device
nodes (the local-nodes tier), the ids are checked and the evidence is partial.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_k8sai.clusters.objects import ownership_labels
from pytest_k8sai.workloads.devicecheck import (
    ENV,
    DeviceView,
    ids_only,
    is_kwok_node,
    isolation_problems,
    parse_probe,
    probe_pod,
    real_gpu_nodes,
)

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.aic("secure_accelerator_access"),
    pytest.mark.requires("gpu"),
]

# The image is present on the local real node (pull policy Never); an existing cluster may
# pull it first, and its GPU node may be busy for a while.
POD_TIMEOUT_S = 180.0
POLL_S = 0.2
PROBES = {"gpu-a": 1, "gpu-b": 1, "no-gpu": 0}  # pod name -> GPUs requested


def _why_not_done(pod: Any) -> str:
    """One line on where a pod is stuck: its phase, waiting reasons, scheduling message."""
    status = pod.status
    parts = [f"phase {status.phase}"]
    for cs in status.container_statuses or []:
        if cs.state and cs.state.waiting:
            parts.append(
                f"{cs.name} waiting: {cs.state.waiting.reason} {cs.state.waiting.message or ''}"
            )
    for cond in status.conditions or []:
        if cond.type == "PodScheduled" and cond.status != "True":
            parts.append(f"unschedulable: {cond.message}")
    return "; ".join(p.strip() for p in parts)


def test_gpu_pods_reach_only_their_own_gpu(cluster, k8s_namespace, k8sai_run_id, slo, aic):
    resource = cluster.gpu_resource
    to_dict = cluster.api_client.sanitize_for_serialization
    nodes = [to_dict(n) for n in cluster.core.list_node().items]
    candidates = real_gpu_nodes(nodes, resource)
    if not candidates:
        gpu_nodes = [
            n["metadata"]["name"]
            for n in nodes
            if (n.get("status", {}).get("allocatable") or {}).get(resource)
        ]
        kwok = [n["metadata"]["name"] for n in nodes if is_kwok_node(n)]
        aic.untestable(
            f"KWOK nodes run no containers: no Ready, schedulable node offering {resource} runs "
            f"a kubelet (GPU nodes: {', '.join(gpu_nodes) or 'none'}; KWOK-annotated: "
            f"{len(kwok)} node(s)), so no pod can look at the devices it was given"
        )
    node, gpus = candidates[0]
    if gpus < 2:
        aic.untestable(
            f"no node that runs containers offers two {resource} (most: {node} with {gpus}); "
            "two GPU pods on one node are needed to show each sees only its own"
        )
    workload = cluster.profile.workload
    if not workload.sleep:
        aic.untestable(
            f"the profile's workload image {workload.image} runs as it is (workload.sleep: "
            "false), so it may hold no shell for the probe; set a workload image with a POSIX "
            "shell (e.g. busybox) and workload.sleep: true"
        )

    labels = ownership_labels(k8sai_run_id)
    started = time.monotonic()
    for name, n_gpus in PROBES.items():
        cluster.core.create_namespaced_pod(
            k8s_namespace,
            probe_pod(
                name, k8s_namespace, node, gpus=n_gpus, resource=resource, pods=workload,
                labels=labels,
            ),
        )  # fmt: skip

    done: dict[str, Any] = {}
    deadline = started + POD_TIMEOUT_S
    while len(done) < len(PROBES):
        for name in PROBES.keys() - done.keys():
            pod = cluster.core.read_namespaced_pod(name, k8s_namespace)
            if pod.status.phase in ("Succeeded", "Failed"):
                done[name] = pod
            elif time.monotonic() > deadline:
                pytest.fail(
                    f"probe pod {name} on {node} did not finish within {POD_TIMEOUT_S:g}s: "
                    f"{_why_not_done(pod)}",
                    pytrace=False,
                )
        time.sleep(POLL_S)
    wall_ms = (time.monotonic() - started) * 1000

    views: dict[str, DeviceView] = {}
    for name in PROBES:  # in PROBES' order, not finishing order
        pod = done[name]
        statuses = pod.status.container_statuses or []
        term = statuses[0].state.terminated if statuses and statuses[0].state else None
        assert term is not None, f"probe pod {name} finished without a terminated container"
        assert pod.spec.node_name == node, f"probe pod {name} ran on {pod.spec.node_name}"
        assert term.exit_code == 0, (
            f"probe pod {name} exited {term.exit_code} ({term.reason}): {term.message!r}"
        )
        view = parse_probe(term.message or "")
        assert view is not None, (
            f"probe pod {name}'s termination message is not the probe's: {term.message!r}"
        )
        views[name] = view

    with_gpu = {n: views[n] for n, g in PROBES.items() if g}
    without = {n: views[n] for n, g in PROBES.items() if not g}
    aic.tier(
        "runtime",
        f"three probe containers ran on {node} (kubelet + container runtime) and reported "
        f"the GPUs they could reach",
    )
    if ids_only(list(with_gpu.values())):
        aic.partial("device-plugin ids only; no /dev/nvidia* device nodes (fake GPUs)")
    aic.note("; ".join(f"{n} ({PROBES[n]} GPU): {v.describe()}" for n, v in views.items()))

    shared = set(with_gpu["gpu-a"].ids) & set(with_gpu["gpu-b"].ids)
    slo.info(
        "GPU ids visible to the pod without GPUs",
        len(without["no-gpu"].ids),
        unit="ids",
        n=1,
        source=f"{ENV} in the termination message of pod no-gpu on {node}",
    )
    slo.info(
        "GPU device nodes visible to the pod without GPUs",
        len(without["no-gpu"].device_nodes),
        unit="device nodes",
        n=1,
        source="/dev/nvidia[0-9]* in pod no-gpu",
    )
    slo.info(
        "GPU ids visible per one-GPU pod (max)",
        max(len(v.ids) for v in with_gpu.values()),
        unit="ids",
        n=len(with_gpu),
        source=f"{ENV} in pods gpu-a and gpu-b",
    )
    slo.info(
        "GPU device nodes per one-GPU pod (max)",
        max(len(v.device_nodes) for v in with_gpu.values()),
        unit="device nodes",
        n=len(with_gpu),
        source="/dev/nvidia[0-9]* in pods gpu-a and gpu-b",
    )
    slo.info(
        "GPU ids shared by the two one-GPU pods",
        len(shared),
        unit="ids",
        n=2,
        source=f"{ENV} of gpu-a and gpu-b compared",
    )
    slo.info(
        "probe pods create -> all finished",
        wall_ms,
        unit="ms",
        n=len(PROBES),
        source=f"three pods on {node}, polled every {POLL_S * 1000:.0f} ms",
    )
    problems = isolation_problems(with_gpu, without)
    assert not problems, "accelerator access is not isolated: " + "; ".join(problems)
