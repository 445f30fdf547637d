"""batch/v1 Jobs that ask for GPUs and, on simulated tiers, carry their own run time."""

from __future__ import annotations

from typing import Any

from pytest_k8sai import kwok
from pytest_k8sai.kueue import PRIORITY_CLASS_LABEL, QUEUE_LABEL

# Never pulled on KWOK nodes; a real cluster's profile names a real image instead.
SIMULATED_IMAGE = "registry.k8s.io/pause:3.10"


def gpu_job(
    name: str,
    namespace: str,
    *,
    run_seconds: float,
    gpus: int = 1,
    queue: str | None = None,
    priority_class: str | None = None,
    image: str = SIMULATED_IMAGE,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A one-pod Job using ``gpus`` whole GPUs that runs for ``run_seconds`` on KWOK."""
    meta_labels = dict(labels or {})
    if queue:
        meta_labels[QUEUE_LABEL] = queue
    if priority_class:
        meta_labels[PRIORITY_CLASS_LABEL] = priority_class
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": meta_labels},
        "spec": {
            # Created suspended, as Kueue expects: it unsuspends the Job on admission.
            "suspend": queue is not None,
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "template": {
                "metadata": {
                    "annotations": kwok.run_for(run_seconds),
                    "labels": dict(labels or {}),
                },
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": [kwok.KWOK_TOLERATION],
                    "containers": [
                        {
                            "name": "work",
                            "image": image,
                            "resources": {
                                "requests": {"nvidia.com/gpu": str(gpus)},
                                "limits": {"nvidia.com/gpu": str(gpus)},
                            },
                        }
                    ],
                },
            },
        },
    }
