"""Inject faults into a running local cluster's own processes: kill one and start it again with
the same command line, or freeze one (SIGSTOP) for a while.

The reliability tests use these to prove what a run does when its control plane fails under
it. Only a local cluster's recorded processes can be touched (by component name, from its
state file), and the restarted process is recorded in that state file, so whoever stops the
cluster later stops the new process too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_k8sai.clusters.local import state
from pytest_k8sai.clusters.local.processes import (
    PROBE_ERRORS,
    ProcRecord,
    pid_alive,
    priority_prefix,
    stop,
)
from pytest_k8sai.core.errors import ClusterError

# A paused process is resumed even if the caller's wait is cut short; never longer than this.
MAX_PAUSE_S = 60.0


@dataclass(frozen=True)
class Injected:
    """What was done, when (monotonic seconds), and how long the component was unavailable."""

    component: str
    action: str  # "restart" or "pause"
    started: float
    ended: float  # when it was running (and ready, for a restart with a probe) again
    old_pid: int
    new_pid: int

    @property
    def outage_s(self) -> float:
        return self.ended - self.started

    def describe(self) -> str:
        what = "killed (SIGKILL) and restarted" if self.action == "restart" else "paused (SIGSTOP)"
        return f"{self.component} {what}; unavailable {self.outage_s:.1f} s"


def _record(cluster: str, component: str) -> tuple[state.ClusterState, ProcRecord]:
    st = state.load(cluster)
    if st is None:
        raise ClusterError(f"No running local cluster named '{cluster}' to inject a fault into.")
    for rec in st.processes:
        if rec.name == component:
            if not pid_alive(rec):
                raise ClusterError(
                    f"Local cluster '{cluster}': component '{component}' (pid {rec.pid}) is not "
                    "running, so no fault can be injected into it."
                )
            return st, rec
    names = ", ".join(p.name for p in st.processes)
    raise ClusterError(
        f"Local cluster '{cluster}' has no component '{component}' (it has {names})."
    )


def _command_of(pid: int) -> tuple[list[str], dict[str, str], str]:
    """argv, environment and working directory of a running process, read from /proc."""
    proc = Path(f"/proc/{pid}")
    argv = [a.decode() for a in proc.joinpath("cmdline").read_bytes().split(b"\0") if a]
    env = {}
    for item in proc.joinpath("environ").read_bytes().split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            env[key] = value
    return argv, env, os.readlink(proc / "cwd")


def restart(
    cluster: str,
    component: str,
    *,
    down_s: float = 0.0,
    ready: Callable[[], bool] | None = None,
    ready_timeout_s: float = 60.0,
) -> Injected:
    """SIGKILL ``component`` (its whole process group), wait ``down_s``, start it again with
    the same argv, environment and log file, and (with ``ready``) wait until it answers."""
    st, rec = _record(cluster, component)
    argv, env, cwd = _command_of(rec.pid)
    started = time.monotonic()
    stop([rec], grace_s=0.0)  # SIGTERM then SIGKILL at once: a crash, not a shutdown
    time.sleep(down_s)
    with rec.log.open("ab") as out:
        out.write(b"\n--- k8sai fault injection: restarted after SIGKILL ---\n")
        out.flush()
        proc = subprocess.Popen(
            [*priority_prefix(), *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=cwd,
        )
    new = ProcRecord(name=rec.name, pid=proc.pid, exe=rec.exe, log=rec.log)
    st.processes = [new if p.name == component else p for p in st.processes]
    st.save()
    if ready is not None:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise ClusterError(
                    f"{component} exited with code {proc.returncode} after its restart; "
                    f"log: {rec.log}"
                )
            with contextlib.suppress(*PROBE_ERRORS):
                if ready():
                    break
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{component} did not answer within {ready_timeout_s:.0f} s of its restart; "
                    f"log: {rec.log}"
                )
            time.sleep(0.05)
    return Injected(component, "restart", started, time.monotonic(), rec.pid, proc.pid)


def pause(cluster: str, component: str, seconds: float) -> Injected:
    """Freeze ``component`` with SIGSTOP for ``seconds``, then SIGCONT (always, even if the
    sleep is interrupted): a disk stall or a stop-the-world pause, not a crash."""
    if not 0 < seconds <= MAX_PAUSE_S:
        raise ClusterError(f"pause: seconds must be in (0, {MAX_PAUSE_S:.0f}], not {seconds}.")
    _, rec = _record(cluster, component)
    started = time.monotonic()
    os.killpg(rec.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.killpg(rec.pid, signal.SIGCONT)
    return Injected(component, "pause", started, time.monotonic(), rec.pid, rec.pid)
