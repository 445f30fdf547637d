"""What a cluster has, read through its API and nothing else: version, nodes and their GPUs, and
which of the platform parts' APIs are served. Every probe reads; none creates or changes.

A probe that cannot read (forbidden, timed out) records the fact as unknown with the reason,
never as absent: "not found" and "not allowed to look" lead to different fixes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pytest_k8sai.clusters.apireader import JSON, Reader, ReadError
from pytest_k8sai.core.apis import DAS_CLAIMS, DAS_GROUP, KUEUE_GROUP, POOL_GROUP

Status = Literal["ok", "absent", "unknown", "info"]

GPU = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"
DAS_PREFIX = "mig.das.com/"
PRODUCT_LABEL = "nvidia.com/gpu.product"
MIG_CAPABLE_LABEL = "nvidia.com/mig.capable"
MIG_STRATEGY_LABEL = "nvidia.com/mig.strategy"
# Where an operator-installed Kueue runs, and the ConfigMap that says which namespaces it
# manages (upstream install and Red Hat's build).
KUEUE_NAMESPACES = ("kueue-system", "openshift-kueue-operator")
KUEUE_DEPLOYMENT = "kueue-controller-manager"
KUEUE_CONFIGMAP = "kueue-manager-config"
# The groups whose presence tells which parts are installed.
GATEWAY_GROUP = "gateway.networking.k8s.io"
POOL_ALPHA_GROUP = "inference.networking.x-k8s.io"
DRA_GROUP = "resource.k8s.io"
MONITORING_GROUP = "monitoring.coreos.com"
GPU_OPERATOR_GROUP = "nvidia.com"


@dataclass
class Fact:
    area: str  # e.g. "Kueue"
    item: str  # e.g. "served API versions"
    value: str
    status: Status = "info"
    detail: str = ""  # why unknown, or what it means


@dataclass
class GpuNode:
    name: str
    product: str
    gpus: int  # allocatable nvidia.com/gpu
    mig: dict[str, int]  # allocatable nvidia.com/mig-* and mig.das.com/*
    mig_capable: str
    mig_strategy: str


@dataclass
class ClusterFacts:
    """Everything preflight learned, for the table, the suites' outlook and results.json."""

    facts: list[Fact] = field(default_factory=list)
    version: str = ""
    nodes: int | None = None
    gpu_nodes: list[GpuNode] = field(default_factory=list)
    groups: dict[str, list[str]] | None = None  # API group -> served versions (None: unread)
    resources: dict[str, list[str]] = field(default_factory=dict)  # group -> its resources
    kueue_namespace_labels: dict[str, str] = field(default_factory=dict)
    # What a namespace needs for DAS's pod webhook to rewrite its pods (the webhooks'
    # namespaceSelector matchLabels; upstream selects all but system namespaces: none).
    das_namespace_labels: dict[str, str] = field(default_factory=dict)

    def add(self, *args: Any, **kw: Any) -> Fact:
        f = Fact(*args, **kw)
        self.facts.append(f)
        return f

    def serves(self, group: str, resource: str | None = None) -> bool | None:
        """True/False when discovery was read, None when it could not be."""
        if self.groups is None:
            return None
        if group not in self.groups:
            return False
        return resource is None or resource in self.resources.get(group, [])

    @property
    def total_gpus(self) -> int:
        return sum(n.gpus for n in self.gpu_nodes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "nodes": self.nodes,
            "gpu_nodes": [asdict(n) for n in self.gpu_nodes],
            "api_groups": self.groups,
            "kueue_namespace_labels": self.kueue_namespace_labels,
            "das_namespace_labels": self.das_namespace_labels,
            "facts": [asdict(f) for f in self.facts],
        }


def _unknown(cf: ClusterFacts, area: str, item: str, err: ReadError) -> None:
    what = "not allowed to read" if err.forbidden else "could not read"
    cf.add(area, item, "unknown", "unknown", f"{what} {err.path}: {err.why}")


def read_version(reader: Reader, cf: ClusterFacts) -> None:
    try:
        cf.version = str(reader.get("/version").get("gitVersion", "unknown"))
        cf.add("Kubernetes", "version", cf.version, "ok")
    except ReadError as err:
        _unknown(cf, "Kubernetes", "version", err)


def read_discovery(reader: Reader, cf: ClusterFacts) -> None:
    """Served groups and versions (/apis, readable by every authenticated user), and the
    resources of the groups the parts use."""
    try:
        doc = reader.get("/apis")
    except ReadError as err:
        _unknown(cf, "Kubernetes", "API discovery", err)
        return
    groups: dict[str, list[str]] = {}
    preferred: dict[str, str] = {}
    for g in doc.get("groups") or []:
        groups[g["name"]] = [v["version"] for v in g.get("versions") or []]
        preferred[g["name"]] = (g.get("preferredVersion") or {}).get("version", "")
    cf.groups = groups
    for group in (KUEUE_GROUP, DAS_GROUP, GATEWAY_GROUP, POOL_GROUP, POOL_ALPHA_GROUP,
                  MONITORING_GROUP, GPU_OPERATOR_GROUP):  # fmt: skip
        if group not in groups:
            continue
        try:
            res = reader.get(f"/apis/{group}/{preferred[group]}")
            cf.resources[group] = [r["name"] for r in res.get("resources") or []]
        except ReadError:
            cf.resources[group] = []


def read_nodes(reader: Reader, cf: ClusterFacts) -> None:
    try:
        items = reader.get("/api/v1/nodes").get("items") or []
    except ReadError as err:
        _unknown(cf, "Nodes", "nodes", err)
        return
    cf.nodes = len(items)
    ready = 0
    for node in items:
        meta, status = node.get("metadata") or {}, node.get("status") or {}
        labels = meta.get("labels") or {}
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        ready += conds.get("Ready") == "True"
        alloc = status.get("allocatable") or {}
        gpus = _count(alloc.get(GPU))
        mig = {k: _count(v) for k, v in alloc.items() if k.startswith((MIG_PREFIX, DAS_PREFIX))}
        if gpus or any(mig.values()) or PRODUCT_LABEL in labels:
            cf.gpu_nodes.append(
                GpuNode(
                    name=meta.get("name", "?"),
                    product=labels.get(PRODUCT_LABEL, ""),
                    gpus=gpus,
                    mig={k: v for k, v in mig.items() if v},
                    mig_capable=labels.get(MIG_CAPABLE_LABEL, ""),
                    mig_strategy=labels.get(MIG_STRATEGY_LABEL, ""),
                )
            )
    cf.add("Nodes", "nodes (Ready)", f"{cf.nodes} ({ready} Ready)", "ok" if ready else "absent")
    products = Counter(n.product or "(no product label)" for n in cf.gpu_nodes)
    cf.add(
        "GPUs",
        "GPU nodes",
        ", ".join(f"{c} x {p}" for p, c in products.items()) or "none",
        "ok" if cf.gpu_nodes else "absent",
        f"label {PRODUCT_LABEL}",
    )
    cf.add("GPUs", f"allocatable {GPU}", str(cf.total_gpus), "ok" if cf.total_gpus else "absent")
    slices: Counter[str] = Counter()
    for n in cf.gpu_nodes:
        slices.update(n.mig)
    cf.add(
        "GPUs",
        "allocatable MIG / DAS slices",
        ", ".join(f"{k} {v}" for k, v in sorted(slices.items())) or "none",
        "ok" if slices else "absent",
    )
    capable = Counter(n.mig_capable or "-" for n in cf.gpu_nodes)
    strategy = Counter(n.mig_strategy or "-" for n in cf.gpu_nodes)
    cf.add(
        "GPUs",
        "MIG capable / strategy labels",
        f"{dict(capable)} / {dict(strategy)}" if cf.gpu_nodes else "no GPU nodes",
        "info",
        f"{MIG_CAPABLE_LABEL}, {MIG_STRATEGY_LABEL}",
    )


def _count(quantity: object) -> int:
    # Extended resources are integers; anything else (e.g. "1k") is not a GPU count.
    try:
        return int(str(quantity))
    except (TypeError, ValueError):
        return 0


def _group_fact(cf: ClusterFacts, area: str, item: str, group: str, resource: str) -> bool:
    served = cf.serves(group, resource)
    if served is None:
        cf.add(area, item, "unknown", "unknown", "API discovery could not be read")
        return False
    versions = ", ".join((cf.groups or {}).get(group, []))
    cf.add(
        area,
        item,
        f"{resource}.{group} ({versions})" if served else "not served",
        "ok" if served else "absent",
    )
    return served


def read_kueue(
    reader: Reader, cf: ClusterFacts, known_version: str = "", local_config: str = ""
) -> None:
    if not _group_fact(cf, "Kueue", "served API", KUEUE_GROUP, "clusterqueues"):
        return
    if known_version:  # the local tier runs the manager as a process: its version is known
        cf.add("Kueue", "running version", known_version, "ok", "the local tier's build")
    else:
        read_kueue_deployment(reader, cf)
    read_kueue_config(reader, cf, local_config)


def read_kueue_deployment(reader: Reader, cf: ClusterFacts) -> None:
    last: ReadError | None = None
    for ns in KUEUE_NAMESPACES:
        path = f"/apis/apps/v1/namespaces/{ns}/deployments/{KUEUE_DEPLOYMENT}"
        try:
            dep = reader.get(path)
        except ReadError as err:
            last = err if not err.absent or last is None else last
            continue
        images = [
            c.get("image", "")
            for c in (((dep.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
                "containers"
            )
            or []
        ]
        cf.add(
            "Kueue", "running version", ", ".join(images) or "?", "ok", f"{ns}/{KUEUE_DEPLOYMENT}"
        )
        return
    if last is not None and not last.absent:
        _unknown(cf, "Kueue", "running version", last)
    else:
        cf.add(
            "Kueue",
            "running version",
            "unknown",
            "unknown",
            f"no deployment {KUEUE_DEPLOYMENT} in {', '.join(KUEUE_NAMESPACES)}",
        )


# Kueue's default when the manager configuration sets no managedJobsNamespaceSelector.
DEFAULT_SELECTOR = "all but kube-system and kueue-system (Kueue's default selector)"


def namespace_selector(config_text: str) -> tuple[dict[str, str], str]:
    """The labels a namespace needs for this Kueue to manage its Jobs (the matchLabels of the
    manager configuration's managedJobsNamespaceSelector; Red Hat's build ships
    kueue.openshift.io/managed=true there), and the selector in words."""
    try:
        cfg = yaml.safe_load(config_text) or {}
    except yaml.YAMLError:
        return {}, "unreadable manager configuration"
    selector = cfg.get("managedJobsNamespaceSelector") if isinstance(cfg, dict) else None
    if not isinstance(selector, dict):
        return {}, DEFAULT_SELECTOR
    labels = {str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()}
    words = [f"{k}={v}" for k, v in labels.items()]
    words += [
        f"{e.get('key')} {e.get('operator')} {','.join(e.get('values') or [])}".rstrip()
        for e in selector.get("matchExpressions") or []
    ]
    return labels, "namespaces with " + "; ".join(words) if words else "all namespaces"


def read_kueue_config(reader: Reader, cf: ClusterFacts, local_config: str = "") -> None:
    if local_config:
        try:
            text = Path(local_config).read_text()
        except OSError as exc:
            cf.add("Kueue", "namespaces it manages", "unknown", "unknown", str(exc))
            return
        cf.kueue_namespace_labels, words = namespace_selector(text)
        cf.add("Kueue", "namespaces it manages", words, "ok", local_config)
        return
    for ns in KUEUE_NAMESPACES:
        try:
            cm = reader.get(f"/api/v1/namespaces/{ns}/configmaps/{KUEUE_CONFIGMAP}")
        except ReadError:
            continue
        text = next(iter((cm.get("data") or {}).values()), "")
        cf.kueue_namespace_labels, words = namespace_selector(text)
        cf.add(
            "Kueue",
            "namespaces it manages",
            words,
            "ok",
            f"{ns}/{KUEUE_CONFIGMAP} managedJobsNamespaceSelector",
        )
        return
    cf.add(
        "Kueue",
        "namespaces it manages",
        "unknown",
        "unknown",
        f"ConfigMap {KUEUE_CONFIGMAP} not readable in {', '.join(KUEUE_NAMESPACES)}; the suites "
        "label their namespaces only as the profile's reach.namespace_labels says",
    )


def read_das(reader: Reader, cf: ClusterFacts) -> None:
    if not _group_fact(cf, "DAS", "AllocationClaim API", DAS_GROUP, DAS_CLAIMS):
        return
    try:
        hooks = (
            reader.get("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations").get(
                "items"
            )
            or []
        )
    except ReadError as err:
        _unknown(cf, "DAS", "webhook", err)
        return
    das_hooks = [
        h
        for h in hooks
        if "das" in h["metadata"]["name"]
        or any("das" in (w.get("name") or "") for w in h.get("webhooks") or [])
    ]
    names = [h["metadata"]["name"] for h in das_hooks]
    cf.add("DAS", "webhook", ", ".join(names) or "none", "ok" if names else "absent")
    if not das_hooks:
        return
    # Detection over assumption: the suites' sliced namespaces get the labels the webhook
    # selects on, or DAS never sees their pods (which then ask for slices no node offers).
    for hook in das_hooks:
        for w in hook.get("webhooks") or []:
            labels = ((w.get("namespaceSelector") or {}).get("matchLabels")) or {}
            cf.das_namespace_labels.update({str(k): str(v) for k, v in labels.items()})
    words = ", ".join(f"{k}={v}" for k, v in cf.das_namespace_labels.items())
    cf.add(
        "DAS",
        "namespaces it rewrites",
        f"namespaces with {words}" if words else "every namespace its selector does not exclude",
        "ok",
        "the webhook's namespaceSelector",
    )


def read_gpu_operator(reader: Reader, cf: ClusterFacts) -> None:
    if cf.serves(GPU_OPERATOR_GROUP, "clusterpolicies") is not True:
        cf.add("GPU operator", "ClusterPolicy", "not served", "info")
        return
    version = ((cf.groups or {}).get(GPU_OPERATOR_GROUP) or ["v1"])[0]
    try:
        items = reader.get(f"/apis/{GPU_OPERATOR_GROUP}/{version}/clusterpolicies").get("items")
    except ReadError as err:
        _unknown(cf, "GPU operator", "ClusterPolicy state", err)
        return
    states = [
        f"{p['metadata']['name']}: {(p.get('status') or {}).get('state', '?')}" for p in items or []
    ]
    ready = any(s.endswith(": ready") for s in states)
    cf.add(
        "GPU operator",
        "ClusterPolicy state",
        ", ".join(states) or "none",
        "ok" if ready else "absent",
    )


def read_gateway(reader: Reader, cf: ClusterFacts) -> None:
    if _group_fact(cf, "Gateway API", "Gateway API", GATEWAY_GROUP, "gatewayclasses"):
        version = "v1" if "v1" in (cf.groups or {}).get(GATEWAY_GROUP, []) else "v1beta1"
        try:
            items = reader.get(f"/apis/{GATEWAY_GROUP}/{version}/gatewayclasses").get("items")
        except ReadError as err:
            _unknown(cf, "Gateway API", "GatewayClasses", err)
        else:
            classes = []
            for gc in items or []:
                conds = {
                    c.get("type"): c.get("status")
                    for c in (gc.get("status") or {}).get("conditions") or []
                }
                accepted = "Accepted" if conds.get("Accepted") == "True" else "not accepted"
                classes.append(f"{gc['metadata']['name']} ({accepted})")
            cf.add(
                "Gateway API",
                "GatewayClasses",
                ", ".join(classes) or "none",
                "ok" if classes else "absent",
            )
    served = cf.serves(POOL_GROUP, "inferencepools")
    if served is False and cf.serves(POOL_ALPHA_GROUP, "inferencepools"):
        _group_fact(cf, "Gateway API", "InferencePool API", POOL_ALPHA_GROUP, "inferencepools")
    else:
        _group_fact(cf, "Gateway API", "InferencePool API", POOL_GROUP, "inferencepools")


def read_misc(cf: ClusterFacts) -> None:
    for area, item, group in (
        ("DRA", "resource.k8s.io versions", DRA_GROUP),
        ("Monitoring", "Prometheus operator API", MONITORING_GROUP),
    ):
        if cf.groups is None:
            cf.add(area, item, "unknown", "unknown", "API discovery could not be read")
            continue
        versions = cf.groups.get(group)
        cf.add(area, item, ", ".join(versions) if versions else "not served", "info")


def gather(
    reader: Reader,
    known_versions: dict[str, str] | None = None,
    endpoints: dict[str, str] | None = None,
) -> ClusterFacts:
    """Every fact; ``known_versions`` and ``endpoints`` are what a local tier's handle knows
    of its own processes (Kueue's version and manager configuration file)."""
    cf = ClusterFacts()
    read_version(reader, cf)
    read_discovery(reader, cf)
    read_nodes(reader, cf)
    read_kueue(
        reader,
        cf,
        (known_versions or {}).get("kueue", ""),
        (endpoints or {}).get("kueue_config", ""),
    )
    read_das(reader, cf)
    read_gpu_operator(reader, cf)
    read_gateway(reader, cf)
    read_misc(cf)
    return cf


__all__ = ["ClusterFacts", "Fact", "GpuNode", "JSON", "gather", "namespace_selector"]
