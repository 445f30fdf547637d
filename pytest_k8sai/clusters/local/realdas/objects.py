"""The Kubernetes objects the real DAS needs on the local tier, built from its source tree.

Upstream's CRDs, webhook configuration and scheduler configuration are read from the unpacked
source at run time (never copied into this project) and adapted to 127.0.0.1; the rest are
stand-ins for what the NVIDIA GPU operator would provide (a ready ClusterPolicy, the
``nvidia-legacy`` RuntimeClass the webhook puts on every pod it rewrites).
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters.base import CREATED_BY_LABEL, CREATED_BY_VALUE
from pytest_k8sai.clusters.local.kueue_manager import install_crd_files
from pytest_k8sai.core.errors import ClusterError

NAMESPACE = "das-operator"  # upstream's; the scheduler plugin and daemonset default to it
# Objects this tier creates carry the project's ownership label and the well-known one.
LABELS = {CREATED_BY_LABEL: CREATED_BY_VALUE, "app.kubernetes.io/managed-by": CREATED_BY_VALUE}
# Upstream files (paths in the instaslice-operator tree).
CRD_FILES = (
    "manifests/inference.redhat.com_allocationclaims.yaml",
    "manifests/inference.redhat.com_nodeaccelerators.yaml",
    # DASOperator: the scheduler's and daemonset's log-level controllers watch it.
    "manifests/instaslice-operator.crd.yaml",
)
WEBHOOK_FILE = "bindata/assets/instaslice-operator/webhook.yaml"
SCHEDULER_CONFIG_FILE = "bindata/assets/instaslice-operator/scheduler_config.yaml"
EMULATED_FILE = "test/utils/emulated.go"
WEBHOOK_NAME = "das-mutating-webhook-configuration"  # upstream's name; the suite looks for it
WEBHOOK_PATH = "/mutate-pod"
RUNTIME_CLASS = "nvidia-legacy"  # set by the webhook (pkg/webhook/webhook.go)
RUNTIME_HANDLER = "runc"  # what a real kubelet on containerd here can run
CLUSTER_POLICY = "gpu-cluster-policy"  # das-daemonset waits for it (clusterpolicy.go)
CLUSTER_POLICY_CRD = "clusterpolicies.nvidia.com"
DAS_RESOURCE_PREFIX = "mig.das.com/"
# What das-daemonset's emulated mode reports (A100-PCIE-40GB, 2 GPUs, test/utils/emulated.go),
# counted as its device plugin counts (placements of size > 0 per GPU, manager.go
# countDevices). Used only when that Go file can no longer be read as expected.
FALLBACK_PER_GPU = {
    "1g.5gb": 7,
    "1g.5gb+me": 7,
    "1g.10gb": 4,
    "2g.10gb": 3,
    "3g.20gb": 2,
    "4g.20gb": 1,
    "7g.40gb": 1,
}
FALLBACK_GPUS = 2


def _docs(path: Path) -> list[dict[str, Any]]:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d]
    except OSError as exc:
        raise ClusterError(
            f"The DAS source tree lacks {path} ({exc.strerror}); is it instaslice-operator at "
            "the pinned commit?"
        ) from None


def _labelled(meta: dict[str, Any]) -> dict[str, Any]:
    meta["labels"] = {**(meta.get("labels") or {}), **LABELS}
    return meta


# -- CRDs ---------------------------------------------------------------------------------


def crd_docs(source: Path) -> list[dict[str, Any]]:
    """Upstream's CRDs for DAS's own API, labelled as ours."""
    docs = [d for f in CRD_FILES for d in _docs(source / f)]
    for d in docs:
        _labelled(d["metadata"])
    return docs


def cluster_policy_crd() -> dict[str, Any]:
    """A stand-in for the GPU operator's ClusterPolicy CRD: das-daemonset reads only
    ``status.state`` of one object, so any content is accepted. No status subresource, so the
    object is created with its status in one request."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CLUSTER_POLICY_CRD, "labels": dict(LABELS)},
        "spec": {
            "group": "nvidia.com",
            "scope": "Cluster",
            "names": {
                "plural": "clusterpolicies",
                "singular": "clusterpolicy",
                "kind": "ClusterPolicy",
                "listKind": "ClusterPolicyList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def cluster_policy() -> dict[str, Any]:
    return {
        "apiVersion": "nvidia.com/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": CLUSTER_POLICY, "labels": dict(LABELS)},
        "spec": {},
        "status": {"state": "ready"},
    }


def runtime_class() -> dict[str, Any]:
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": RUNTIME_CLASS, "labels": dict(LABELS)},
        "handler": RUNTIME_HANDLER,
    }


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _labelled({"name": NAMESPACE})}


# -- webhook and scheduler configuration ----------------------------------------------------


def webhook_configuration(
    source: Path, port: int, ca: bytes, namespace_label: tuple[str, str]
) -> dict[str, Any]:
    """Upstream's MutatingWebhookConfiguration pointed at das-webhook on 127.0.0.1:``port``.

    Upstream selects every namespace but a few system ones; here only namespaces carrying
    ``namespace_label`` are added to that (the selector's terms are ANDed), because the webhook
    also rewrites ``nvidia.com/gpu`` pods, which DAS cannot place: other suites' pods on the
    same cluster must never reach it."""
    docs = [
        d for d in _docs(source / WEBHOOK_FILE) if d.get("kind") == "MutatingWebhookConfiguration"
    ]
    if len(docs) != 1:
        raise ClusterError(f"{source / WEBHOOK_FILE}: expected one MutatingWebhookConfiguration")
    doc = copy.deepcopy(docs[0])
    # Upstream's labels and cert-manager's CA-injection annotation do not apply here (the
    # caBundle is set below).
    doc["metadata"] = {"name": doc["metadata"].get("name", WEBHOOK_NAME), "labels": dict(LABELS)}
    bundle = base64.b64encode(ca).decode()
    key, value = namespace_label
    for hook in doc.get("webhooks", []):
        path = (hook.get("clientConfig", {}).get("service") or {}).get("path", WEBHOOK_PATH)
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": bundle}
        selector = hook.get("namespaceSelector") or {}
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), key: value}
        hook["namespaceSelector"] = selector
    return doc


def scheduler_config(source: Path, kubeconfig: Path) -> dict[str, Any]:
    """Upstream's KubeSchedulerConfiguration (profile ``das-scheduler`` with the MigAccelerator
    plugin) for a single local process: no leader election, our kubeconfig."""
    docs = _docs(source / SCHEDULER_CONFIG_FILE)
    try:
        config = yaml.safe_load(docs[0]["data"]["config.yaml"])
    except (IndexError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise ClusterError(
            f"{source / SCHEDULER_CONFIG_FILE}: no KubeSchedulerConfiguration under "
            f"data.config.yaml ({exc})"
        ) from None
    config["leaderElection"] = {"leaderElect": False}
    config["clientConnection"] = {
        **(config.get("clientConnection") or {}),
        "kubeconfig": str(kubeconfig),
    }
    return dict(config)


# -- what the emulated daemonset advertises -------------------------------------------------


def _go_func_body(text: str, name: str) -> str | None:
    m = re.search(rf"^func {re.escape(name)}\(.*?\{{\n(.*?)^\}}", text, re.M | re.S)
    return m.group(1) if m else None


def emulated_placements(source: Path) -> tuple[dict[str, int], int] | None:
    """(slices per GPU for each MIG profile, GPUs per node) of das-daemonset's emulated mode,
    read from the Go tables it uses, or None when they no longer read as expected."""
    try:
        text = (source / EMULATED_FILE).read_text()
    except OSError:
        return None
    body = _go_func_body(text, "GenerateFakeCapacity")
    generator = re.search(r"return (\w+)\(", body or "")
    gen_body = _go_func_body(text, generator.group(1)) if generator else None
    table = re.search(r"(migPlacement\w+)\(\)", gen_body or "")
    base = _go_func_body(text, "generateFakeCapacityBase")
    placements = _go_func_body(text, table.group(1)) if table else None
    if placements is None or base is None:
        return None
    counts: dict[str, int] = {}
    # Each profile is `"<name>": {` ... up to the next profile; placements are {size, start}.
    parts = re.split(r'^\s*"([^"]+)":\s*\{', placements, flags=re.M)
    for name, block in zip(parts[1::2], parts[2::2], strict=True):
        sizes = re.findall(r"\{\s*(?:Size:\s*)?(\d+)\s*,\s*(?:Start:\s*)?\d+\s*\}", block)
        counts[name] = sum(1 for s in sizes if int(s) > 0)
    gpus = len(re.findall(r"GPUUUID:", base))
    return (counts, gpus) if counts and gpus else None


def resource_name(profile: str) -> str:
    # Extended-resource names cannot hold '+': the device plugin writes "-plus-"
    # (pkg/daemonset/deviceplugins/device.go).
    return DAS_RESOURCE_PREFIX + profile.replace("+", "-plus-")


def kwok_capacity(per_gpu: Mapping[str, int], gpus: int) -> dict[str, str]:
    """The ``mig.das.com/*`` capacity a kubelet would show for ``gpus`` emulated GPUs."""
    return {resource_name(p): str(n * gpus) for p, n in sorted(per_gpu.items()) if n}


# -- applying -------------------------------------------------------------------------------


def _create(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise


def install(api: client.ApiClient, source: Path, workdir: Path) -> list[str]:
    """Create the namespace, DAS's CRDs, the ClusterPolicy stand-in and the RuntimeClass
    (existing ones are kept); return the CRD names once discovery serves them."""
    core = client.CoreV1Api(api)
    _create(core.create_namespace, namespace())
    crd_dir = workdir / "das-crds"
    crd_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for doc in [*crd_docs(source), cluster_policy_crd()]:
        path = crd_dir / f"{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        files.append(path)
    names = install_crd_files(api, files, "DAS")
    custom = client.CustomObjectsApi(api)
    _create(
        custom.create_cluster_custom_object, "nvidia.com", "v1", "clusterpolicies", cluster_policy()
    )
    _create(client.NodeV1Api(api).create_runtime_class, runtime_class())
    return names


def register_webhook(api: client.ApiClient, doc: dict[str, Any]) -> None:
    adm = client.AdmissionregistrationV1Api(api)
    try:
        adm.create_mutating_webhook_configuration(doc)
    except ApiException as exc:
        if exc.status != 409:
            raise
        # Left by an earlier start on this cluster: its port and CA are stale.
        adm.replace_mutating_webhook_configuration(doc["metadata"]["name"], doc)


def remove_webhook(api: client.ApiClient, name: str = WEBHOOK_NAME) -> None:
    """Delete the webhook configuration: with failurePolicy Fail, pods in labelled namespaces
    could not be created once das-webhook stops."""
    try:
        client.AdmissionregistrationV1Api(api).delete_mutating_webhook_configuration(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
