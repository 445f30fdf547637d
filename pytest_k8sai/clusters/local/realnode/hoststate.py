"""What a real node changes on the host, recorded before it starts and undone at teardown.

A kubelet is not a polite guest: it sets kernel sysctls (vm.overcommit_memory 0 -> 1,
kernel.panic -> 10, kernel.panic_on_oops -> 1), needs cgroups under its cgroupRoot in every
v1 controller, mounts its root dir and every pod's volumes, and creates the fixed paths
/var/lib/kubelet/device-plugins and /var/log/containers. containerd's shims outlive
containerd itself (they are reparented to init). The record is a file in the cluster's run
directory, so ``k8sai local down`` from another process undoes a crashed run's changes too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel, Field

RECORD_FILE = "realnode-host.json"
# The sysctls kubelet v1.36 sets at start (pkg/kubelet/cm setupKernelTunables), and the
# keyring ones it may raise: all restored at teardown.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
# Paths the kubelet uses whatever its --root-dir says, and where containerd 1.6 puts its
# shims' sockets whatever its state dir is (/run/containerd/s).
FIXED_DIRS = ("/var/lib/kubelet/device-plugins", "/var/log/containers", "/run/containerd")
CGROUP_V1 = Path("/sys/fs/cgroup")


class HostRecord(BaseModel):
    """Everything to undo, written before the change is made."""

    run_dir: Path
    sysctls: dict[str, str] = Field(default_factory=dict)
    created_dirs: list[Path] = Field(default_factory=list)  # deepest last; removed reversed
    cgroup_root: str = ""  # e.g. /k8sai-local, in every v1 controller
    containerd_socket: Path | None = None  # shims carry it on their command line

    def save(self) -> None:
        path = self.run_dir / RECORD_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(path)


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            out[name] = _sysctl_path(name).read_text().strip()
    return out


def v1_controllers() -> list[Path]:
    """The cgroup v1 hierarchies mounted under /sys/fs/cgroup (not the unified one)."""
    if not CGROUP_V1.is_dir():
        return []
    return sorted(
        p
        for p in CGROUP_V1.iterdir()
        if p.is_dir() and p.name != "unified" and (p / "cgroup.procs").exists()
    )


def make_cgroup_root(name: str) -> None:
    """Create /<name> in every v1 controller; cpuset needs its cpus and mems set before any
    task may join it, copied from the parent."""
    for ctl in v1_controllers():
        d = ctl / name.strip("/")
        d.mkdir(exist_ok=True)
        if ctl.name == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (d / f).read_text().strip():
                    (d / f).write_text((ctl / f).read_text())


def record_before_start(run_dir: Path, cgroup_root: str, containerd_socket: Path) -> HostRecord:
    """Record the host's state, then make the dirs and cgroups the node needs."""
    rec = HostRecord(
        run_dir=run_dir,
        sysctls=read_sysctls(),
        cgroup_root=cgroup_root,
        containerd_socket=containerd_socket,
    )
    for d in FIXED_DIRS:
        missing = []
        p = Path(d)
        while not p.exists():
            missing.append(p)
            p = p.parent
        rec.created_dirs += list(reversed(missing))
    rec.save()  # before the change: a crash in between still gets undone
    for d in FIXED_DIRS:
        Path(d).mkdir(parents=True, exist_ok=True)
    make_cgroup_root(cgroup_root)
    return rec


def load(run_dir: Path) -> HostRecord | None:
    path = run_dir / RECORD_FILE
    try:
        return HostRecord.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


def _pids_with_arg(needle: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if needle.encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
    return pids


def _hierarchies() -> list[Path]:
    """Every mounted hierarchy, the unified (v2) one of a hybrid host included: the kubelet
    makes its cgroups there too."""
    unified = CGROUP_V1 / "unified"
    return v1_controllers() + ([unified] if (unified / "cgroup.procs").exists() else [])


def _cgroup_dirs(root: str) -> list[Path]:
    """Every cgroup under ``root`` in every hierarchy, deepest first."""
    dirs: list[Path] = []
    for ctl in _hierarchies():
        top = ctl / root.strip("/")
        if top.is_dir():
            dirs += [Path(p) for p, _, _ in os.walk(top)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def _kill_cgroup_tasks(root: str) -> int:
    killed = 0
    for d in _cgroup_dirs(root):
        with contextlib.suppress(OSError):
            for line in (d / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(line), signal.SIGKILL)
                    killed += 1
    return killed


def _mounts_under(run_dir: Path) -> list[str]:
    prefix = str(run_dir.resolve()) + "/"
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            point = line.split()[1].replace("\\040", " ")
            if point.startswith(prefix) or point == prefix[:-1]:
                points.append(point)
    return sorted(set(points), key=len, reverse=True)


def undo(run_dir: Path) -> list[str]:
    """Undo what the record lists, after the node's processes were stopped; return what could
    not be undone (empty when the host is as it was)."""
    rec = load(run_dir)
    if rec is None:
        return []
    problems: list[str] = []
    # Containers and their shims first: they hold mounts and cgroups.
    if rec.containerd_socket:
        for pid in _pids_with_arg(str(rec.containerd_socket)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if rec.cgroup_root:
        _kill_cgroup_tasks(rec.cgroup_root)
    time.sleep(0.1)  # SIGKILL is asynchronous; the cgroups empty once the tasks are gone
    for point in _mounts_under(run_dir):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = _mounts_under(run_dir)
    if left:
        problems.append(f"still mounted: {', '.join(left[:5])}")
    if rec.cgroup_root:
        for d in _cgroup_dirs(rec.cgroup_root):
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    _kill_cgroup_tasks(str(d))
                    time.sleep(0.05)
            else:
                problems.append(f"cgroup {d} could not be removed")
    for name, value in rec.sysctls.items():
        try:
            path = _sysctl_path(name)
            if path.read_text().strip() != value:
                path.write_text(value)
        except OSError as exc:
            problems.append(f"sysctl {name}={value} not restored ({exc})")
    for d in reversed(rec.created_dirs):
        # Only what did not exist before the node started: its sockets, checkpoints, links.
        shutil.rmtree(d, ignore_errors=True)
        if d.exists():
            problems.append(f"directory {d} (created by the real node) could not be removed")
    (run_dir / RECORD_FILE).unlink(missing_ok=True)
    return problems
