"""The local provider: a real control plane, KWOK GPU nodes and the real Kueue manager, all as
processes on 127.0.0.1, built from pinned Go modules on first use."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import urllib3
from kubernetes import client, config

from pytest_k8sai.clusters.base import ClusterHandle, ClusterProvider
from pytest_k8sai.clusters.local import controlplane as cp
from pytest_k8sai.clusters.local import kueue_manager, kwok_nodes, state
from pytest_k8sai.clusters.local.build import Builder, Built, cache_root
from pytest_k8sai.clusters.local.pki import Pki, create_pki, new_token
from pytest_k8sai.clusters.local.processes import Supervisor
from pytest_k8sai.clusters.local.realdas import build as dasbuild
from pytest_k8sai.clusters.local.realdas import run as dasrun
from pytest_k8sai.clusters.local.realdas import source as dassource
from pytest_k8sai.clusters.local.realnode import node as realnode
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.core.profiles import Profile
from pytest_k8sai.core.progress import progress

Log = Callable[[str], None]
METRICS_USER = "k8sai-metrics"
KEEP_FAILED_LOGS = 5  # logs of the latest failed starts, kept for diagnosis
START_ATTEMPTS = 3
PORT_TAKEN = "address already in use"
# Pods in namespaces with this label are rewritten by the real DAS's webhook (the GPU slicing
# suite labels its DAS arm's namespaces); no other namespace is touched.
DAS_NAMESPACE_LABEL = ("k8sai.io/das", "true")
DAS_GPUS_PER_NODE = 2  # das-daemonset's emulated mode: two A100-PCIE-40GB per node


def _http(**tls: str) -> urllib3.PoolManager:
    return urllib3.PoolManager(timeout=urllib3.Timeout(connect=0.5, read=2.0), retries=False, **tls)


def _admin_http(pki: Pki) -> urllib3.PoolManager:
    crt, key = pki.pair("admin")
    return _http(ca_certs=str(pki.ca_crt), cert_file=str(crt), key_file=str(key))


def _ok(pool: urllib3.PoolManager, url: str) -> bool:
    return pool.request("GET", url).status == 200


class LocalProvider(ClusterProvider):
    name = "local"

    def __init__(self, profile: Profile, *, keep: bool = False, log: Log = progress) -> None:
        super().__init__(profile)
        self.keep = keep
        self.log = log
        self.cluster_name = profile.local.cluster_name
        self.run_dir = state.run_dir(self.cluster_name)
        self._state: state.ClusterState | None = None
        self._created = False
        # kube-scheduler and the controller-manager serve /healthz with self-signed certs.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._insecure = _http(cert_reqs="CERT_NONE")

    @property
    def created(self) -> bool:
        return self._created

    # -- create or attach ------------------------------------------------------------------
    def create(self) -> ClusterHandle:
        with state.locked(self.cluster_name):
            existing = state.load(self.cluster_name)
            if existing and existing.ready and not existing.dead() and self._api_ready(existing):
                self.log(
                    f"[k8sai] reusing running local cluster '{self.cluster_name}' "
                    f"(kubeconfig {existing.kubeconfig})"
                )
                self._state = existing
                return self._handle(existing)
            if existing or self.run_dir.exists():
                self.log(f"[k8sai] removing stale local cluster '{self.cluster_name}'")
                state.remove(self.cluster_name, existing)
            builder = Builder(log=self.log)
            builds = builder.ensure_all()
            tars = []
            if self.profile.real_nodes:
                builds["kubelet"] = builder.ensure_named("kubelet")
                # Host packages and image tars: slow once, then cached; no cluster needed.
                tars = realnode.prepare(
                    builds["kubernetes"].module_dir, self.real_node_spec(), self.log
                )
            das = None
            if self.profile.capabilities.das:
                src = dassource.locate_source(self.log)
                das = (src, dasbuild.ensure_das(src, self.log))
            self._created = True
            atexit.register(self._atexit)
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    st = self._start(builds, tars, das)
                    break
                except BaseException as exc:
                    # Also on Ctrl-C: nothing of a half-started cluster may outlive the
                    # attempt, but its logs must, or the error could not be diagnosed.
                    saved = self._save_failed_logs()
                    self._teardown()
                    if not isinstance(exc, ClusterError):
                        raise
                    msg = str(exc).replace(str(self.run_dir / "logs"), str(saved))
                    if PORT_TAKEN not in msg or attempt == START_ATTEMPTS:
                        raise ClusterError(msg) from None
                    # Ports are chosen free but bound later; another process took one.
                    self.log(f"[k8sai] a port was taken meanwhile ({saved}); new ports")
                    self._created, self._state = True, None
                    atexit.register(self._atexit)
        return self._handle(st)

    def real_node_spec(self) -> realnode.RealNodeSpec:
        gpus = self.profile.capabilities.gpu_nodes
        return realnode.RealNodeSpec(
            name="real-gpu-0",
            product=gpus.product,
            gpus=gpus.gpus_per_node,
            workload_image=self.profile.workload.image,
        )

    def _handle(self, st: state.ClusterState) -> ClusterHandle:
        return ClusterHandle(
            profile=self.profile,
            kubeconfig=st.kubeconfig,
            context=None,
            provider=self.name,
            endpoints=dict(st.endpoints),
            versions=dict(st.versions),
            timings=dict(st.timings),
        )

    @staticmethod
    def _api_ready(st: state.ClusterState) -> bool:
        try:
            pool = _admin_http(Pki(st.run_dir / "pki"))
            return _ok(pool, f"https://127.0.0.1:{st.ports.apiserver}/readyz")
        except (urllib3.exceptions.HTTPError, OSError):
            return False

    def _das_nodes(self, api: client.ApiClient) -> list[dasrun.DasNode]:
        """The nodes DAS slices: the real node (its daemonset registers with the kubelet, so
        claims go on to processing and inUse) plus KWOK nodes for the rest of the profile's
        GPUs, two emulated GPUs each."""
        nodes = []
        gpus = self.profile.total_gpus
        if self.profile.real_nodes:
            nodes.append(
                dasrun.DasNode(
                    name=self.real_node_spec().name,
                    kubelet_device_plugin_dir=realnode.DEVICE_PLUGIN_DIR,
                )
            )
            gpus -= DAS_GPUS_PER_NODE
        spec = self.profile.capabilities.gpu_nodes
        core = client.CoreV1Api(api)
        for i in range(max(0, gpus) // DAS_GPUS_PER_NODE):
            name = f"kwok-das-{i}"
            # No nvidia.com/* of its own: DAS advertises mig.das.com/* once its daemonset runs.
            core.create_node(
                kwok_nodes.gpu_node(name, spec, whole_gpus=0, extra_labels={"type": "kwok-das"})
            )
            nodes.append(dasrun.DasNode(name=name))
        return nodes

    def _start(self, builds: dict[str, Built], tars: list, das: tuple | None) -> state.ClusterState:
        t0 = time.monotonic()
        timings: dict[str, float] = {}

        def mark(phase: str) -> None:
            timings[phase] = round(time.monotonic() - t0, 3)

        self.run_dir.mkdir(parents=True)
        ports = cp.Ports.allocate()
        pki = create_pki(self.run_dir / "pki", cache_root() / "ca")
        kubeconfig = self.run_dir / "kubeconfig.yaml"
        server = f"https://127.0.0.1:{ports.apiserver}"
        cp.write_kubeconfig(kubeconfig, pki, server, self.cluster_name)
        token = new_token()
        tokens = self.run_dir / "tokens.csv"
        tokens.write_text(f'{token},{METRICS_USER},{METRICS_USER},"system:masters"\n')
        tokens.chmod(0o600)

        def record(procs: list) -> None:
            # Saved at every start, so teardown (or `k8sai local down`) can stop a cluster
            # that failed halfway, whichever part started the process.
            if self._state is not None:
                self._state.processes = procs
                self._state.save()

        sup = Supervisor(self.run_dir, on_start=record)
        st = state.ClusterState(
            name=self.cluster_name,
            run_dir=self.run_dir,
            kubeconfig=kubeconfig,
            ports=ports,
            versions={n: b.version for n, b in builds.items()},
            endpoints={
                "apiserver": server,
                "kueue_metrics": f"https://127.0.0.1:{ports.kueue_metrics}/metrics",
                "kueue_metrics_token": token,
                "ca_file": str(pki.ca_crt),
                "kwok_metrics": f"http://127.0.0.1:{ports.kwok}/metrics",
                "logs": str(sup.logs),
            },
        )
        self._state = st
        bins = {name: path for b in builds.values() for name, path in b.binaries.items()}
        timeout = self.profile.local.start_timeout_s

        def start(name: str, args: list[str], exe: Path | None = None) -> None:
            sup.start(name, exe or bins[name], args)

        self.log(f"[k8sai] starting local cluster '{self.cluster_name}' in {self.run_dir}")
        start("etcd", cp.etcd_args(self.run_dir, ports))
        sup.wait(
            "etcd",
            lambda: _ok(self._insecure, f"http://127.0.0.1:{ports.etcd}/health"),
            timeout,
            "GET /health",
        )
        mark("etcd")
        start("kube-apiserver", cp.apiserver_args(self.run_dir, pki, ports, tokens))
        admin = _admin_http(pki)
        sup.wait("kube-apiserver", lambda: _ok(admin, f"{server}/readyz"), timeout, "GET /readyz")
        mark("kube-apiserver")

        start("kube-controller-manager", cp.controller_manager_args(pki, ports, kubeconfig))
        start("kube-scheduler", cp.scheduler_args(self.run_dir, ports, kubeconfig))
        stages = kwok_nodes.stages_yaml(builds["kwok"].module_dir)
        start(
            "kwok",
            cp.kwok_args(self.run_dir, ports, kubeconfig, stages, self.profile.local.pod_cidr),
        )
        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            kueue_manager.install_crds(api, builds["kueue"].module_dir)
            mark("kueue-crds")
            client.CoreV1Api(api).create_namespace({"metadata": {"name": kueue_manager.NAMESPACE}})
            kueue_manager.install_metrics_cert(pki)
            kcfg = kueue_manager.write_config(self.run_dir, ports, pki)
            st.endpoints["kueue_config"] = str(kcfg)  # what preflight reads of it
            start(
                "kueue",
                kueue_manager.manager_args(kcfg, kubeconfig, self.profile.local.kueue_log_level),
            )
            if self.profile.real_nodes:
                nodes = []  # the real node's own readiness is waited for below
            else:
                nodes = kwok_nodes.create_gpu_nodes(api, self.profile.capabilities.gpu_nodes)
            healthz = {
                "kube-controller-manager": f"https://127.0.0.1:{ports.controller_manager}/healthz",
                "kube-scheduler": f"https://127.0.0.1:{ports.scheduler}/healthz",
                "kwok": f"http://127.0.0.1:{ports.kwok}/healthz",
            }
            for name, url in healthz.items():
                sup.wait(name, lambda u=url: _ok(self._insecure, u), timeout, f"GET {url}")
                mark(name)
            sup.wait(
                "kueue",
                lambda: _ok(self._insecure, f"http://127.0.0.1:{ports.kueue_health}/readyz"),
                timeout,
                "GET /readyz (webhook server started)",
            )
            mark("kueue")
            kueue_manager.register_webhooks(
                api,
                kueue_manager.webhook_configurations(
                    builds["kueue"].module_dir, ports, pki.ca_crt.read_bytes()
                ),
            )
            sup.wait(
                "kwok",
                lambda: kwok_nodes.nodes_ready(api, nodes),
                timeout,
                f"nodes {', '.join(nodes)} Ready",
            )
            mark("nodes-ready")
            if self.profile.real_nodes:
                self.log("[k8sai] starting the real GPU node (containerd, kubelet, device plugin)")
                info = realnode.start_real_node(
                    sup=sup,
                    start=start,
                    run_dir=self.run_dir,
                    cluster_name=self.cluster_name,
                    kubeconfig=kubeconfig,
                    kubelet_bin=bins["kubelet"],
                    api=api,
                    spec=self.real_node_spec(),
                    tars=tars,
                    timeout_s=timeout,
                    log=self.log,
                )
                st.endpoints["containerd_socket"] = str(info.containerd_socket)
                st.versions["containerd"] = realnode.containerd_version(info.containerd_socket)
                for phase, secs in info.timings.items():
                    timings[f"real-node-{phase}"] = round(secs + timings["nodes-ready"], 3)
                mark("real-node")
            if das is not None:
                src, das_built = das
                self.log("[k8sai] starting the real DAS (webhook, scheduler, emulated daemonsets)")
                ep = dasrun.start_das(
                    sup,
                    api,
                    self.run_dir,
                    pki,
                    kubeconfig,
                    self._das_nodes(api),
                    DAS_NAMESPACE_LABEL,
                    das_built.binaries,
                    src.dir,
                    self.log,
                    timeout,
                )
                st.versions["das"] = src.commit[:8]
                st.endpoints["das_webhook"] = ep.webhook_url
                st.endpoints["das_namespace_label"] = "=".join(DAS_NAMESPACE_LABEL)
                mark("das")
            # The service-account controller works once 'default' exists: pods can be created.
            sup.wait(
                "kube-controller-manager",
                lambda: bool(
                    client.CoreV1Api(api).read_namespaced_service_account("default", "default")
                ),
                timeout,
                "ServiceAccount default/default",
            )
            mark("ready")
        finally:
            api.close()
        st.timings = timings
        st.ready = True
        st.save()
        self.log(
            f"[k8sai] local cluster ready in {timings['ready']:.1f}s (kubeconfig {kubeconfig})"
        )
        return st

    # -- logs and teardown -----------------------------------------------------------------
    def collect_logs(self, dest: Path) -> list[Path]:
        logs = self.run_dir / "logs"
        if not logs.is_dir():
            return []
        dest.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copy(f, dest / f.name)) for f in sorted(logs.glob("*.log"))]

    def _save_failed_logs(self) -> Path:
        root = cache_root() / "failed-starts"
        dest = root / f"{self.cluster_name}-{time.strftime('%Y%m%dT%H%M%S')}"
        self.collect_logs(dest)
        for old in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime)[:-KEEP_FAILED_LOGS]:
            shutil.rmtree(old, ignore_errors=True)
        return dest

    def destroy(self) -> None:
        if self._created and not self.keep:
            self._teardown()

    def _teardown(self) -> None:
        started = time.monotonic()
        with contextlib.suppress(Exception):
            atexit.unregister(self._atexit)
        # The state file first: it holds processes restarted since start (fault injection).
        killed = state.remove(self.cluster_name, state.load(self.cluster_name) or self._state)
        self._created = False
        note = f"; SIGKILLed {', '.join(killed)}" if killed else ""
        self.log(
            f"[k8sai] local cluster '{self.cluster_name}' removed in "
            f"{time.monotonic() - started:.1f}s{note}"
        )

    def _atexit(self) -> None:
        # Last resort when the interpreter exits without destroy(): never leave processes behind.
        if self._created and not self.keep:
            self._teardown()


def stop_cluster(name: str) -> list[str] | None:
    """Stop a local cluster by name (``k8sai local down``); return the names that needed
    SIGKILL, or None if no such cluster was there."""
    with state.locked(name):
        st = state.load(name)
        if st is None and not state.run_dir(name).exists():
            return None
        return state.remove(name, st)
