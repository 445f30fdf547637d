"""What a Job that a wait gave up on was last doing, read from the API at that moment.

A timeout that only says how long it waited leaves the user to find out why. These read the
Job's Kueue Workload (its QuotaReserved / Admitted / Evicted conditions with Kueue's reason,
e.g. "couldn't assign flavors ... insufficient quota") and its pods (phase, the condition that
is not True, e.g. "PodScheduled=False (Unschedulable: 0/2 nodes are available: 2 Insufficient
nvidia.com/gpu)", a container's waiting reason), in one list call per kind for the namespace.
Reading is bounded by ``timeout_s``; what cannot be read is said instead of raised, so the
timeout message always gets out.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from kubernetes import client

from pytest_k8sai.core.apis import KUEUE_GROUP, KUEUE_VERSION

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
WORKLOAD_CONDITIONS = ("QuotaReserved", "Admitted", "Evicted", "Preempted")
MAX_MESSAGE = 240  # characters of one condition message (Kueue's can list every flavor)

Obj = dict[str, Any]


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _cond(c: Obj) -> str:
    why = ": ".join(_clip(str(x)) for x in (c.get("reason"), c.get("message")) if x)
    return f"{c.get('type')}={c.get('status')}" + (f" ({why})" if why else "")


def workload_state(wl: Obj) -> str:
    """``Workload NAME: QuotaReserved=False (Pending: couldn't assign flavors ...)``."""
    conds = {c.get("type"): c for c in (wl.get("status") or {}).get("conditions") or ()}
    shown = [_cond(conds[t]) for t in WORKLOAD_CONDITIONS if t in conds]
    name = (wl.get("metadata") or {}).get("name", "?")
    return f"Workload {name}: " + (", ".join(shown) if shown else "no conditions yet")


def pod_state(pod: Obj) -> str:
    """``pod NAME Pending, PodScheduled=False (Unschedulable: ...)``; Running/ended pods
    briefly, with any container's waiting or terminated reason."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    parts = [f"pod {meta.get('name', '?')} {status.get('phase') or 'without phase'}"]
    parts += [_cond(c) for c in status.get("conditions") or () if c.get("status") != "True"]
    for cs in status.get("containerStatuses") or ():
        for how, detail in (cs.get("state") or {}).items():
            reason = (detail or {}).get("reason")
            if how != "running" and reason:
                parts.append(f"container {cs.get('name')} {how} ({_clip(str(reason))})")
    return ", ".join(parts)


def _job_of(meta: Obj) -> str | None:
    labels = meta.get("labels") or {}
    for key in JOB_NAME_LABELS:
        if key in labels:
            return str(labels[key])
    for ref in meta.get("ownerReferences") or ():
        if ref.get("kind") == "Job":
            return str(ref.get("name"))
    return None


def job_states(
    api: client.ApiClient,
    namespace: str,
    jobs: Collection[str],
    *,
    kueue: bool,
    kueue_version: str = KUEUE_VERSION,
    timeout_s: float = 10.0,
) -> tuple[dict[str, str], str]:
    """Job name -> its Workload's and pods' state now, and "" or why some could not be read."""
    wanted = set(jobs)
    parts: dict[str, list[str]] = {n: [] for n in wanted}
    problems = []
    if kueue:
        try:
            items = client.CustomObjectsApi(api).list_namespaced_custom_object(
                KUEUE_GROUP, kueue_version, namespace, "workloads", _request_timeout=timeout_s
            )["items"]
        except Exception as exc:  # noqa: BLE001 - a message about a timeout must still get out
            problems.append(f"Workloads not readable ({type(exc).__name__}: {_clip(str(exc))})")
        else:
            for wl in items:
                job = _job_of(wl.get("metadata") or {})
                if job in wanted:
                    parts[job].append(workload_state(wl))
            for name in wanted:
                if not parts[name]:
                    parts[name].append("no Workload")
    try:
        pods = client.CoreV1Api(api).list_namespaced_pod(
            namespace, _request_timeout=timeout_s, _preload_content=False
        )
    except Exception as exc:  # noqa: BLE001
        problems.append(f"pods not readable ({type(exc).__name__}: {_clip(str(exc))})")
    else:
        seen: set[str] = set()
        for pod in json.loads(pods.data).get("items") or ():
            job = _job_of(pod.get("metadata") or {})
            if job in wanted:
                parts[job].append(pod_state(pod))
                seen.add(job)
        for name in wanted - seen:
            parts[name].append("no pod")
    return {n: "; ".join(p) for n, p in parts.items() if p}, "; ".join(problems)
