"""containerd for the real node: a private instance (own root, state and socket under the
cluster's run dir), never the host's /var/lib/containerd or /run/containerd/containerd.sock."""

from __future__ import annotations

import json
from pathlib import Path

# The CNI config: loopback only. Test pods use hostNetwork, so no address outside 127.0.0.0/8
# is ever made (a bridge network would put pod addresses on the host).
CNI_CONFLIST = {"cniVersion": "1.0.0", "name": "k8sai-loopback", "plugins": [{"type": "loopback"}]}
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")


class Paths:
    def __init__(self, run_dir: Path) -> None:
        self.root = run_dir / "containerd"
        self.socket = self.root / "containerd.sock"
        self.config = self.root / "config.toml"
        self.cni_conf = run_dir / "cni" / "net.d"


def cni_bin_dir() -> Path | None:
    return next((Path(d) for d in CNI_BIN_DIRS if (Path(d) / "loopback").exists()), None)


def config_toml(paths: Paths, sandbox_image: str, cni_bin: Path) -> str:
    # restrict_oom_score_adj: without CAP_SYS_RESOURCE (this VM's bounding set lacks it) runc
    # cannot lower oom_score_adj and every sandbox fails ("can't get final child's PID from
    # pipe: EOF"). cgroupfs, not systemd: the kubelet's cgroupDriver must match.
    return f"""version = 2
root = "{paths.root / "root"}"
state = "{paths.root / "state"}"

[grpc]
  address = "{paths.socket}"

[ttrpc]
  address = "{paths.socket}.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{paths.root / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{paths.cni_conf}"
"""


def write_config(run_dir: Path, sandbox_image: str, cni_bin: Path) -> Paths:
    paths = Paths(run_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.cni_conf.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(config_toml(paths, sandbox_image, cni_bin))
    (paths.cni_conf / "10-loopback.conflist").write_text(json.dumps(CNI_CONFLIST, indent=2))
    return paths


def args(paths: Paths) -> list[str]:
    return ["--config", str(paths.config)]
