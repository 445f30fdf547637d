"""The host programs a real node needs, which no Go module provides: containerd, runc and the
CNI loopback plugin (Debian packages), busybox-static for the workload image and gcc for the
sandbox image. On Debian as root they are installed (and the user is told); elsewhere the
error names what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from pytest_k8sai.clusters.local.realnode.containerd import cni_bin_dir
from pytest_k8sai.core.errors import ClusterError

Log = Callable[[str], None]
# Debian package -> how to tell it is there.
NEEDED: dict[str, Callable[[], bool]] = {
    "containerd": lambda: bool(shutil.which("containerd") and shutil.which("ctr")),
    "runc": lambda: bool(shutil.which("runc")),
    "containernetworking-plugins": lambda: cni_bin_dir() is not None,
    "busybox-static": lambda: Path("/bin/busybox").exists(),
    "gcc": lambda: bool(shutil.which("gcc")),
    "libc6-dev": lambda: Path("/usr/include/stdio.h").exists(),
}
APT_TIMEOUT_S = 900.0


def missing() -> list[str]:
    return [pkg for pkg, present in NEEDED.items() if not present()]


def ensure(log: Log = print) -> None:
    """Install what is missing with apt-get on Debian as root; else raise naming it."""
    want = missing()
    if not want:
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        why = "not root" if apt else "no apt-get (not Debian)"
        raise ClusterError(
            "The real-node tier (local.gpu_nodes: real) runs a kubelet on containerd and runc "
            f"from the host, but these are missing: {', '.join(want)}; they cannot be installed "
            f"automatically here ({why}). Install them (Debian: apt-get install "
            f"{' '.join(want)}; elsewhere containerd >= 1.6, runc, the CNI loopback plugin in "
            "/usr/lib/cni or /opt/cni/bin, a static busybox at /bin/busybox and gcc) and retry."
        )
    log(
        f"[k8sai] installing Debian packages the real-node tier needs: {' '.join(want)} "
        "(apt-get install; once per machine)"
    )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt_get(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [apt, *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=APT_TIMEOUT_S,
            check=False,
        )

    proc = apt_get("install", "-y", "--no-install-recommends", *want)
    if proc.returncode != 0:  # a fresh machine's package lists may be empty or stale
        log("[k8sai] apt-get install failed; running apt-get update and trying once more")
        apt_get("update")
        proc = apt_get("install", "-y", "--no-install-recommends", *want)
    if proc.returncode != 0 or missing():
        tail = " ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise ClusterError(
            f"Installing {' '.join(want)} with apt-get failed (exit {proc.returncode}): {tail}. "
            f"Run 'apt-get update && apt-get install {' '.join(want)}' and retry."
        )
