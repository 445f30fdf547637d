"""The inference stack on the local tier: model-server replicas (KWOK Pods + llm-d-inference-sim
processes), the InferencePool, the real EPP and the local gateway.

One ``LocalStack`` per experiment. Pods and the pool live as long as the stack; processes are
started per configuration (``start_replicas`` restarts the sims, so every configuration
begins with empty KV caches) and stopped by ``stop_processes`` / ``close``. Any component
that exits or does not become ready raises a ClusterError naming it and its log, and
``close`` (also run at interpreter exit) stops every process the stack started.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.clusters.local.build import Builder
from pytest_k8sai.clusters.local.kueue_manager import install_crd_files
from pytest_k8sai.clusters.local.processes import Supervisor, free_port
from pytest_k8sai.clusters.objects import ObjectTracker
from pytest_k8sai.core.apis import POOL_PLURAL
from pytest_k8sai.core.profiles import GaieSuite
from pytest_k8sai.gaie import epp as eppmod
from pytest_k8sai.gaie import pool as poolmod
from pytest_k8sai.gaie.replicas import Replica, get, ready, sim_args, sim_env

Log = Callable[[str], None]
SIM = "inference-sim"
EPP = "epp"


def parts(log: Log, versions: dict[str, str] | None = None) -> dict[str, Path]:
    """Build (first use only) or find the sim and the EPP; also where the GAIE module is.
    Their versions are added to ``versions`` (a cluster's, so results files name them)."""
    builder = Builder(log=log)
    sim = builder.ensure_named(SIM)
    epp = builder.ensure_named(EPP)
    if versions is not None:
        versions.update({SIM: sim.version, EPP: epp.version})
    return {
        "sim": next(iter(sim.binaries.values())),
        "epp": next(iter(epp.binaries.values())),
        "gaie_module": epp.module_dir,
    }


class LocalStack:
    def __init__(
        self,
        cluster: ClusterHandle,
        namespace: str,
        run_id: str,
        settings: GaieSuite,
        name: str,
        replicas: int,
        work_dir: Path,
        log: Log,
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.run_id = run_id
        self.settings = settings
        self.pool = name
        self.n = replicas
        self.log = log
        self.bins = parts(log, cluster.versions)
        # Logs and configs outlive the cluster (they are named in errors): the results dir.
        self.dir = work_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sup = Supervisor(self.dir)
        self.tracker = ObjectTracker(cluster.api_client, run_id)
        self.replicas: list[Replica] = []
        self.epp_ports: dict[str, int] = {}
        # Each EPP's own /metrics port (its scheduling-latency histogram is read from there).
        self.epp_metrics: dict[str, int] = {}
        self.gateways: dict[str, str] = {}  # name -> base URL
        self.node: str | None = None  # this stack's own inference node, once made
        atexit.register(self.close)

    # -- Kubernetes objects -----------------------------------------------------------------
    def create_objects(self) -> None:
        """The pool's CRD (from the GAIE module), its Pods on the inference node, the pool."""
        api = self.cluster.api_client
        install_crd_files(
            api, [poolmod.crd_file(self.bins["gaie_module"])], "InferencePool", timeout_s=30
        )
        self.node = poolmod.create_inference_node(self.cluster.core, self.run_id)
        ports = [free_port() for _ in range(self.n)]
        names = []
        for i, port in enumerate(ports):
            body = poolmod.replica_pod(
                self.pool, i, port, self.settings.model, self.run_id, node=self.node
            )
            self.cluster.core.create_namespaced_pod(self.namespace, body)
            names.append(body["metadata"]["name"])
        epp_port = free_port()
        self.tracker.create(
            poolmod.inference_pool(self.pool, ports, f"{self.pool}-epp", epp_port),
            POOL_PLURAL,
            self.namespace,
        )
        ips = poolmod.wait_pod_ips(
            self.cluster.core, self.namespace, names, self.settings.start_timeout_s
        )
        self.replicas = [Replica(n, ips[n], p) for n, p in zip(names, ports, strict=True)]

    # -- processes --------------------------------------------------------------------------
    def _wait(self, name: str, probe: Callable[[], bool], what: str) -> None:
        self.sup.wait(name, probe, self.settings.start_timeout_s, what)

    def start_replicas(self, kv_blocks: int | None, tag: str) -> None:
        """(Re)start one sim per Pod, with empty KV caches."""
        self.stop_processes(prefix="sim-")
        for i, r in enumerate(self.replicas):
            args = sim_args(self.settings.model, r.port, self.settings.sim, kv_blocks)
            self.sup.start(f"sim-{i}-{tag}", self.bins["sim"], args, env=sim_env(r))
        for i, r in enumerate(self.replicas):
            self._wait(f"sim-{i}-{tag}", lambda u=r.url: ready(u), f"GET {r.url}/health")

    def start_epp(self, config_name: str, config_doc: dict) -> int:
        """Start the EPP with one configuration; return its ext_proc gRPC port once every
        replica is discovered."""
        name = f"epp-{config_name}"
        cfg = eppmod.write_config(config_doc, self.dir / f"{name}.yaml")
        grpc_port, health, metrics = free_port(), free_port(), free_port()
        args = eppmod.epp_args(self.pool, self.namespace, cfg, grpc_port, health, metrics)
        self.sup.start(
            name, self.bins["epp"], args, env={"KUBECONFIG": str(self.cluster.kubeconfig)}
        )
        self._wait(name, lambda: eppmod.serving(health), "gRPC health SERVING (pool synced)")
        self._wait(
            name,
            lambda: eppmod.ready_pods(metrics) >= self.n,
            f"{eppmod.READY_PODS_METRIC} >= {self.n} on :{metrics}/metrics",
        )
        self.epp_ports[config_name] = grpc_port
        self.epp_metrics[config_name] = metrics
        return grpc_port

    def start_gateway(self, name: str, *, epp_port: int | None = None) -> str:
        """Start the local gateway, through the EPP or round robin over the replicas."""
        port = free_port()
        args = ["-m", "pytest_k8sai.gaie.gateway", "--port", str(port)]
        if epp_port is not None:
            args += ["--epp", f"127.0.0.1:{epp_port}"]
        else:
            for r in self.replicas:
                args += ["--backend", r.endpoint]
        proc = f"gateway-{name}"
        # The gateway imports this package: make this very copy importable in the child.
        here = str(Path(__file__).resolve().parents[2])
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
        self.sup.start(proc, Path(sys.executable), args, env=env)
        url = f"http://127.0.0.1:{port}"
        self._wait(proc, lambda: get(f"{url}/healthz", 0.5)[0] == 200, f"GET {url}/healthz")
        self.gateways[name] = url
        return url

    def stop_processes(self, prefix: str = "") -> None:
        self.sup.stop_matching(prefix)

    def log_of(self, name: str) -> Path:
        return self.sup.logs / f"{name}.log"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        self.stop_processes()
        with contextlib.suppress(Exception):
            self.tracker.cleanup()
        for r in self.replicas:
            with contextlib.suppress(ApiException):
                self.cluster.core.delete_namespaced_pod(
                    r.name, self.namespace, grace_period_seconds=0
                )
        self.replicas = []
        if self.node is not None:
            with contextlib.suppress(ApiException):
                self.cluster.core.delete_node(self.node)
            self.node = None
