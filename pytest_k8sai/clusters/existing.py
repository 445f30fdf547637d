"""Attach to a cluster someone else runs (e.g. ROSA): check it is reachable, never change it.

Reachability is one GET /version bounded by ``reach.connect_timeout_s`` as a whole: urllib3
gets a total timeout and no retries, and the call runs in a daemon thread with a hard deadline,
so neither a blackholed address, a server that accepts and never answers, nor a slow DNS
lookup can hang the session.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from pytest_k8sai.clusters.base import ClusterHandle, ClusterProvider
from pytest_k8sai.clusters.kubeconfig import Resolved, resolve_context, resolve_kubeconfig
from pytest_k8sai.clusters.nspool import NamespacePool
from pytest_k8sai.core.apis import KUEUE_CRD, KUEUE_GROUP
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.core.profiles import Profile

T = TypeVar("T")

# Extra time the worker thread gets beyond urllib3's own timeout, so urllib3's (more precise)
# error wins when it fires; the sum stays the hard bound.
_GRACE_S = 0.5


class _Deadline(Exception):
    pass


def call_with_deadline(fn: Callable[[], T], seconds: float) -> T:
    """Run ``fn`` in a daemon thread; raise _Deadline if it has not returned in ``seconds``."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    # A daemon thread: if it hangs, it must not keep the interpreter alive at exit.
    worker = threading.Thread(target=run, name="k8sai-probe", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _Deadline
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def why_failed(exc: BaseException, timeout_s: float) -> str:
    """The underlying error in a few words, without urllib3's object reprs."""
    # NewConnectionError subclasses urllib3's TimeoutError, so it must be tested first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        # str() is "<HTTPSConnection object at 0x..>: Failed to establish a new connection: ..."
        return "connection failed: " + str(exc).rsplit("new connection: ", 1)[-1]
    if isinstance(exc, _Deadline | urllib3.exceptions.TimeoutError | socket.timeout):
        return f"no answer within {timeout_s:g} s (reach.connect_timeout_s)"
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return why_failed(exc.reason, timeout_s)
    if isinstance(exc, urllib3.exceptions.SSLError | ssl.SSLError):
        return f"TLS failed: {exc}"
    if isinstance(exc, ApiException):
        hint = {401: " (credentials rejected: log in again)", 403: " (forbidden)"}.get(
            exc.status or 0, ""
        )
        return f"the server answered HTTP {exc.status} {exc.reason or ''}".rstrip() + hint
    return " ".join(f"{type(exc).__name__}: {exc}".split())


class ExistingProvider(ClusterProvider):
    """Attach-only: create() checks the cluster, destroy() leaves it alone."""

    name = "existing"

    def __init__(
        self, profile: Profile, *, kubeconfig: str | None = None, context: str | None = None
    ) -> None:
        super().__init__(profile)
        self._flag_kubeconfig = kubeconfig
        self._flag_context = context
        self._handle: ClusterHandle | None = None

    def create(self) -> ClusterHandle:
        reach = self.profile.reach
        kubeconfig = resolve_kubeconfig(self._flag_kubeconfig, reach.kubeconfig, self.profile.name)
        context = resolve_context(kubeconfig, self._flag_context, reach.context, self.profile.name)
        api, server = self._probe_client(kubeconfig, context)
        where = f"(kubeconfig {kubeconfig.value}, context '{context.value}')"
        missing: dict[str, str] = {}
        try:
            version = self._version(api, server, where)
            if self.profile.capabilities.kueue and (why := self._check_kueue(api, server, where)):
                missing["kueue"] = why
        finally:
            api.close()
        self._handle = ClusterHandle(
            profile=self.profile,
            kubeconfig=Path(kubeconfig.value),
            context=context.value,
            provider=self.name,
            endpoints={"apiserver": server},
            versions={"kubernetes": version},
            missing=missing,
            namespace_pool=(
                NamespacePool(self.profile.reach.namespaces)
                if self.profile.reach.namespaces
                else None
            ),
        )
        return self._handle

    def collect_logs(self, dest: Path) -> list[Path]:
        # The platform owns the components and their logs; we have nothing of our own to copy.
        return []

    def destroy(self) -> None:
        # Only our client connection is ours to close; the cluster stays exactly as it was.
        if self._handle is not None:
            self._handle.close()

    # -- helpers ---------------------------------------------------------------------------

    def _probe_client(
        self, kubeconfig: Resolved, context: Resolved
    ) -> tuple[client.ApiClient, str]:
        cfg = client.Configuration()
        try:
            config.load_kube_config(
                config_file=kubeconfig.value,
                context=context.value,
                client_configuration=cfg,
                persist_config=False,
            )
        except (ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
            raise ClusterError(
                f"Cannot use context '{context.value}' of kubeconfig {kubeconfig.value} "
                f"(from {kubeconfig.origin}): {exc}."
            ) from None
        # No retries: the default three would multiply the timeout by four.
        cfg.retries = False
        return client.ApiClient(cfg), cfg.host

    def _get(self, fn: Callable[[float], T]) -> T:
        timeout = self.profile.reach.connect_timeout_s
        return call_with_deadline(lambda: fn(timeout), timeout + _GRACE_S)

    def _version(self, api: client.ApiClient, server: str, where: str) -> str:
        timeout = self.profile.reach.connect_timeout_s
        versions = client.VersionApi(api)
        try:
            info = self._get(
                lambda t: _json(versions.get_code(_preload_content=False, _request_timeout=t))
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes one readable paragraph
            raise ClusterError(
                f"Cannot reach the Kubernetes API server {server} {where}: GET /version failed: "
                f"{why_failed(exc, timeout)}. Check the cluster is up and that this machine can "
                "reach it (VPN, proxy, expired login)."
            ) from None
        return str(info.get("gitVersion", "unknown"))

    def _check_kueue(self, api: client.ApiClient, server: str, where: str) -> str | None:
        """None if Kueue's CRD is there; else why Kueue tests will be skipped."""
        missing = (
            f"profile '{self.profile.name}' says Kueue (capabilities.kueue: true) but CRD "
            f"{KUEUE_CRD} was not found on {server} {where}: Kueue tests are skipped. Install "
            "Kueue on the cluster, or set capabilities.kueue: false in the profile."
        )
        ext = client.ApiextensionsV1Api(api)
        try:
            self._get(
                lambda t: _json(
                    ext.read_custom_resource_definition(
                        KUEUE_CRD, _preload_content=False, _request_timeout=t
                    )
                )
            )
            return None
        except ApiException as exc:
            if exc.status == 404:
                return missing
            if exc.status != 403:
                raise self._kueue_unknown(server, where, exc) from None
        except Exception as exc:  # noqa: BLE001
            raise self._kueue_unknown(server, where, exc) from None
        # Reading CRDs needs a cluster role many users lack; discovery is open to every user.
        try:
            found = self._get(lambda t: _discovery_has(api, KUEUE_GROUP, "clusterqueues", t))
        except Exception as exc:  # noqa: BLE001
            raise self._kueue_unknown(server, where, exc) from None
        return None if found else missing

    def _kueue_unknown(self, server: str, where: str, exc: BaseException) -> ClusterError:
        return ClusterError(
            f"Cannot check for CRD {KUEUE_CRD} on {server} {where}, which profile "
            f"'{self.profile.name}' expects (capabilities.kueue: true): "
            f"{why_failed(exc, self.profile.reach.connect_timeout_s)}."
        )


def _json(response: Any) -> dict[str, Any]:
    # Raw responses: the client's strict models reject servers that omit optional fields.
    try:
        return json.loads(response.data or b"{}")
    finally:
        response.release_conn()


def _discovery_has(api: client.ApiClient, group: str, plural: str, timeout: float) -> bool:
    """True if API discovery lists ``plural`` in the preferred version of ``group``."""
    raw = {"_preload_content": False, "_request_timeout": timeout}
    groups = _json(client.ApisApi(api).get_api_versions(**raw))
    for g in groups.get("groups") or []:
        version = (g.get("preferredVersion") or {}).get("version")
        if g.get("name") == group and version:
            custom = client.CustomObjectsApi(api)
            resources = _json(custom.get_api_resources(group, version, **raw))
            return any(r.get("name") == plural for r in resources.get("resources") or [])
    return False
