"""Kubernetes AI Conformance, API level: what the cluster's APIs show for seven requirement ids
(AIConformance-1.36; dra_support from 1.33-1.35).

Each check reads API objects (ai_inference also creates a Gateway, an HTTPRoute and two
Services, labelled and removed after) and runs no container, so each reports tier "api". A
cluster without the capability skips the check through ``aic.absent`` naming what was looked
for; one with part of it passes with ``aic.partial``. A read that is refused or times out fails
the check: not being allowed to look is not absence. What is concluded from each object is in
pytest_k8sai/clusters/aicprobes.py (unit-tested without a cluster).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, NoReturn

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_k8sai.clusters import aicprobes as probes
from pytest_k8sai.clusters.apireader import JSON, Reader, ReadError
from pytest_k8sai.clusters.base import CREATED_BY_LABEL, CREATED_BY_VALUE, RUN_ID_LABEL
from pytest_k8sai.clusters.existing import why_failed
from pytest_k8sai.clusters.objects import ObjectTracker, ownership_labels
from pytest_k8sai.clusters.preflight.facts import (
    DRA_GROUP,
    GATEWAY_GROUP,
    GPU,
    MONITORING_GROUP,
    PRODUCT_LABEL,
    ClusterFacts,
    read_discovery,
)
from pytest_k8sai.core.apis import DAS_CLAIMS, DAS_GROUP

pytestmark = [pytest.mark.conformance]

OWN = f"{CREATED_BY_LABEL}={CREATED_BY_VALUE} with a {RUN_ID_LABEL}"
# ai_inference: an OpenAI-style route, 80/20 over two model backends.
GATEWAY = "aic-gateway"
ROUTE = "aic-chat-route"
CHAT_PATH = "/v1/chat/completions"
MODEL_HEADER = ("x-model-name", "aic-model")
BACKENDS = (probes.Backend("aic-model-a", 8000, 80), probes.Backend("aic-model-b", 8000, 20))
# A controller acknowledges a route within seconds; a cloud Gateway's load balancer may take
# minutes, but the route's Accepted condition does not wait for it.
ROUTE_TIMEOUT_S = 120.0
POLL_S = 0.5
LISTED = 8  # names shown per note before "... and N more"


# -- reading -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader(cluster) -> Reader:
    return Reader(cluster.api_client, timeout_s=cluster.profile.reach.connect_timeout_s)


@pytest.fixture(scope="module")
def discovery(reader: Reader) -> ClusterFacts:
    """Served API groups and versions (and the resources of the groups preflight knows)."""
    cf = ClusterFacts()
    read_discovery(reader, cf)
    if cf.groups is None:
        why = next((f.detail for f in cf.facts if f.status == "unknown"), "")
        pytest.fail(f"Cannot read API discovery, so no check can tell what is served: {why}.")
    return cf


def _cannot_read(err: ReadError) -> NoReturn:
    what = "Not allowed to read" if err.forbidden else "Could not read"
    pytest.fail(
        f"{what} {err.path}: {err.why}. The check cannot tell whether the cluster has what it "
        "looks for, so it fails rather than reporting it absent.",
        pytrace=False,
    )


def _get(reader: Reader, path: str, query: list[tuple[str, str]] | None = None) -> JSON:
    try:
        return reader.get(path, query)
    except ReadError as err:
        _cannot_read(err)


def _items(reader: Reader, path: str, query: list[tuple[str, str]] | None = None) -> list[JSON]:
    return list(_get(reader, path, query).get("items") or [])


def _resources(reader: Reader, group: str, version: str) -> list[str]:
    """Resources ``group/version`` serves (subresources such as gateways/status left out)."""
    doc = _get(reader, f"/apis/{group}/{version}")
    return sorted(r["name"] for r in doc.get("resources") or [] if "/" not in r["name"])


def _get_text(api: client.ApiClient, path: str, timeout_s: float) -> str:
    """GET a text page (a metrics endpoint behind the API server's proxy); Reader reads JSON."""
    try:
        request = api.param_serialize(
            method="GET",
            resource_path=path,
            header_params={"Accept": "text/plain, */*"},
            auth_settings=["BearerToken"],
        )
        resp = api.call_api(*request, _request_timeout=timeout_s)
        data = resp.read()
    except Exception as exc:  # noqa: BLE001 - every failure becomes one readable line
        raise ReadError(path, why_failed(exc, timeout_s)) from None
    text = bytes(data).decode(errors="replace")
    if not 200 <= resp.status < 300:
        why = f"the server answered HTTP {resp.status} {resp.reason or ''}".rstrip()
        # The API server's proxy says why in a Status (no endpoints, dial failed, forbidden).
        try:
            message = str(json.loads(text).get("message", ""))
        except (ValueError, AttributeError):
            message = " ".join(text.split())[:200]
        raise ReadError(path, f"{why}: {message}" if message else why, resp.status)
    return text


def _dra_slices(reader: Reader, discovery: ClusterFacts) -> tuple[str, list[JSON]]:
    """(version read, every ResourceSlice); ("", []) where DRA is not served."""
    version = probes.pick_version((discovery.groups or {}).get(DRA_GROUP, []), probes.DRA_VERSIONS)
    if version is None or "resourceslices" not in _resources(reader, DRA_GROUP, version):
        return "", []
    return version, _items(reader, f"/apis/{DRA_GROUP}/{version}/resourceslices")


def _listed(names: Iterable[str]) -> str:
    names = list(names)
    more = f" ... and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more if names else "none"


def _api_message(exc: ApiException) -> str:
    try:
        message = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return f"HTTP {exc.status} {exc.reason or ''}".rstrip() + (f": {message}" if message else "")


# -- networking: ai_inference ------------------------------------------------------------------


def _wait_route(
    custom: client.CustomObjectsApi, version: str, namespace: str
) -> tuple[JSON | None, float]:
    """The route's status entry for our Gateway once Accepted=True (or the last one seen, at
    the timeout), and the seconds it took."""
    start = time.monotonic()
    parent: JSON | None = None
    while time.monotonic() - start < ROUTE_TIMEOUT_S:
        route = custom.get_namespaced_custom_object(
            GATEWAY_GROUP, version, namespace, "httproutes", ROUTE, _request_timeout=30
        )
        parent = probes.route_parent(route, GATEWAY, namespace)
        if parent is not None and probes.is_true(parent, "Accepted"):
            return parent, time.monotonic() - start
        time.sleep(POLL_S)
    return parent, time.monotonic() - start


@pytest.mark.aic("ai_inference")
def test_gateway_api_accepts_weighted_header_route(
    request, cluster, reader, discovery, k8sai_run_id, aic, slo
):
    """Gateway API served, a GatewayClass accepted by a controller, and that controller accepts
    an HTTPRoute with weighted backends and a header match on an OpenAI path."""
    versions = (discovery.groups or {}).get(GATEWAY_GROUP, [])
    if not versions:
        aic.absent(
            f"the Gateway API is not served: API discovery lists no {GATEWAY_GROUP} group, so "
            "there are no GatewayClass, Gateway or HTTPRoute CRDs"
        )
    version = probes.pick_version(versions, probes.GATEWAY_VERSIONS)
    if version is None:
        aic.absent(
            f"{GATEWAY_GROUP} is served only as {', '.join(versions)}; HTTPRoute with weights "
            "and header matches needs v1 or v1beta1"
        )
    served = _resources(reader, GATEWAY_GROUP, version)
    if missing := [r for r in probes.GATEWAY_RESOURCES if r not in served]:
        aic.absent(f"{GATEWAY_GROUP}/{version} does not serve {', '.join(missing)}")
    aic.note(f"Gateway API served: {GATEWAY_GROUP} {', '.join(versions)} (used {version})")
    classes = _items(reader, f"/apis/{GATEWAY_GROUP}/{version}/gatewayclasses")
    if not classes:
        aic.absent(
            "the Gateway API CRDs are installed but no GatewayClass exists: no Gateway "
            "controller offers a class"
        )
    accepted = probes.accepted_classes(classes)
    states = "; ".join(probes.class_states(classes))
    if not accepted:
        aic.absent(f"no GatewayClass is Accepted by a controller ({states})")
    aic.note(f"GatewayClasses: {states}")
    slo.info(
        "GatewayClasses accepted by a controller",
        len(accepted),
        unit="classes",
        n=len(classes),
        source=f"GET /apis/{GATEWAY_GROUP}/{version}/gatewayclasses, condition Accepted",
    )
    class_name = accepted[0]
    namespace = request.getfixturevalue("k8s_namespace")  # only once there is a class to use
    route_body = probes.weighted_route_body(
        ROUTE, GATEWAY, BACKENDS, path=CHAT_PATH, header=MODEL_HEADER, version=version
    )
    with ObjectTracker(cluster.api_client, k8sai_run_id) as objs:
        try:
            for b in BACKENDS:
                body = probes.backend_service_body(
                    b.service, b.port, ownership_labels(k8sai_run_id)
                )
                cluster.core.create_namespaced_service(namespace, body, _request_timeout=30)
            objs.create(
                probes.gateway_body(GATEWAY, class_name, version=version), "gateways", namespace
            )
            objs.create(route_body, "httproutes", namespace)
            parent, took_s = _wait_route(cluster.custom, version, namespace)
            gateway = cluster.custom.get_namespaced_custom_object(
                GATEWAY_GROUP, version, namespace, "gateways", GATEWAY, _request_timeout=30
            )
        except ApiException as exc:
            pytest.fail(
                f"Could not create or read the Gateway API objects in namespace {namespace}: "
                f"{_api_message(exc)}.",
                pytrace=False,
            )
    gw_state = probes.describe(probes.conditions(gateway), "Accepted", "Programmed")
    route_what = (
        f"HTTPRoute {namespace}/{ROUTE} ({CHAT_PATH} with header {MODEL_HEADER[0]}: "
        f"{MODEL_HEADER[1]}, backends {'/'.join(str(b.weight) for b in BACKENDS)} weighted)"
    )
    if parent is None or not probes.is_true(parent, "Accepted"):
        seen = (
            probes.describe(probes.conditions(parent), "Accepted", "ResolvedRefs")
            if parent is not None
            else f"no status.parents entry for Gateway {GATEWAY}"
        )
        pytest.fail(
            f"{route_what} was not Accepted within {ROUTE_TIMEOUT_S:g} s by the controller of "
            f"GatewayClass {class_name}: {seen}; Gateway {GATEWAY}: {gw_state}.",
            pytrace=False,
        )
    route_state = probes.describe(probes.conditions(parent), "Accepted", "ResolvedRefs")
    controller = parent.get("controllerName", "?")
    aic.note(f"{route_what} on Gateway {GATEWAY} (class {class_name}): {route_state}")
    aic.note(f"Gateway {namespace}/{GATEWAY}: {gw_state}; controller {controller}")
    if not probes.is_true(parent, "ResolvedRefs"):
        aic.note(f"ResolvedRefs is not True for the two backend Services: {route_state}")
    aic.tier(
        "api",
        f"controller {controller} accepted a weighted, header-matched HTTPRoute; no request "
        "was sent through the Gateway",
    )
    slo.info(
        "HTTPRoute accepted after",
        took_s * 1000,
        unit="ms",
        n=1,
        source=f"HTTPRoute create -> status.parents[{GATEWAY}] Accepted=True, polled every "
        f"{POLL_S:g} s",
    )


# -- accelerators: dra_support, driver_runtime_management, gpu_sharing --------------------------


@pytest.mark.aic("dra_support")
def test_dra_api_served_and_devices_published(reader, discovery, aic, slo):
    """resource.k8s.io served with DeviceClasses and ResourceSlices; the API without devices is
    partial."""
    versions = (discovery.groups or {}).get(DRA_GROUP, [])
    if not versions:
        aic.absent(f"the DRA API is not served: API discovery lists no {DRA_GROUP} group")
    version = probes.pick_version(versions, probes.DRA_VERSIONS) or versions[0]
    served = _resources(reader, DRA_GROUP, version)
    aic.tier(
        "api",
        f"{DRA_GROUP}/{version} discovery and its DeviceClass and ResourceSlice lists; no "
        "ResourceClaim was allocated",
    )
    aic.note(
        f"{DRA_GROUP} served versions: {', '.join(versions)}; {version} serves "
        f"{', '.join(served) or 'nothing'}"
    )
    if missing := [r for r in probes.DRA_RESOURCES if r not in served]:
        aic.partial(f"{DRA_GROUP}/{version} does not serve {', '.join(missing)}")
    base = f"/apis/{DRA_GROUP}/{version}"
    classes = _items(reader, f"{base}/deviceclasses") if "deviceclasses" in served else []
    slices = _items(reader, f"{base}/resourceslices") if "resourceslices" in served else []
    devices = sum(len(probes.slice_devices(s)) for s in slices)
    drivers = Counter(str((s.get("spec") or {}).get("driver", "?")) for s in slices)
    aic.note(
        f"DeviceClasses: {_listed(probes.name_of(c) for c in classes)}; ResourceSlices: "
        f"{len(slices)} ({_listed(f'{d} x{n}' for d, n in drivers.items())}), {devices} devices"
    )
    slo.info(
        "DRA devices published in ResourceSlices",
        devices,
        unit="devices",
        n=len(slices),
        source=f"GET {base}/resourceslices",
    )
    if not classes or not devices:
        aic.partial(
            f"API served; no DRA driver publishes devices ({len(classes)} DeviceClasses, "
            f"{len(slices)} ResourceSlices, {devices} devices)"
        )


@pytest.mark.aic("driver_runtime_management")
def test_gpu_driver_version_discoverable(reader, discovery, aic, slo):
    """Every GPU node's driver version is readable from the API: GPU feature discovery's labels
    or a DRA device's driverVersion attribute."""
    nodes = _items(reader, "/api/v1/nodes")
    own_names = {probes.name_of(n) for n in nodes if probes.is_own(n)}
    own_gpu = [n for n in nodes if probes.is_own(n) and probes.is_gpu_node(n)]
    gpu_nodes = [n for n in nodes if not probes.is_own(n) and probes.is_gpu_node(n)]
    labelled = {
        probes.name_of(n): v
        for n in gpu_nodes
        if (v := probes.driver_version_from_labels(probes.labels_of(n)))
    }
    dra_version, slices = _dra_slices(reader, discovery)
    slices = [s for s in slices if probes.slice_node(s) not in own_names]
    dra = probes.dra_versions(slices)
    runtime_classes = _items(reader, "/apis/node.k8s.io/v1/runtimeclasses")
    # The local tier's GPU nodes are simulated: they have no driver to report.
    not_counted = (
        f" ({len(own_gpu)} GPU node(s) a suite run made, label {OWN}, not counted)"
        if own_gpu
        else ""
    )
    if not gpu_nodes and not dra:
        aic.absent(
            f"no GPU node to read a driver version from: no node has allocatable {GPU} or "
            f"MIG/DAS slices or the {probes.GPU_PRESENT_LABEL}/{PRODUCT_LABEL} label, and no "
            f"ResourceSlice device has a driverVersion attribute{not_counted}"
        )
    if not labelled and not dra:
        aic.absent(
            f"no GPU driver version is published: none of the {len(gpu_nodes)} GPU node(s) "
            f"carries GPU feature discovery's labels ({', '.join(probes.DRIVER_LABELS_LOOKED_FOR)})"
            f" and no ResourceSlice device has a driverVersion attribute{not_counted}"
        )
    aic.tier(
        "api",
        "driver versions read from node labels and ResourceSlice attributes; no container ran "
        "nvidia-smi against the driver",
    )
    all_gpu = {probes.name_of(n) for n in gpu_nodes} | {v.node for v in dra}
    covered = set(labelled) | {v.node for v in dra}
    versions = Counter(v for _, v in labelled.values()) + Counter(v.version for v in dra)
    runtime_labels = [probes.runtime_version_from_labels(probes.labels_of(n)) for n in gpu_nodes]
    dra_runtimes = probes.dra_versions(slices, probes.DRA_RUNTIME_VERSION_ATTRS)
    runtimes = Counter(rv[1] for rv in runtime_labels if rv) + Counter(
        v.version for v in dra_runtimes
    )
    keys = sorted({k for k, _ in labelled.values()} | {f"ResourceSlice {v.key}" for v in dra})
    aic.note(
        f"driver versions: {_listed(f'{v} ({c} source(s))' for v, c in versions.items())}; "
        f"read from {', '.join(keys)}; CUDA versions: "
        f"{_listed(f'{v} ({c})' for v, c in runtimes.items())}"
    )
    container_runtimes = Counter(
        ((n.get("status") or {}).get("nodeInfo") or {}).get("containerRuntimeVersion") or "?"
        for n in gpu_nodes
    )
    rc_names = (
        f"{probes.name_of(rc)} (handler {rc.get('handler', '?')})" for rc in runtime_classes
    )
    aic.note(
        "GPU nodes' container runtimes: "
        f"{_listed(f'{r} x{c}' for r, c in container_runtimes.items())}; "
        f"RuntimeClasses: {_listed(rc_names)}"
    )
    if dra_version:
        aic.note(f"{len(dra)} DRA devices publish a driver version ({DRA_GROUP}/{dra_version})")
    if len(versions) > 1:
        aic.note(f"GPU nodes run {len(versions)} different driver versions")
    slo.info(
        "GPU nodes publishing a driver version",
        len(covered),
        unit="nodes",
        n=len(all_gpu),
        source="GPU feature discovery labels (nvidia.com/cuda.driver-version.*, "
        "nvidia.com/cuda.driver.*) and ResourceSlice driverVersion attributes",
    )
    if uncovered := sorted(all_gpu - covered):
        aic.partial(
            f"{len(uncovered)} of {len(all_gpu)} GPU nodes publish no driver version: "
            f"{_listed(uncovered)}"
        )


@pytest.mark.aic("gpu_sharing")
def test_gpu_sharing_exposed(reader, discovery, aic, slo):
    """A node offers GPUs partitioned (MIG, DAS slices, DRA MIG devices) or shared (time-slicing
    or MPS replicas); nodes pytest-k8sai made itself do not count."""
    nodes = _items(reader, "/api/v1/nodes")
    theirs = [n for n in nodes if not probes.is_own(n)]
    own_names = {probes.name_of(n) for n in nodes if probes.is_own(n)}
    sharing = {probes.name_of(n): s for n in theirs if (s := probes.node_sharing(n))}
    own_sharing = {
        probes.name_of(n): s for n in nodes if probes.is_own(n) and (s := probes.node_sharing(n))
    }
    _, slices = _dra_slices(reader, discovery)
    partitions = probes.dra_partitions(s for s in slices if probes.slice_node(s) not in own_names)
    gpu_nodes = [n for n in theirs if probes.is_gpu_node(n)]
    if discovery.serves(DAS_GROUP, DAS_CLAIMS):
        aic.note(f"DAS is installed: {DAS_CLAIMS}.{DAS_GROUP} is served")
    if own_sharing:
        aic.note(
            f"not counted: {len(own_sharing)} node(s) a suite run made ({OWN}) expose "
            f"{_listed(sorted({x.split(':')[0] for s in own_sharing.values() for x in s}))}"
        )
    if not sharing and not partitions:
        aic.absent(
            "no node exposes shared or partitioned GPUs: no allocatable nvidia.com/mig-* or "
            f"mig.das.com/*, no {probes.SHARING_STRATEGY_LABEL} time-slicing/mps label, no "
            "nvidia.com/*.replicas label above 1 and no DRA device of type mig (looked at "
            f"{len(theirs)} node(s), {len(gpu_nodes)} with GPUs; {len(own_names)} node(s) "
            f"a suite run made, label {OWN}, not counted)"
        )
    aic.tier(
        "api",
        "node allocatable, GPU feature discovery labels and ResourceSlices; no pod ran on a "
        "shared or partitioned GPU",
    )
    for name, items in list(sharing.items())[:LISTED]:
        aic.note(f"{name}: {', '.join(items)}")
    if partitions:
        aic.note(f"DRA MIG devices: {len(partitions)} ({_listed(partitions)})")
    shared_nodes = set(sharing) | {p.split("/")[0] for p in partitions}
    slo.info(
        "nodes exposing shared or partitioned GPUs",
        len(shared_nodes),
        unit="nodes",
        n=len(shared_nodes | {probes.name_of(n) for n in gpu_nodes}),
        source="node allocatable nvidia.com/mig-*, mig.das.com/*; labels "
        f"{probes.SHARING_STRATEGY_LABEL}, nvidia.com/*.replicas; ResourceSlice type=mig",
    )


# -- observability: accelerator_metrics, ai_service_metrics ------------------------------------


@pytest.mark.aic("accelerator_metrics")
def test_accelerator_metrics_per_device(cluster, reader, aic, slo):
    """A DCGM exporter Service, read through the API server's service proxy, has per-device
    utilisation and memory series."""
    services: dict[tuple[str, str], JSON] = {}
    for selector in probes.DCGM_SERVICE_SELECTORS:
        for svc in _items(reader, "/api/v1/services", [("labelSelector", selector)]):
            meta = svc.get("metadata") or {}
            services[(meta.get("namespace", "?"), meta.get("name", "?"))] = svc
    if not services:
        aic.absent(
            "no accelerator metrics endpoint: no Service labelled "
            f"{' or '.join(probes.DCGM_SERVICE_SELECTORS)} (NVIDIA DCGM exporter) in any namespace"
        )
    aic.tier(
        "api",
        "the exporter's metrics page read through the API server's service proxy; no load was "
        "put on the GPUs",
    )
    timeout_s = cluster.profile.reach.connect_timeout_s
    failures: list[str] = []
    for (ns, name), svc in sorted(services.items()):
        port = probes.metrics_port(svc)
        if port is None:
            failures.append(f"{ns}/{name}: the Service has no port")
            continue
        path = probes.service_proxy_path(ns, name, port, "/metrics")
        try:
            found = probes.accelerator_metrics(_get_text(cluster.api_client, path, timeout_s))
        except ReadError as err:
            failures.append(f"{ns}/{name}:{port}: {err.why}")
            continue
        except ValueError as exc:
            failures.append(f"{ns}/{name}:{port}: not a Prometheus text page ({exc})")
            continue
        if found.ok:
            break
        unlabelled = (
            f" ({', '.join(found.unlabelled)} carry no device label)" if found.unlabelled else ""
        )
        failures.append(f"{ns}/{name}:{port}: no {' and no '.join(found.missing())}{unlabelled}")
    else:
        pytest.fail(
            "Accelerator metrics Service(s) found, but none was shown to have per-device "
            f"utilisation and memory series: {'; '.join(failures)}.",
            pytrace=False,
        )
    aic.note(
        f"{ns}/{name}:{port}: {len(found.utilisation)} utilisation and {len(found.memory)} "
        f"memory series with a device label; devices {_listed(found.devices)}"
    )
    aic.note(
        "optional metrics: "
        + _listed(f"{m} ({c} series)" for m, c in found.optional.items())
        + (f"; not read: {'; '.join(failures)}" if failures else "")
    )
    slo.info(
        "GPUs with utilisation and memory metrics",
        len(found.devices),
        unit="GPUs",
        n=len({s.device for s in found.utilisation}),
        source=f"GET {path} ({', '.join(probes.UTIL_METRICS + probes.MEMORY_METRICS)})",
    )


@pytest.mark.aic("ai_service_metrics")
def test_monitoring_discovers_workloads(reader, discovery, aic, slo):
    """The Prometheus operator's monitors are served, a Prometheus exists, and its API shows
    targets it discovered from ServiceMonitors/PodMonitors up."""
    if not (discovery.groups or {}).get(MONITORING_GROUP):
        aic.absent(
            "no monitoring system that discovers workloads: API discovery lists no "
            f"{MONITORING_GROUP} group (Prometheus operator: ServiceMonitor, PodMonitor)"
        )
    served = discovery.resources.get(MONITORING_GROUP, [])
    monitors = [r for r in probes.MONITOR_RESOURCES if r in served]
    if not monitors or "prometheuses" not in served:
        aic.absent(
            f"{MONITORING_GROUP} serves {', '.join(sorted(served)) or 'nothing'}: it needs "
            "servicemonitors or podmonitors and prometheuses to discover workloads"
        )
    base = f"/apis/{MONITORING_GROUP}/v1"
    proms = _items(reader, f"{base}/prometheuses")
    if not proms:
        aic.absent(
            f"{', '.join(monitors)} are served but no Prometheus object exists in any "
            "namespace: nothing discovers or scrapes workloads"
        )
    counts = {r: len(_items(reader, f"{base}/{r}")) for r in monitors}
    prom_names = [f"{(p['metadata'] or {}).get('namespace')}/{probes.name_of(p)}" for p in proms]
    aic.tier(
        "api",
        "Prometheus operator objects and Prometheus's targets API; no workload of this run was "
        "scraped",
    )
    aic.note(
        f"Prometheus objects: {_listed(prom_names)}; "
        + ", ".join(f"{r}: {c}" for r, c in counts.items())
    )
    tried: list[str] = []
    for ns in sorted({str(p["metadata"].get("namespace")) for p in proms}):
        path = probes.service_proxy_path(
            ns, probes.PROMETHEUS_SERVICE, probes.PROMETHEUS_PORT, "/api/v1/targets"
        )
        try:
            page = _get_text(reader.api, f"{path}?state=active", reader.timeout_s)
            targets = probes.monitor_targets(json.loads(page))
        except ReadError as err:
            tried.append(f"{ns}/{probes.PROMETHEUS_SERVICE}:{probes.PROMETHEUS_PORT}: {err.why}")
            continue
        except ValueError as exc:
            tried.append(f"{ns}/{probes.PROMETHEUS_SERVICE}: {exc}")
            continue
        break
    else:
        aic.partial(
            "a Prometheus is declared but its API could not be read through the API server's "
            f"service proxy ({'; '.join(tried)}): that it discovers and scrapes workloads is "
            "not shown"
        )
        return
    slo.info(
        "workload targets up (ServiceMonitor/PodMonitor)",
        targets.up,
        unit="targets",
        n=targets.total,
        source=f"GET {path}?state=active, scrape pools serviceMonitor/*, podMonitor/*",
    )
    if targets.up == 0:
        aic.partial(
            f"Prometheus in {ns} answers, but none of its {targets.total} ServiceMonitor/"
            "PodMonitor targets is up"
        )
        return
    aic.note(
        f"Prometheus in {ns}: {targets.up} of {targets.total} monitor targets up; pools "
        f"{_listed(targets.pools)}"
    )


# -- scheduling: pod_autoscaling ---------------------------------------------------------------


@pytest.mark.aic("pod_autoscaling")
def test_hpa_can_scale_on_custom_metrics(reader, discovery, aic, slo):
    """autoscaling/v2 served, and a custom or external metrics API registered and Available
    (without one, an HPA can scale only on CPU and memory)."""
    versions = (discovery.groups or {}).get("autoscaling", [])
    if "v2" not in versions:
        aic.absent(
            "autoscaling/v2 (HorizontalPodAutoscaler with custom metrics) is not served "
            f"(autoscaling versions: {', '.join(versions) or 'none'})"
        )
    if "horizontalpodautoscalers" not in _resources(reader, "autoscaling", "v2"):
        aic.absent("autoscaling/v2 is served without horizontalpodautoscalers")
    apis = probes.metrics_apis(
        _items(reader, "/apis/apiregistration.k8s.io/v1/apiservices"),
        (*probes.METRICS_API_GROUPS, probes.RESOURCE_METRICS_GROUP),
    )
    metric_apis = [a for a in apis if a.group in probes.METRICS_API_GROUPS]
    available = [a for a in metric_apis if a.available]
    aic.tier(
        "api",
        "autoscaling/v2 discovery and the metrics APIServices' Available condition; no HPA was "
        "created or scaled",
    )

    def state(a: probes.ApiService) -> str:
        return f"{a.name} ({'Available' if a.available else 'not Available'}: {a.why})"

    aic.note(
        "metrics APIServices: "
        + _listed(state(a) for a in apis)
        + f"; autoscaling versions {', '.join(versions)}"
    )
    slo.info(
        "custom/external metrics APIs Available",
        len(available),
        unit="APIServices",
        n=len(metric_apis),
        source="GET /apis/apiregistration.k8s.io/v1/apiservices, groups "
        f"{', '.join(probes.METRICS_API_GROUPS)}, condition Available",
    )
    if not metric_apis:
        aic.partial("HPA served; no custom/external metrics API: cannot scale on AI metrics")
        return
    if not available:
        aic.partial(
            "HPA served; the custom/external metrics API is registered but not Available: "
            + _listed(state(a) for a in metric_apis)
        )
        return
    for a in available:
        doc: dict[str, Any] = _get(reader, f"/apis/{a.group}/{a.version}")
        aic.note(f"{a.group}/{a.version} lists {len(doc.get('resources') or [])} metrics")
