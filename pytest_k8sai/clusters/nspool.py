"""Pre-created namespaces (profile ``reach.namespaces``), lent to the suites one at a time.

Where an identity may not create namespaces (OpenShift without self-provisioner; projects from
ProjectRequests cannot carry the labels Kueue or DAS's webhook need), an admin creates them
with those labels and the suites borrow them instead of creating their own. A borrowed
namespace is never deleted or relabelled: on return, what the run made there (its Jobs, which
take their pods and Kueue Workloads with them) is deleted, and the next borrower waits until
the run's pods are gone, so no quota or GPU is still held by a previous test.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters.base import RUN_ID_LABEL
from pytest_k8sai.core.errors import ClusterError

API_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 120.0  # a Job's pods stop within their grace period (30 s by default)
FIELD = "reach.namespaces"


class NamespacePool:
    """The profile's pre-created namespaces; :meth:`lease` lends a free one."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._free = list(names)
        self._lock = threading.Lock()

    def _take(self, purpose: str) -> str:
        with self._lock:
            if not self._free:
                raise ClusterError(
                    f"{purpose} needs a namespace, and all {len(self.names)} pre-created ones "
                    f"({FIELD}: {', '.join(self.names)}) are in use by this run. Add one more "
                    "to the profile (created by an admin with the same labels and role binding)."
                )
            return self._free.pop(0)

    def _give_back(self, name: str) -> None:
        with self._lock:
            self._free.append(name)

    @contextlib.contextmanager
    def lease(
        self,
        api: client.ApiClient,
        run_id: str,
        purpose: str = "a test",
        labels: Mapping[str, str] | None = None,
    ) -> Iterator[str]:
        """A pre-created namespace for the duration of the block; the run's Jobs in it are
        deleted afterwards (also after a failure or Ctrl-C) and their pods waited for."""
        name = self._take(purpose)
        try:
            check_ready(client.CoreV1Api(api), name, labels or {})
        except BaseException:
            self._give_back(name)
            raise
        try:
            yield name
        finally:
            try:
                remove_run_objects(api, name, run_id)
            finally:
                self._give_back(name)


def check_ready(core: client.CoreV1Api, name: str, labels: Mapping[str, str]) -> None:
    """The namespace exists (its default ServiceAccount, which the role may read) and, where
    this identity may read it, carries ``labels``: the suites cannot label it themselves."""
    try:
        core.read_namespaced_service_account("default", name, _request_timeout=API_TIMEOUT_S)
    except ApiException as exc:
        raise ClusterError(
            f"{FIELD} lists namespace '{name}', but its ServiceAccount 'default' cannot be read "
            f"(HTTP {exc.status} {exc.reason}): create the namespace, and bind the suites' "
            "role there (docs/existing-clusters.md, 'Pre-created namespaces')."
        ) from None
    try:
        have = core.read_namespace(name, _request_timeout=API_TIMEOUT_S).metadata.labels or {}
    except ApiException as exc:
        if exc.status == 403:
            return  # not readable by this identity: the admin's labels are taken on trust
        raise ClusterError(
            f"cannot read namespace '{name}' ({FIELD}): HTTP {exc.status} {exc.reason}"
        ) from None
    lacking = {k: v for k, v in labels.items() if have.get(k) != v}
    if lacking:
        wanted = " ".join(f"{k}={v}" for k, v in lacking.items())
        raise ClusterError(
            f"pre-created namespace '{name}' ({FIELD}) lacks the label(s) {wanted} that this "
            "test's namespace must carry (Kueue's managedJobsNamespaceSelector, DAS's webhook "
            f"scope); the suites cannot label it. Ask an admin: kubectl label namespace {name} "
            f"{wanted}"
        )


def remove_run_objects(api: client.ApiClient, namespace: str, run_id: str) -> None:
    """Delete the Jobs of run ``run_id`` in ``namespace`` (their pods and Workloads go with
    them) and wait until none of the run's pods is left there. Nothing else is touched."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    selector = f"{RUN_ID_LABEL}={run_id}"
    failed = []
    jobs = batch.list_namespaced_job(
        namespace, label_selector=selector, _request_timeout=API_TIMEOUT_S
    )
    for job in jobs.items:
        try:
            batch.delete_namespaced_job(
                job.metadata.name,
                namespace,
                propagation_policy="Background",
                _request_timeout=API_TIMEOUT_S,
            )
        except ApiException as exc:
            if exc.status != 404:
                failed.append(f"Job {job.metadata.name}: HTTP {exc.status} {exc.reason}")
    if failed:
        raise ClusterError(
            f"cannot delete this run's Jobs in pre-created namespace '{namespace}' "
            f"({'; '.join(failed)}); delete them by hand: kubectl -n {namespace} delete jobs "
            f"-l {selector}"
        )
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        pods = core.list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=API_TIMEOUT_S
        ).items
        if not pods:
            return
        if time.monotonic() > deadline:
            names = ", ".join(p.metadata.name for p in pods[:5])
            raise ClusterError(
                f"{len(pods)} pod(s) of this run ({names}) are still in pre-created namespace "
                f"'{namespace}' {DRAIN_TIMEOUT_S:g} s after their Jobs were deleted; the next "
                "test there would share GPUs with them. Check the kubelet and the garbage "
                "collector (kube-controller-manager)."
            )
        time.sleep(0.5)
