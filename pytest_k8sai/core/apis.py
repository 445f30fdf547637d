"""API groups, versions, CRD names and well-known labels of the platform parts: the one place
they are written, so shared layers (the existing-cluster provider, the job-latency recorder,
the Job builders) can name them without importing a part."""

from __future__ import annotations

from typing import Any

# Kueue (kueue.x-k8s.io/v1beta2 is the version Kueue v0.17 stores and serves).
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSION = "v1beta2"
KUEUE_API_VERSION = f"{KUEUE_GROUP}/{KUEUE_VERSION}"
KUEUE_CONFIG_API_VERSION = f"config.{KUEUE_GROUP}/{KUEUE_VERSION}"
KUEUE_CRD = f"clusterqueues.{KUEUE_GROUP}"  # present when Kueue is installed
# The Kueue API versions the suites speak, preferred first: v1beta1 for Kueue before v0.15
# (e.g. Red Hat's build before 1.3); Kueue v0.20 serves only v1beta2.
KUEUE_VERSIONS = ("v1beta2", "v1beta1")
KUEUE_QUEUE_LABEL = f"{KUEUE_GROUP}/queue-name"
KUEUE_PRIORITY_CLASS_LABEL = f"{KUEUE_GROUP}/priority-class"

# Dynamic Accelerator Slicer (DAS): one AllocationClaim per pod it slices for.
DAS_GROUP = "inference.redhat.com"
DAS_VERSION = "v1alpha1"
DAS_CLAIMS = "allocationclaims"
DAS_CLAIM_CRD = f"{DAS_CLAIMS}.{DAS_GROUP}"

# Gateway API Inference Extension: the InferencePool (GA group, v1).
POOL_GROUP = "inference.networking.k8s.io"
POOL_VERSION = "v1"
POOL_PLURAL = "inferencepools"
POOL_ACTIVE_PORTS = f"{POOL_GROUP}/active-ports"


def kueue_version_of(served: list[str] | None) -> str:
    """The version to speak to a Kueue serving ``served`` (None or nothing known: v1beta2)."""
    return next((v for v in KUEUE_VERSIONS if v in (served or [])), KUEUE_VERSION)


def kueue_body(body: dict[str, Any], version: str) -> dict[str, Any]:
    """A Kueue object written for v1beta2, as ``version`` spells it. The objects the suites
    create differ only here (Kueue's v1beta1 conversion: ClusterQueue spec.cohort became
    spec.cohortName); every other field they set, and every status field they read, is the
    same in both versions."""
    group, _, have = str(body.get("apiVersion", "")).partition("/")
    if group != KUEUE_GROUP or have == version:
        return body
    out = {**body, "apiVersion": f"{KUEUE_GROUP}/{version}"}
    spec = dict(body.get("spec") or {})
    if body.get("kind") == "ClusterQueue":
        if version == "v1beta1" and "cohortName" in spec:
            spec["cohort"] = spec.pop("cohortName")
        elif version == "v1beta2" and "cohort" in spec:
            spec["cohortName"] = spec.pop("cohort")
    if "spec" in body:
        out["spec"] = spec
    return out
