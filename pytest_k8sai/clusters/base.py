"""The one small interface every kind of cluster implements, and the handle suites receive.

Modelled on e2e-framework's cluster providers: a provider creates (or attaches to) a cluster,
hands out its kubeconfig, waits until it is usable, collects component logs and destroys what
it created. Suites only ever see a ClusterHandle, so they never know which tier they run on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from kubernetes import client

from pytest_k8sai.clusters.apiclient import bounded_client
from pytest_k8sai.core.apis import KUEUE_VERSION
from pytest_k8sai.core.profiles import Profile

if TYPE_CHECKING:
    from pytest_k8sai.clusters.nspool import NamespacePool

# Every object the suite creates carries this label, so cleanup never touches anything else.
CREATED_BY_LABEL = "k8sai.io/created-by"
CREATED_BY_VALUE = "pytest-k8sai"
RUN_ID_LABEL = "k8sai.io/run-id"


@dataclass
class ClusterHandle:
    """What a test gets from the ``cluster`` fixture."""

    profile: Profile
    kubeconfig: Path
    context: str | None
    provider: str
    # Extra endpoints a provider knows about (e.g. the local Kueue metrics URL and token).
    # Not in repr: pytest prints the handle in assertion explanations, with -vv in full.
    endpoints: dict[str, str] = field(default_factory=dict, repr=False)
    versions: dict[str, str] = field(default_factory=dict)
    # Capabilities the profile claims but the cluster lacks (name -> why); tests that require
    # them are skipped with that reason instead of failing halfway.
    missing: dict[str, str] = field(default_factory=dict)
    # Seconds each phase of create/attach took, for the results file and README figures.
    timings: dict[str, float] = field(default_factory=dict)
    # Labels every namespace the suites create must carry, as detected on the cluster (e.g.
    # kueue.openshift.io/managed=true, without which Red Hat's Kueue ignores the Jobs there).
    namespace_labels: dict[str, str] = field(default_factory=dict)
    # Labels the namespaces of pods DAS must slice for need (its webhook's selector; detected
    # by preflight).
    das_namespace_labels: dict[str, str] = field(default_factory=dict)
    # The Kueue API version the cluster serves that the suites speak (detected by preflight).
    kueue_version: str = KUEUE_VERSION
    # The resource a whole-GPU pod asks for (detected by preflight): nvidia.com/gpu where the
    # device plugin advertises it; where only DAS slices exist, the profile's whole-GPU slice.
    gpu_resource: str = "nvidia.com/gpu"
    # Pre-created namespaces the suites borrow instead of creating their own (profile
    # reach.namespaces, existing clusters only); None: each test creates a fresh one.
    namespace_pool: NamespacePool | None = None

    @cached_property
    def api_client(self) -> client.ApiClient:
        return bounded_client(self.kubeconfig, self.context, self.profile.reach.connect_timeout_s)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api_client)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client)

    def close(self) -> None:
        if "api_client" in self.__dict__:
            self.api_client.close()


class ClusterProvider(ABC):
    """Create or attach, hand out a kubeconfig, wait until ready, collect logs, destroy."""

    name: str

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    @abstractmethod
    def create(self) -> ClusterHandle:
        """Create the cluster, or attach to it; return once it is ready for tests."""

    @abstractmethod
    def collect_logs(self, dest: Path) -> list[Path]:
        """Copy component logs into ``dest``; return the files written."""

    @abstractmethod
    def destroy(self) -> None:
        """Remove what create() made. Attach-only providers leave the cluster alone."""

    @property
    def created(self) -> bool:
        """True when destroy() would remove a cluster this provider started."""
        return False
