"""What a running local cluster is made of, saved beside it so another process can reuse it
(``--keep-cluster``, ``k8sai local up``) or stop it (``k8sai local down``)."""

from __future__ import annotations

import shutil
from contextlib import AbstractContextManager
from pathlib import Path

from pydantic import BaseModel, Field

from pytest_k8sai.clusters.local.build import cache_root, file_lock
from pytest_k8sai.clusters.local.controlplane import Ports
from pytest_k8sai.clusters.local.processes import ProcRecord, pid_alive, stop
from pytest_k8sai.clusters.local.realdas import run as dasrun
from pytest_k8sai.clusters.local.realnode import hoststate
from pytest_k8sai.core.errors import ClusterError

STATE_FILE = "state.json"


class ClusterState(BaseModel):
    name: str
    run_dir: Path
    kubeconfig: Path
    ports: Ports
    processes: list[ProcRecord] = Field(default_factory=list)
    endpoints: dict[str, str] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    ready: bool = False

    def save(self) -> None:
        tmp = self.run_dir / f"{STATE_FILE}.tmp"
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(self.run_dir / STATE_FILE)

    def dead(self) -> list[str]:
        return [p.name for p in self.processes if not pid_alive(p)]


def run_dir(name: str) -> Path:
    return cache_root() / "clusters" / name


def load(name: str) -> ClusterState | None:
    path = run_dir(name) / STATE_FILE
    if not path.exists():
        return None
    try:
        return ClusterState.model_validate_json(path.read_text())
    except ValueError:
        return None  # a half-written or foreign file: treated as no cluster, then cleaned


def remove(name: str, state: ClusterState | None) -> list[str]:
    """Stop every recorded process, undo what a real node changed on the host, and delete the
    cluster's directory; return SIGKILLed names."""
    killed = stop(list(reversed(state.processes))) if state else []
    problems = hoststate.undo(run_dir(name))
    # The mount points the real DAS's daemonsets needed (only once no other cluster's run).
    dasrun.remove_host_dirs(dasrun.host_dirs_record())
    if any(p.startswith("still mounted") for p in problems):
        # Deleting through a live mount would delete what it shows: leave the directory.
        raise ClusterError(
            f"Local cluster '{name}': the real node's host changes were not all undone: "
            f"{'; '.join(problems)}. Unmount them (umount -l) and run 'k8sai local down' again."
        )
    shutil.rmtree(run_dir(name), ignore_errors=True)
    if problems:
        raise ClusterError(
            f"Local cluster '{name}' removed, but the real node's host changes were not all "
            f"undone: {'; '.join(problems)}."
        )
    return killed


def locked(name: str) -> AbstractContextManager[None]:
    """One creator or destroyer of a named cluster at a time, across processes."""
    return file_lock(cache_root() / "clusters" / f"{name}.lock")


def live_pids(run_dir: Path) -> dict[str, int]:
    """Component name -> pid of the running processes of the local cluster saved in
    ``run_dir`` (e.g. for /proc CPU and memory figures); {} when no state is saved there.
    Read at call time: a component restarted since start (fault injection) has a new pid."""
    path = run_dir / STATE_FILE
    try:
        st = ClusterState.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return {}
    return {p.name: p.pid for p in st.processes if pid_alive(p)}
