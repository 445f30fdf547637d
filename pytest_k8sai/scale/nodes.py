"""The scenario's KWOK GPU nodes: created in batches, then timed until every one is Ready.

The nodes carry the run's ownership labels, so cleanup deletes them by label selector in one
call, and ``type=kwok-scale`` rather than the profile nodes' ``type=kwok``, so nothing that
selects the profile's nodes picks them up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters.base import RUN_ID_LABEL
from pytest_k8sai.clusters.local.kwok_nodes import gpu_node
from pytest_k8sai.clusters.objects import ownership_labels
from pytest_k8sai.core.profiles import GpuNodes
from pytest_k8sai.scale.scenario import Nodes

NODE_TYPE = "kwok-scale"
BATCH = 100  # nodes created before the next batch starts
WORKERS = 4  # concurrent creates: enough to keep the apiserver busy, few for 2 cores
POLL_S = 1.0  # a label-selected list of 1,000 nodes every second costs the apiserver ~2 %


def node_name(prefix: str, i: int) -> str:
    return f"{prefix}-node-{i}"


def node_bodies(nodes: Nodes, prefix: str, run_id: str) -> list[dict[str, Any]]:
    spec = GpuNodes(gpus_per_node=nodes.gpus_per_node)  # the profile's CPU, memory, product
    labels = {**ownership_labels(run_id), "type": NODE_TYPE}
    return [gpu_node(node_name(prefix, i), spec, extra_labels=labels) for i in range(nodes.count)]


@dataclass
class NodeFigures:
    requested: int
    created: int = 0
    ready: int = 0
    create_s: float | None = None  # first create -> last create returned
    ready_s: float | None = None  # first create -> all Ready; None if not reached
    # (seconds since the first create, Ready count), one per poll
    ready_series: list[tuple[float, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def ready_count(items: list[dict[str, Any]]) -> int:
    def ready(node: dict[str, Any]) -> bool:
        conds = (node.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

    return sum(ready(n) for n in items)


def create_and_wait(
    api: client.ApiClient,
    bodies: list[dict[str, Any]],
    run_id: str,
    stop: Callable[[], bool],
    log: Callable[[str], None] = lambda _m: None,
) -> NodeFigures:
    """Create ``bodies`` in batches, then poll until all are Ready or ``stop()``."""
    core = client.CoreV1Api(api)
    figs = NodeFigures(requested=len(bodies))
    t0 = time.monotonic()

    def create(body: dict[str, Any]) -> str | None:
        try:
            core.create_node(body, _request_timeout=30)
            return None
        except ApiException as exc:
            return f"{body['metadata']['name']}: HTTP {exc.status} {exc.reason}"

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="k8sai-scale-nodes") as pool:
        for i in range(0, len(bodies), BATCH):
            if stop():
                break
            for err in pool.map(create, bodies[i : i + BATCH]):
                if err is None:
                    figs.created += 1
                elif len(figs.errors) < 10:
                    figs.errors.append(err)
    figs.create_s = round(time.monotonic() - t0, 3)
    log(f"[k8sai] scale: {figs.created}/{figs.requested} nodes created in {figs.create_s:.1f} s")
    selector = f"{RUN_ID_LABEL}={run_id}"
    while True:
        resp = core.list_node(label_selector=selector, _preload_content=False, _request_timeout=60)
        figs.ready = ready_count(json.loads(resp.data).get("items") or [])
        t = round(time.monotonic() - t0, 3)
        figs.ready_series.append((t, figs.ready))
        if figs.ready >= figs.requested:
            figs.ready_s = t
            return figs
        if stop():
            return figs
        time.sleep(POLL_S)


def delete_nodes(api: client.ApiClient, run_id: str) -> str | None:
    """Delete the run's nodes by label; a message if that failed (for the leftovers list)."""
    try:
        client.CoreV1Api(api).delete_collection_node(
            label_selector=f"{RUN_ID_LABEL}={run_id}", _request_timeout=120
        )
        return None
    except ApiException as exc:
        return f"nodes {RUN_ID_LABEL}={run_id}: HTTP {exc.status} {exc.reason}"
