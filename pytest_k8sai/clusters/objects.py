"""Create API objects as the suite's own, and remove exactly those afterwards.

Every object gets the created-by and run-id labels; cleanup deletes only what this tracker
created, newest first, so a test never touches objects it did not make.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters.base import (
    CREATED_BY_LABEL,
    CREATED_BY_VALUE,
    RUN_ID_LABEL,
    ClusterHandle,
)
from pytest_k8sai.core.apis import KUEUE_VERSION, kueue_body
from pytest_k8sai.core.errors import ClusterError


def ownership_labels(run_id: str) -> dict[str, str]:
    return {CREATED_BY_LABEL: CREATED_BY_VALUE, RUN_ID_LABEL: run_id}


class ObjectTracker:
    """Creates custom objects (cluster-scoped or namespaced) and deletes them on cleanup()."""

    def __init__(
        self, api: client.ApiClient, run_id: str, kueue_version: str = KUEUE_VERSION
    ) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.run_id = run_id
        self.kueue_version = kueue_version  # Kueue objects are created in this version
        self._made: list[tuple[str, str, str, str | None, str]] = []

    def create(
        self, body: dict[str, Any], plural: str, namespace: str | None = None
    ) -> dict[str, Any]:
        body = kueue_body(body, self.kueue_version)
        group, _, version = body["apiVersion"].rpartition("/")
        meta = body.setdefault("metadata", {})
        meta.setdefault("labels", {}).update(ownership_labels(self.run_id))
        if namespace is None:
            made = self.custom.create_cluster_custom_object(group, version, plural, body)
        else:
            made = self.custom.create_namespaced_custom_object(
                group, version, namespace, plural, body
            )
        self._made.append((group, version, plural, namespace, meta["name"]))
        return dict(made)

    def cleanup(self) -> list[str]:
        """Delete what create() made, newest first; return what could not be deleted."""
        failed = []
        for group, version, plural, ns, name in reversed(self._made):
            try:
                if ns is None:
                    self.custom.delete_cluster_custom_object(group, version, plural, name)
                else:
                    self.custom.delete_namespaced_custom_object(group, version, ns, plural, name)
            except ApiException as exc:
                if exc.status != 404:
                    failed.append(f"{plural}/{name}: HTTP {exc.status}")
        self._made.clear()
        return failed

    def __enter__(self) -> ObjectTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.cleanup()


NAMESPACE_READY_TIMEOUT_S = 30.0
API_TIMEOUT_S = 30.0


def _wait_for_default_sa(core: client.CoreV1Api, namespace: str) -> bool:
    # Pods are rejected until the service-account controller has made "default".
    deadline = time.monotonic() + NAMESPACE_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_service_account("default", namespace, _request_timeout=10)
            return True
        except ApiException as exc:
            if exc.status != 404:
                raise
        time.sleep(0.2)
    return False


@contextlib.contextmanager
def owned_namespace(
    core: client.CoreV1Api,
    run_id: str,
    prefix: str = "k8sai",
    labels: dict[str, str] | None = None,
) -> Iterator[str]:
    """A fresh namespace with the ownership labels (and ``labels``, e.g. the one that opts it
    into a webhook), usable for pods; deleted on exit (in the background, also after a failure
    or Ctrl-C: the namespace controller removes its Jobs, Workloads and LocalQueues with it)."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    body = client.V1Namespace(
        metadata=client.V1ObjectMeta(
            name=name, labels={**(labels or {}), **ownership_labels(run_id)}
        )
    )
    try:
        core.create_namespace(body, _request_timeout=API_TIMEOUT_S)
    except ApiException as exc:
        raise ClusterError(
            f"Cannot create namespace {name}: HTTP {exc.status} {exc.reason}."
        ) from None
    try:
        if not _wait_for_default_sa(core, name):
            raise ClusterError(
                f"Namespace {name}: ServiceAccount 'default' did not appear within "
                f"{NAMESPACE_READY_TIMEOUT_S:g} s, so no pod could be admitted there; is "
                "kube-controller-manager (its serviceaccount controller) running?"
            )
        yield name
    finally:
        try:
            core.delete_namespace(
                name, propagation_policy="Background", _request_timeout=API_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status != 404:
                raise ClusterError(
                    f"Cannot delete namespace {name} (label {RUN_ID_LABEL}={run_id}): "
                    f"HTTP {exc.status} {exc.reason}; delete it by hand."
                ) from None


def run_namespace(
    cluster: ClusterHandle,
    run_id: str,
    prefix: str = "k8sai",
    labels: dict[str, str] | None = None,
) -> contextlib.AbstractContextManager[str]:
    """The namespace a test works in: a fresh one of its own (:func:`owned_namespace`), or,
    where the profile lists pre-created namespaces (``reach.namespaces``), one borrowed from
    them. Either carries the cluster's namespace labels and ``labels``."""
    wanted = {**cluster.namespace_labels, **(labels or {})}
    if cluster.namespace_pool is not None:
        return cluster.namespace_pool.lease(cluster.api_client, run_id, prefix, wanted)
    return owned_namespace(cluster.core, run_id, prefix, wanted)
