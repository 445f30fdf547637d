"""Start, watch and stop the local cluster's component processes.

Each component runs in its own session (so a Ctrl-C in the terminal reaches pytest, which then
stops them in order) with its output in ``<run_dir>/logs/<name>.log``. Pids are recorded so a
later process (``k8sai local down``, or a run that reuses a kept cluster) can stop them too.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import urllib3
from kubernetes.client.rest import ApiException
from pydantic import BaseModel

from pytest_k8sai.core.errors import ClusterError

# Data dies with the cluster, so a graceful drain buys nothing: a short grace, then SIGKILL.
STOP_GRACE_S = 1.0
PROBE_ERRORS = (OSError, urllib3.exceptions.HTTPError, ApiException)


class ProcRecord(BaseModel):
    name: str
    pid: int
    exe: str
    log: Path


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port free now, drawn below the kernel's ephemeral range when it can be:
    a port is bound by its component only later, and outgoing connections (every client of
    every local cluster on the machine) take ephemeral ports in between."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    if low - LOWEST_PORT >= 1000:
        for _ in range(50):
            port = random.randrange(LOWEST_PORT, low)
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip()[:240] for line in text[-lines:]) or "(empty log)"


def pid_alive(rec: ProcRecord) -> bool:
    """True if ``rec.pid`` still runs ``rec.exe`` (guards against a recycled pid)."""
    try:
        with open(f"/proc/{rec.pid}/cmdline", "rb") as fh:
            argv0 = fh.read().split(b"\0", 1)[0].decode(errors="replace")
        with open(f"/proc/{rec.pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return argv0 == rec.exe and state != "Z"


def _reap(records: list[ProcRecord]) -> None:
    """Collect exit statuses of those that are our children, so no zombie outlives them."""
    for r in records:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(r.pid, os.WNOHANG)


def _wait_gone(records: list[ProcRecord], seconds: float) -> list[ProcRecord]:
    deadline = time.monotonic() + seconds
    while True:
        _reap(records)
        alive = [r for r in records if pid_alive(r)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def stop(records: list[ProcRecord], grace_s: float = STOP_GRACE_S) -> list[str]:
    """SIGTERM every process, SIGKILL what is left after ``grace_s``, and return only once all
    are gone; return the names that needed SIGKILL."""
    live = [r for r in records if pid_alive(r)]
    for r in live:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(r.pid, signal.SIGTERM)
    stubborn = _wait_gone(live, grace_s)
    for r in stubborn:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(r.pid, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: wait until the kernel has really ended them.
    left = _wait_gone(stubborn, 5.0)
    if left:
        raise ClusterError(
            "Could not stop local cluster processes even with SIGKILL: "
            + ", ".join(f"{r.name} (pid {r.pid})" for r in left)
        )
    return [r.name for r in stubborn]


# In a real cluster the control plane does not share CPUs with the test harness (the load
# generator and the watches). Here it does, so its processes get the higher CPU priority, when
# the user may grant it (root); otherwise they run at the default one.
COMPONENT_NICE = -10


def priority_prefix() -> list[str]:
    nice = shutil.which("nice")
    if os.geteuid() != 0 or nice is None:
        return []
    # nice execs the component in place: same pid, and argv[0] stays the component's path.
    return [nice, "-n", str(COMPONENT_NICE)]


class Supervisor:
    def __init__(
        self, run_dir: Path, on_start: Callable[[list[ProcRecord]], None] | None = None
    ) -> None:
        self.logs = run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.records: list[ProcRecord] = []
        self._popen: dict[str, subprocess.Popen[bytes]] = {}
        # Called with every record after each start, by whoever must be able to stop them
        # (the cluster state): a start that fails halfway then leaves nothing unrecorded.
        self._on_start = on_start

    def start(
        self, name: str, exe: Path, args: list[str], env: dict[str, str] | None = None
    ) -> ProcRecord:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [*priority_prefix(), str(exe), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self._popen[name] = proc
        rec = ProcRecord(name=name, pid=proc.pid, exe=str(exe), log=log)
        self.records.append(rec)
        if self._on_start is not None:
            self._on_start(list(self.records))
        return rec

    def check(self, name: str) -> None:
        """Raise a ClusterError naming the component and its log if it has exited."""
        proc = self._popen[name]
        rc = proc.poll()
        if rc is not None:
            log = self.logs / f"{name}.log"
            raise ClusterError(
                f"Local cluster component '{name}' exited with code {rc} during start. "
                f"Last log lines: {tail(log)} -- full log: {log}"
            )

    def wait(self, name: str, ready: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Poll ``ready`` until it holds; fail early if the process dies. Return seconds taken."""
        started = time.monotonic()
        while True:
            self.check(name)
            try:
                if ready():
                    return time.monotonic() - started
            except PROBE_ERRORS:  # refused, timed out, 404/409 from a starting API: not yet
                pass
            if time.monotonic() - started > timeout_s:
                log = self.logs / f"{name}.log"
                raise ClusterError(
                    f"Local cluster component '{name}' did not become ready ({what}) within "
                    f"{timeout_s:.0f}s. Last log lines: {tail(log)} -- full log: {log}"
                )
            time.sleep(0.05)

    def stop_matching(self, prefix: str) -> list[str]:
        """Stop the processes whose names start with ``prefix`` and forget them (so the
        names can be started again); return the names that needed SIGKILL."""
        chosen = [r for r in self.records if r.name.startswith(prefix)]
        killed = stop(list(reversed(chosen)))
        self.records = [r for r in self.records if r not in chosen]
        for r in chosen:
            self._popen.pop(r.name, None)
        return killed
