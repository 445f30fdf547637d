"""API groups, versions, CRD names and well-known labels of the platform parts: the one place
they are written, so shared layers (the existing-cluster provider, the job-latency recorder,
the Job builders) can name them without importing a part."""

from __future__ import annotations

# Kueue (kueue.x-k8s.io/v1beta2 is the version Kueue v0.17 stores and serves).
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSION = "v1beta2"
KUEUE_API_VERSION = f"{KUEUE_GROUP}/{KUEUE_VERSION}"
KUEUE_CONFIG_API_VERSION = f"config.{KUEUE_GROUP}/{KUEUE_VERSION}"
KUEUE_CRD = f"clusterqueues.{KUEUE_GROUP}"  # present when Kueue is installed
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
