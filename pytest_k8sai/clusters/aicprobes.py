"""What the AI-conformance API checks (suites/conformance/test_api_checks.py) read out of plain
API objects: Gateway API status conditions, a node's GPU feature-discovery labels and
allocatable slices, DRA ResourceSlice device attributes, APIService availability, Prometheus
targets and a metrics page. Nothing here calls the API, so every decision is unit-tested with
dicts (tests/unit/test_aic_api_checks.py); the suite does the reading.

Label, attribute and metric names are the upstream projects' (NVIDIA GPU feature discovery in
k8s-device-plugin internal/lm, NVIDIA's DRA driver, DCGM exporter, prometheus-operator), read
from their source and written here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pytest_k8sai.clusters.base import CREATED_BY_LABEL, CREATED_BY_VALUE, RUN_ID_LABEL
from pytest_k8sai.clusters.preflight.facts import (
    DAS_PREFIX,
    GATEWAY_GROUP,
    GPU,
    MIG_PREFIX,
    PRODUCT_LABEL,
)

JSON = dict[str, Any]

# -- Gateway API (ai_inference) ----------------------------------------------------------------

GATEWAY_RESOURCES = ("gatewayclasses", "gateways", "httproutes")
# HTTPRoute weights and header matches are in both; v1 is Gateway API 1.0 and later.
GATEWAY_VERSIONS = ("v1", "v1beta1")

# -- DRA (dra_support, driver_runtime_management, gpu_sharing) ---------------------------------

DRA_RESOURCES = ("deviceclasses", "resourceslices", "resourceclaims")
# resource.k8s.io/v1 is GA in Kubernetes 1.34; older clusters serve only the betas.
DRA_VERSIONS = ("v1", "v1beta2", "v1beta1")
# NVIDIA's DRA driver publishes these on every GPU and MIG device (kubernetes-sigs/ai-conformance
# reads the same two for KAR-0001).
DRA_DRIVER_VERSION_ATTRS = ("driverVersion",)
DRA_RUNTIME_VERSION_ATTRS = ("cudaDriverVersion",)
# A MIG partition published through DRA: attribute type=mig (and profile, parentUUID).
DRA_TYPE_ATTR = "type"
DRA_MIG_TYPE = "mig"

# -- GPU feature discovery node labels (driver_runtime_management, gpu_sharing) --------------

DRIVER_FULL_LABEL = "nvidia.com/cuda.driver-version.full"
DRIVER_PART_LABELS = (
    "nvidia.com/cuda.driver-version.major",
    "nvidia.com/cuda.driver-version.minor",
    "nvidia.com/cuda.driver-version.revision",
)
# GFD still writes the older names beside the new ones; older installs have only these.
DRIVER_OLD_PART_LABELS = (
    "nvidia.com/cuda.driver.major",
    "nvidia.com/cuda.driver.minor",
    "nvidia.com/cuda.driver.rev",
)
RUNTIME_FULL_LABEL = "nvidia.com/cuda.runtime-version.full"
RUNTIME_OLD_PART_LABELS = ("nvidia.com/cuda.runtime.major", "nvidia.com/cuda.runtime.minor")
DRIVER_LABELS_LOOKED_FOR = (DRIVER_FULL_LABEL, *DRIVER_PART_LABELS[:2], *DRIVER_OLD_PART_LABELS[:2])
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
SHARING_STRATEGY_LABEL = "nvidia.com/gpu.sharing-strategy"  # none | time-slicing | mps
SHARING_STRATEGIES = ("time-slicing", "mps")
# GFD writes <resource>.replicas per shared resource (nvidia.com/gpu.replicas,
# nvidia.com/mig-1g.5gb.replicas): > 1 means that many pods share one device.
REPLICAS_SUFFIX = ".replicas"

# -- metrics APIs (pod_autoscaling) ------------------------------------------------------------

CUSTOM_METRICS_GROUP = "custom.metrics.k8s.io"
EXTERNAL_METRICS_GROUP = "external.metrics.k8s.io"
METRICS_API_GROUPS = (CUSTOM_METRICS_GROUP, EXTERNAL_METRICS_GROUP)
RESOURCE_METRICS_GROUP = "metrics.k8s.io"  # CPU/memory only: not an AI metric

# -- accelerator metrics (accelerator_metrics) -------------------------------------------------

# The GPU operator labels its exporter Service app=nvidia-dcgm-exporter (port gpu-metrics);
# the standalone dcgm-exporter chart uses the recommended name label (port metrics).
DCGM_SERVICE_SELECTORS = ("app=nvidia-dcgm-exporter", "app.kubernetes.io/name=dcgm-exporter")
DCGM_PORT_NAMES = ("gpu-metrics", "metrics")
# Per-device utilisation: GPU_UTIL on whole GPUs; DCGM reports MIG instances through the
# profiling field instead, so either counts.
UTIL_METRICS = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE")
MEMORY_METRICS = ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE")
# Optional per KAR-0059 (temperature, power, interconnect): noted, never required.
OPTIONAL_METRICS = (
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_PROF_NVLINK_TX_BYTES",
    "DCGM_FI_PROF_PCIE_TX_BYTES",
)
# Labels that name one device (DCGM: gpu index, UUID, MIG instance; others: device ids).
DEVICE_LABELS = ("gpu", "UUID", "uuid", "device", "device_id", "GPU_I_ID", "pci_bus_id")

# -- Prometheus operator (ai_service_metrics) ---------------------------------------------------

MONITOR_RESOURCES = ("servicemonitors", "podmonitors")
# The operator's governing Service in each namespace with a Prometheus object.
PROMETHEUS_SERVICE = "prometheus-operated"
PROMETHEUS_PORT = "web"
# Scrape pools the operator generates from monitors: serviceMonitor/<ns>/<name>/<i>.
MONITOR_POOL_PREFIXES = ("serviceMonitor/", "podMonitor/")


# -- conditions ----------------------------------------------------------------------------------


def conditions(obj: Mapping[str, Any] | None) -> dict[str, JSON]:
    """Conditions by type: an object's ``status.conditions``, or the ``conditions`` of a
    status entry such as an HTTPRoute's ``status.parents[i]``."""
    obj = obj or {}
    conds = (
        obj["conditions"] if "conditions" in obj else (obj.get("status") or {}).get("conditions")
    )
    return {str(c.get("type")): dict(c) for c in conds or [] if isinstance(c, Mapping)}


def is_true(obj: Mapping[str, Any] | None, ctype: str) -> bool:
    return conditions(obj).get(ctype, {}).get("status") == "True"


def describe(conds: Mapping[str, JSON], *types: str) -> str:
    """``Accepted=True (Accepted), Programmed=False (Pending)`` for the types asked, or all."""
    names = types or tuple(conds)
    parts = []
    for t in names:
        c = conds.get(t)
        if c is None:
            parts.append(f"{t}: not set")
            continue
        reason = f" ({c['reason']})" if c.get("reason") else ""
        parts.append(f"{t}={c.get('status', '?')}{reason}")
    return ", ".join(parts) or "no conditions"


# -- Gateway API ---------------------------------------------------------------------------------


def pick_version(served: Iterable[str], preferred: Iterable[str]) -> str | None:
    """The first of ``preferred`` the server serves."""
    have = set(served)
    return next((v for v in preferred if v in have), None)


def accepted_classes(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the GatewayClasses a controller has accepted, sorted."""
    return sorted(str(gc["metadata"]["name"]) for gc in items if is_true(gc, "Accepted"))


def class_states(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """``name (controller): Accepted=...`` per GatewayClass, for notes and skip reasons."""
    out = []
    for gc in items:
        ctrl = (gc.get("spec") or {}).get("controllerName", "?")
        out.append(f"{gc['metadata']['name']} ({ctrl}): {describe(conditions(gc), 'Accepted')}")
    return sorted(out)


def gateway_body(name: str, class_name: str, *, version: str = "v1", port: int = 80) -> JSON:
    """One HTTP listener that takes routes from its own namespace only."""
    return {
        "apiVersion": f"{GATEWAY_GROUP}/{version}",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {
            "gatewayClassName": class_name,
            "listeners": [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "port": port,
                    "allowedRoutes": {"namespaces": {"from": "Same"}},
                }
            ],
        },
    }


@dataclass(frozen=True)
class Backend:
    service: str
    port: int
    weight: int


def weighted_route_body(
    name: str,
    gateway: str,
    backends: Iterable[Backend],
    *,
    path: str,
    header: tuple[str, str],
    version: str = "v1",
) -> JSON:
    """An HTTPRoute as an inference service uses one: requests to ``path`` that carry the
    model header go to the backends split by weight."""
    return {
        "apiVersion": f"{GATEWAY_GROUP}/{version}",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": gateway}],
            "rules": [
                {
                    "matches": [
                        {
                            "path": {"type": "PathPrefix", "value": path},
                            "headers": [{"type": "Exact", "name": header[0], "value": header[1]}],
                        }
                    ],
                    "backendRefs": [
                        {"name": b.service, "port": b.port, "weight": b.weight} for b in backends
                    ],
                }
            ],
        },
    }


def backend_service_body(name: str, port: int, labels: Mapping[str, str]) -> JSON:
    """A ClusterIP Service the route can resolve; its selector matches no pod (nothing serves:
    only the controller's view of the route is checked)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "selector": {"k8sai.io/aic-backend": name},
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def route_parent(route: Mapping[str, Any], gateway: str, namespace: str) -> JSON | None:
    """The ``status.parents`` entry a controller wrote for ``gateway`` (None before it did)."""
    for p in (route.get("status") or {}).get("parents") or []:
        ref = p.get("parentRef") or {}
        if ref.get("name") != gateway or ref.get("kind", "Gateway") != "Gateway":
            continue
        if ref.get("namespace", namespace) != namespace:
            continue
        return dict(p)
    return None


# -- nodes ---------------------------------------------------------------------------------------


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def name_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def is_own(node: Mapping[str, Any]) -> bool:
    """Made by a suite during a run (the GPU slicing suite's slice nodes carry the run's
    ``k8sai.io/run-id``): what such a node exposes is the suite's input, not the cluster's
    capability. The local tier's own nodes (KWOK GPU nodes, the real kubelet node and what the
    real DAS advertises on them) are that cluster; the tier named in the checklist says they
    are emulated."""
    labels = labels_of(node)
    return labels.get(CREATED_BY_LABEL) == CREATED_BY_VALUE and RUN_ID_LABEL in labels


def count(quantity: object) -> int:
    """An extended-resource quantity as an integer (anything else, e.g. "1k", is 0)."""
    try:
        return int(str(quantity))
    except (TypeError, ValueError):
        return 0


def allocatable(node: Mapping[str, Any]) -> dict[str, str]:
    return dict((node.get("status") or {}).get("allocatable") or {})


def is_gpu_node(node: Mapping[str, Any]) -> bool:
    """Allocatable GPUs or slices, or GPU feature discovery says a GPU is there."""
    alloc = allocatable(node)
    if count(alloc.get(GPU)) > 0:
        return True
    if any(k.startswith((MIG_PREFIX, DAS_PREFIX)) and count(v) > 0 for k, v in alloc.items()):
        return True
    labels = labels_of(node)
    return labels.get(GPU_PRESENT_LABEL) == "true" or PRODUCT_LABEL in labels


def _joined(labels: Mapping[str, str], keys: Iterable[str]) -> str:
    parts = [labels.get(k, "").strip() for k in keys]
    if not parts[0] or not parts[1]:  # a version needs at least major.minor
        return ""
    return ".".join(p for p in parts if p)


def driver_version_from_labels(labels: Mapping[str, str]) -> tuple[str, str] | None:
    """(label key(s), version) from GPU feature discovery's labels: the full version, else
    major.minor[.revision] from the current or the deprecated names."""
    if full := labels.get(DRIVER_FULL_LABEL, "").strip():
        return DRIVER_FULL_LABEL, full
    for keys in (DRIVER_PART_LABELS, DRIVER_OLD_PART_LABELS):
        if version := _joined(labels, keys):
            return keys[0].rsplit(".", 1)[0] + ".*", version
    return None


def runtime_version_from_labels(labels: Mapping[str, str]) -> tuple[str, str] | None:
    """(label, CUDA version the driver supports) from GPU feature discovery."""
    if full := labels.get(RUNTIME_FULL_LABEL, "").strip():
        return RUNTIME_FULL_LABEL, full
    if version := _joined(labels, RUNTIME_OLD_PART_LABELS):
        return "nvidia.com/cuda.runtime.*", version
    return None


def node_sharing(node: Mapping[str, Any]) -> list[str]:
    """What on ``node`` shows shared or partitioned GPUs, one item per fact: allocatable MIG
    slices (nvidia.com/mig-*), DAS slices (mig.das.com/*), a time-slicing/MPS strategy label,
    or a GFD replicas label above 1."""
    out = []
    for key, value in sorted(allocatable(node).items()):
        n = count(value)
        if n <= 0:
            continue
        if key.startswith(MIG_PREFIX):
            out.append(f"{key}: {n} allocatable (MIG)")
        elif key.startswith(DAS_PREFIX):
            out.append(f"{key}: {n} allocatable (DAS)")
    labels = labels_of(node)
    strategy = labels.get(SHARING_STRATEGY_LABEL, "")
    if strategy in SHARING_STRATEGIES:
        out.append(f"{SHARING_STRATEGY_LABEL}={strategy}")
    for key, value in sorted(labels.items()):
        if key.startswith("nvidia.com/") and key.endswith(REPLICAS_SUFFIX) and count(value) > 1:
            out.append(f"{key}={value}")
    return out


# -- DRA ResourceSlices --------------------------------------------------------------------------


def slice_devices(rslice: Mapping[str, Any]) -> list[JSON]:
    return [dict(d) for d in (rslice.get("spec") or {}).get("devices") or []]


def slice_node(rslice: Mapping[str, Any]) -> str:
    spec = rslice.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    return f"(pool {(spec.get('pool') or {}).get('name', '?')})"


def device_attributes(device: Mapping[str, Any]) -> dict[str, str]:
    """A device's attributes as strings. resource.k8s.io/v1 keeps them on the device,
    v1beta1 under ``basic``; each value is one of version, string, int, bool. A qualified
    name (``gpu.nvidia.com/driverVersion``) is also found by its short name."""
    attrs = device.get("attributes")
    if attrs is None:
        attrs = (device.get("basic") or {}).get("attributes")
    out: dict[str, str] = {}
    for name, value in (attrs or {}).items():
        if not isinstance(value, Mapping):
            continue
        for kind in ("version", "string", "int", "bool"):
            if value.get(kind) is not None and str(value[kind]).strip() != "":
                text = str(value[kind]).strip()
                out[str(name)] = text.lower() if kind == "bool" else text
                break
    for name in list(out):
        short = name.rsplit("/", 1)[-1]
        out.setdefault(short, out[name])
    return out


@dataclass(frozen=True)
class DeviceVersion:
    node: str
    driver: str  # ResourceSlice spec.driver
    device: str
    key: str
    version: str


def dra_versions(
    slices: Iterable[Mapping[str, Any]], attrs: Iterable[str] = DRA_DRIVER_VERSION_ATTRS
) -> list[DeviceVersion]:
    """Every device that publishes one of ``attrs``, with where it was read."""
    keys = tuple(attrs)
    out = []
    for s in slices:
        for d in slice_devices(s):
            found = device_attributes(d)
            key = next((k for k in keys if found.get(k)), None)
            if key is not None:
                out.append(
                    DeviceVersion(
                        node=slice_node(s),
                        driver=str((s.get("spec") or {}).get("driver", "?")),
                        device=str(d.get("name", "?")),
                        key=key,
                        version=found[key],
                    )
                )
    return out


def dra_partitions(slices: Iterable[Mapping[str, Any]]) -> list[str]:
    """``node/device`` of every device DRA publishes as a MIG partition."""
    return [
        f"{slice_node(s)}/{d.get('name', '?')}"
        for s in slices
        for d in slice_devices(s)
        if device_attributes(d).get(DRA_TYPE_ATTR) == DRA_MIG_TYPE
    ]


# -- APIServices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiService:
    name: str
    group: str
    version: str
    available: bool
    why: str  # the Available condition's reason/message, or the local/service it points to


def metrics_apis(
    items: Iterable[Mapping[str, Any]], groups: Iterable[str] = METRICS_API_GROUPS
) -> list[ApiService]:
    """The APIServices registered for ``groups`` and whether the aggregator finds them
    Available."""
    wanted = set(groups)
    out = []
    for item in items:
        spec = item.get("spec") or {}
        if spec.get("group") not in wanted:
            continue
        cond = conditions(item).get("Available", {})
        svc = spec.get("service") or {}
        backend = f"service {svc.get('namespace')}/{svc.get('name')}" if svc else "local"
        why = ": ".join(str(x) for x in (cond.get("reason"), cond.get("message")) if x)
        out.append(
            ApiService(
                name=name_of(item),
                group=str(spec["group"]),
                version=str(spec.get("version", "?")),
                available=cond.get("status") == "True",
                why=why or backend,
            )
        )
    return sorted(out, key=lambda a: a.name)


# -- Prometheus targets --------------------------------------------------------------------------


@dataclass
class MonitorTargets:
    up: int = 0
    total: int = 0
    pools: list[str] = field(default_factory=list)  # monitor scrape pools with a target up


def monitor_targets(doc: Mapping[str, Any]) -> MonitorTargets:
    """From Prometheus's ``/api/v1/targets`` answer: the active targets that a ServiceMonitor
    or PodMonitor made (the operator names their scrape pools after them), and how many are
    up. Targets from static scrape configs do not show that workloads are discovered."""
    if not isinstance(doc, Mapping):
        raise ValueError("the answer is not a JSON object")
    if doc.get("status") != "success":
        raise ValueError(f"Prometheus answered status {doc.get('status')!r}: {doc.get('error')}")
    found = MonitorTargets()
    pools: set[str] = set()
    for t in (doc.get("data") or {}).get("activeTargets") or []:
        pool = str(t.get("scrapePool", ""))
        if not pool.startswith(MONITOR_POOL_PREFIXES):
            continue
        found.total += 1
        if t.get("health") == "up":
            found.up += 1
            pools.add(pool)
    found.pools = sorted(pools)
    return found


# -- metrics pages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    name: str
    labels: dict[str, str]

    @property
    def device(self) -> str:
        """The device this series is about, from the first device label it carries."""
        for key in DEVICE_LABELS:
            if self.labels.get(key):
                host = self.labels.get("Hostname") or self.labels.get("instance") or ""
                return f"{host}/{key}={self.labels[key]}".lstrip("/")
        return ""


def series(text: str, names: Iterable[str]) -> list[Series]:
    """Samples of the metrics ``names`` in a Prometheus text page (ValueError: not parseable)."""
    wanted = set(names)
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in wanted:
                out.append(Series(s.name, dict(s.labels)))
    return out


@dataclass
class AcceleratorMetrics:
    utilisation: list[Series]  # per-device series of UTIL_METRICS
    memory: list[Series]  # per-device series of MEMORY_METRICS
    optional: dict[str, int]  # optional metric -> per-device series
    unlabelled: list[str]  # required metrics seen without a device label

    @property
    def ok(self) -> bool:
        return bool(self.utilisation) and bool(self.memory)

    @property
    def devices(self) -> list[str]:
        return sorted({s.device for s in self.utilisation} & {s.device for s in self.memory})

    def missing(self) -> list[str]:
        out = []
        if not self.utilisation:
            out.append(f"per-device utilisation ({' or '.join(UTIL_METRICS)})")
        if not self.memory:
            out.append(f"per-device memory ({' or '.join(MEMORY_METRICS)})")
        return out


def accelerator_metrics(text: str) -> AcceleratorMetrics:
    """Whether a metrics page has per-device utilisation and memory series (KAR-0059's core
    set), and which optional ones it adds."""
    found = series(text, (*UTIL_METRICS, *MEMORY_METRICS, *OPTIONAL_METRICS))
    per_device = [s for s in found if s.device]
    unlabelled = sorted(
        {s.name for s in found if not s.device and s.name in (*UTIL_METRICS, *MEMORY_METRICS)}
    )
    return AcceleratorMetrics(
        utilisation=[s for s in per_device if s.name in UTIL_METRICS],
        memory=[s for s in per_device if s.name in MEMORY_METRICS],
        optional={m: n for m in OPTIONAL_METRICS if (n := sum(s.name == m for s in per_device))},
        unlabelled=unlabelled,
    )


def metrics_port(service: Mapping[str, Any]) -> str | None:
    """The Service port to scrape: a DCGM port name if there is one, else the first port."""
    ports = (service.get("spec") or {}).get("ports") or []
    for wanted in DCGM_PORT_NAMES:
        for p in ports:
            if p.get("name") == wanted:
                return str(wanted)
    if ports:
        return str(ports[0].get("name") or ports[0].get("port"))
    return None


def service_proxy_path(namespace: str, service: str, port: str, path: str) -> str:
    """The API server's proxy to a Service port (``services/proxy``), ``path`` absolute."""
    return f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}"
