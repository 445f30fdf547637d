"""batch/v1 Jobs that ask for GPUs and, on simulated tiers, carry their own run time."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from pytest_k8sai.clusters.base import CREATED_BY_LABEL, CREATED_BY_VALUE, RUN_ID_LABEL
from pytest_k8sai.core.apis import KUEUE_PRIORITY_CLASS_LABEL as PRIORITY_CLASS_LABEL
from pytest_k8sai.core.apis import KUEUE_QUEUE_LABEL as QUEUE_LABEL
from pytest_k8sai.core.profiles import Profile, WorkloadPods
from pytest_k8sai.measure.joblatency import MODEL_LABEL
from pytest_k8sai.workloads import kwok

T = TypeVar("T")

# restricted-v2 (OpenShift) / the restricted Pod Security Standard, with no fixed UID.
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def pod_security(pods: WorkloadPods) -> dict[str, Any]:
    """The pod-level half of ``restricted``, with the profile's UID where the platform
    assigns none."""
    if pods.run_as_user is None:
        return RESTRICTED_POD
    return {**RESTRICTED_POD, "runAsUser": pods.run_as_user}


def gpu_job(
    name: str,
    namespace: str,
    *,
    run_seconds: float,
    gpus: int = 1,
    resource: str = "nvidia.com/gpu",
    queue: str | None = None,
    priority_class: str | None = None,
    image: str | None = None,
    labels: dict[str, str] | None = None,
    pods: WorkloadPods | None = None,
    parallelism: int = 1,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A Job of ``parallelism`` pods (all run at once, each must complete), each asking for
    ``gpus`` of ``resource`` (whole GPUs, or MIG slices such as
    ``nvidia.com/mig-1g.5gb``) that runs for ``run_seconds``: on KWOK by its annotations, on
    a node that really starts containers by ``sleep`` (``pods``: the profile's workload)."""
    pods = pods or WorkloadPods()
    container: dict[str, Any] = {
        "name": "work",
        "image": image or pods.image,
        "imagePullPolicy": pods.pull_policy,
        "resources": {
            "requests": {resource: str(gpus)},
            "limits": {resource: str(gpus)},
        },
    }
    if pods.sleep:
        container["command"] = ["sleep", f"{run_seconds:.3f}"]
    if pods.restricted:
        container["securityContext"] = RESTRICTED
    if run_id is not None:
        # The Job and its pods carry the run's labels: in a pre-created namespace, which the
        # run does not delete, they are how it finds what is its own (clusters/nspool.py).
        labels = {**(labels or {}), CREATED_BY_LABEL: CREATED_BY_VALUE, RUN_ID_LABEL: run_id}
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
            "completions": parallelism,
            "parallelism": parallelism,
            "template": {
                "metadata": {
                    "annotations": kwok.run_for(run_seconds),
                    "labels": dict(labels or {}),
                },
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": [kwok.KWOK_TOLERATION],
                    "containers": [container],
                    **({"hostNetwork": True} if pods.host_network else {}),
                    **(
                        {"imagePullSecrets": [{"name": n} for n in pods.image_pull_secrets]}
                        if pods.image_pull_secrets
                        else {}
                    ),
                    **({"securityContext": pod_security(pods)} if pods.restricted else {}),
                },
            },
        },
    }


def whisper_job(
    profile: Profile,
    name: str,
    namespace: str,
    *,
    model: str,
    run_s: float,
    audio_s: float,
    queue: str | None = None,
    priority_class: str | None = None,
    resource: str = "nvidia.com/gpu",
    ttl_after_finished_s: int | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """One Whisper transcription Job asking for one ``resource`` (a whole GPU or a MIG slice).

    On simulated tiers it runs ``run_s`` wall seconds on KWOK; on a real cluster it runs the
    profile's ``whisper.image`` with ``whisper.command`` templated for this job.
    ``ttl_after_finished_s``: the Job (and its pod) is deleted that long after it finishes."""
    body = gpu_job(
        name,
        namespace,
        run_seconds=run_s,
        gpus=1,
        resource=resource,
        queue=queue,
        priority_class=priority_class,
        labels={MODEL_LABEL: model},
        image=profile.whisper.image,
        pods=profile.workload,
        run_id=run_id,
    )
    if not profile.simulated and profile.whisper.image:
        # A real transcription; without an image the workload holds the GPU with sleep.
        values = {"name": name, "model": model, "audio_seconds": f"{audio_s:.2f}"}
        container = body["spec"]["template"]["spec"]["containers"][0]
        container["command"] = [c.format(**values) for c in profile.whisper.command]
    if ttl_after_finished_s is not None:
        body["spec"]["ttlSecondsAfterFinished"] = ttl_after_finished_s
    return body


def paced(items: Iterable[T], qps: float) -> Iterator[T]:
    """Yield ``items`` at ``qps`` per second from the first, as kube-burner paces object
    creation; 0 yields them back to back."""
    started = time.monotonic()
    for i, item in enumerate(items):
        if qps and (due := started + i / qps - time.monotonic()) > 0:
            time.sleep(due)
        yield item
