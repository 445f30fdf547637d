"""Command lines and config files of the local control plane: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and the KWOK controller, all bound to 127.0.0.1."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from pytest_k8sai.clusters.local.pki import Pki
from pytest_k8sai.clusters.local.processes import free_port
from pytest_k8sai.core import mutants

SERVICE_CIDR = "10.96.0.0/16"  # service IPs are only names here; no traffic goes to them
LOCAL_QPS = {"qps": 1000, "burst": 2000}  # like kwokctl --disable-qps-limits
# Names the mutant (if any) whose control-plane sections this cluster was started with, so
# a run with another mutant, or none, never reuses it (see started_with).
MUTANT_MARKER = "mutant-control-plane.txt"


class Ports(BaseModel):
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int
    kueue_webhook: int
    kueue_metrics: int
    kueue_health: int

    @classmethod
    def allocate(cls) -> Ports:
        names = list(cls.model_fields)
        ports: set[int] = set()
        while len(ports) < len(names):
            ports.add(free_port())
        return cls(**dict(zip(names, sorted(ports), strict=True)))


def write_kubeconfig(path: Path, pki: Pki, server: str, name: str) -> None:
    """An admin kubeconfig with certs embedded, so it can be copied elsewhere and still work."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    crt, key = pki.pair("admin")
    ctx = f"k8sai-{name}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": ctx,
        "clusters": [
            {
                "name": ctx,
                "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_crt)},
            }
        ],
        "users": [
            {
                "name": "k8sai-admin",
                "user": {"client-certificate-data": b64(crt), "client-key-data": b64(key)},
            }
        ],
        "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": "k8sai-admin"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)


def etcd_args(run: Path, ports: Ports) -> list[str]:
    client = f"http://127.0.0.1:{ports.etcd}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        "--name=k8sai",
        f"--data-dir={run / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=k8sai={peer}",
        "--initial-cluster-state=new",
        # A throw-away test cluster: durability costs start-up and write latency for nothing.
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=4294967296",
        "--log-level=warn",
    ]


def apiserver_args(run: Path, pki: Pki, ports: Ports, tokens: Path) -> list[str]:
    crt, key = pki.pair("apiserver")
    return [
        f"--etcd-servers=http://127.0.0.1:{ports.etcd}",
        "--etcd-prefix=/registry",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={crt}",
        f"--tls-private-key-file={key}",
        f"--client-ca-file={pki.ca_crt}",
        f"--service-account-key-file={pki.path('sa.pub')}",
        f"--service-account-signing-key-file={pki.path('sa.key')}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # The 'kubernetes' Service would get a loopback endpoint, which the API rejects.
        "--endpoint-reconciler-type=none",
        "--authorization-mode=Node,RBAC",
        # A static bearer token for scraping Kueue's metrics, which authenticate by TokenReview.
        f"--token-auth-file={tokens}",
        "--allow-privileged=true",
        # Kueue's own performance runner raises these; bursts of Job creates need it.
        "--max-requests-inflight=800",
        "--max-mutating-requests-inflight=400",
        "--profiling=false",
    ]


def _component_kubeconfig_args(kubeconfig: Path) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
    ]


def controller_manager_args(pki: Pki, ports: Ports, kubeconfig: Path) -> list[str]:
    return [
        *_component_kubeconfig_args(kubeconfig),
        f"--secure-port={ports.controller_manager}",
        f"--root-ca-file={pki.ca_crt}",
        f"--service-account-private-key-file={pki.path('sa.key')}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--use-service-account-credentials=false",
        f"--kube-api-qps={LOCAL_QPS['qps']}",
        f"--kube-api-burst={LOCAL_QPS['burst']}",
        # Job completions are what the suites time: sync them as fast as they happen.
        "--concurrent-job-syncs=20",
    ]


def scheduler_config(kubeconfig: Path) -> dict[str, Any]:
    """kube-scheduler's configuration: upstream defaults (no profiles, so the default
    plugins and LeastAllocated scoring) unless the active mutant overlays ``kube_scheduler``."""
    config: dict[str, Any] = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig), **LOCAL_QPS},
        "leaderElection": {"leaderElect": False},
    }
    overlay = mutants.changes().kube_scheduler
    return mutants.deep_merge(config, overlay) if overlay else config


def scheduler_args(run: Path, ports: Ports, kubeconfig: Path) -> list[str]:
    config = run / "scheduler.yaml"
    config.write_text(yaml.safe_dump(scheduler_config(kubeconfig)))
    # Written with every start (the scheduler is started before Kueue): what this cluster's
    # processes were configured with.
    (run / MUTANT_MARKER).write_text(mutants.control_plane_fingerprint(mutants.active()))
    args = _component_kubeconfig_args(kubeconfig)
    args = [a for a in args if not a.startswith(("--kubeconfig", "--leader-elect"))]
    return [f"--config={config}", *args, f"--secure-port={ports.scheduler}"]


def started_with(run: Path) -> str:
    """The control-plane mutant fingerprint a local cluster was started with ("" for none,
    also for clusters started before mutants existed)."""
    try:
        return (run / MUTANT_MARKER).read_text().strip()
    except OSError:
        return ""


def kwok_args(run: Path, ports: Ports, kubeconfig: Path, stages: str, pod_cidr: str) -> list[str]:
    config = run / "kwok.yaml"
    config.write_text(stages)
    return [
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        # Only nodes the local provider creates (annotated) are KWOK's to play.
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        f"--server-address=127.0.0.1:{ports.kwok}",
        f"--cidr={pod_cidr}",
        "--node-ip=127.0.0.1",
        # Node heartbeats go through leases (the heartbeat-with-lease stage refreshes status
        # only every ~10 min). Without this flag kwok keeps no leases, the node controller
        # marks the nodes unreachable after its grace period, and their pods go NotReady for
        # good (KWOK does not set Ready again): long-lived pods such as the inference
        # replicas then drop out of their InferencePool.
        "--node-lease-duration-seconds=40",
    ]
