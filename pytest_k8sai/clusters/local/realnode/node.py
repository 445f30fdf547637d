"""Start one real GPU node beside the local control plane: containerd (private instance),
the locally built images imported into it, a kubelet, and the fake-GPU device plugin.

One real node per machine: the kubelet's device-plugin socket is fixed at
/var/lib/kubelet/device-plugins whatever --root-dir says.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from pytest_k8sai.clusters.local.processes import Supervisor, free_port
from pytest_k8sai.clusters.local.realnode import containerd, hoststate, images, kubelet, packages
from pytest_k8sai.core.errors import ClusterError

Log = Callable[[str], None]
# The provider's start(name, args, exe): starts a supervised process and records it at once.
Start = Callable[[str, list[str], Path], None]
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10.2"  # what kubelet v1.36 / containerd expect
DEVICE_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")
GPU_RESOURCE = "nvidia.com/gpu"
CTR_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RealNodeSpec:
    name: str
    product: str
    gpus: int
    workload_image: str


@dataclass
class RealNodeInfo:
    name: str
    containerd_socket: Path
    images: list[str]
    timings: dict[str, float]


def cgroup_root(cluster_name: str) -> str:
    return f"/k8sai-{cluster_name}"


def _ctr(sock: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", str(sock), "-n", "k8s.io", *argv],
        capture_output=True,
        text=True,
        timeout=CTR_TIMEOUT_S,
        check=False,
    )


def prepare(k8s_module_dir: Path, spec: RealNodeSpec, log: Log) -> list[images.LocalImage]:
    """Host packages and image tars (cached): everything slow that needs no cluster."""
    packages.ensure(log)
    return [
        images.pause_image(k8s_module_dir, SANDBOX_IMAGE, log=log),
        images.workload_image(spec.workload_image, log=log),
    ]


def start_real_node(
    *,
    sup: Supervisor,
    start: Start,
    run_dir: Path,
    cluster_name: str,
    kubeconfig: Path,
    kubelet_bin: Path,
    api: client.ApiClient,
    spec: RealNodeSpec,
    tars: list[images.LocalImage],
    timeout_s: float,
    log: Log,
) -> RealNodeInfo:
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    cni = containerd.cni_bin_dir()
    if cni is None:  # prepare() installed it; only a concurrent uninstall gets here
        raise ClusterError("The CNI loopback plugin vanished (package containernetworking-plugins)")
    paths = containerd.write_config(run_dir, SANDBOX_IMAGE, cni)
    hoststate.record_before_start(run_dir, cgroup_root(cluster_name), paths.socket)
    start("containerd", containerd.args(paths), Path(_which("containerd")))
    sup.wait(
        "containerd",
        lambda: paths.socket.exists() and _ctr(paths.socket, "version").returncode == 0,
        timeout_s,
        f"ctr version on {paths.socket}",
    )
    timings["containerd"] = time.monotonic() - t0
    for img in tars:
        proc = _ctr(paths.socket, "images", "import", "--snapshotter", "overlayfs", str(img.tar))
        if proc.returncode != 0:
            raise ClusterError(
                f"Importing image {img.tag} ({img.tar}) into the real node's containerd failed: "
                f"{proc.stderr.strip()[-400:]} -- containerd log: {sup.logs / 'containerd.log'}"
            )
    timings["images"] = time.monotonic() - t0

    cfg = kubelet.config(
        run_dir=run_dir,
        port=free_port(),
        healthz_port=free_port(),
        containerd_socket=paths.socket,
        cgroup_root=cgroup_root(cluster_name),
    )
    cfg_file = kubelet.write_config(run_dir / "kubelet" / "config.yaml", cfg)
    labels = kubelet.node_labels(spec.product, spec.gpus)
    start(
        "kubelet",
        kubelet.args(
            config_file=cfg_file,
            kubeconfig=kubeconfig,
            run_dir=run_dir,
            node=spec.name,
            labels=labels,
        ),
        kubelet_bin,
    )
    sup.wait(
        "kubelet",
        lambda: kubelet.fix_node_addresses(api, spec.name),
        timeout_s,
        f"node {spec.name} registered",
    )
    timings["kubelet-registered"] = time.monotonic() - t0
    # The plugin registers with the kubelet's socket and re-registers if the kubelet restarts.
    start(
        "device-plugin",
        [
            "-m",
            "pytest_k8sai.clusters.local.realnode.deviceplugin",
            f"--plugin-dir={DEVICE_PLUGIN_DIR}",
            f"--resource={GPU_RESOURCE}",
            f"--count={spec.gpus}",
            f"--node={spec.name}",
        ],
        Path(sys.executable),
    )
    sup.wait(
        "kubelet",
        lambda: kubelet.node_ready(api, spec.name) and kubelet.fix_node_addresses(api, spec.name),
        timeout_s,
        f"node {spec.name} Ready",
    )
    timings["node-ready"] = time.monotonic() - t0
    sup.wait(
        "device-plugin",
        lambda: kubelet.gpus_advertised(api, spec.name, GPU_RESOURCE) == spec.gpus,
        timeout_s,
        f"{spec.gpus} x {GPU_RESOURCE} allocatable on node {spec.name}",
    )
    timings["gpus-advertised"] = time.monotonic() - t0
    return RealNodeInfo(
        name=spec.name,
        containerd_socket=paths.socket,
        images=[i.tag for i in tars],
        timings={k: round(v, 3) for k, v in timings.items()},
    )


def containerd_version(sock: Path) -> str:
    """The running containerd's version (``ctr version``: the Server block's Version)."""
    out = _ctr(sock, "version").stdout
    server = out.split("Server:", 1)[-1]
    for line in server.splitlines():
        if line.strip().startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _which(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ClusterError(f"'{name}' is not on PATH (Debian package containerd)")
    return path
