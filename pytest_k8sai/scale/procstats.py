"""CPU seconds and peak memory of the local tier's processes (Kueue, the apiserver, etcd, KWOK)
over a run, from /proc, so a scale figure says what each component cost.

CPU: utime + stime of /proc/<pid>/stat in clock ticks (``SC_CLK_TCK``), at the end minus at
the start. Peak memory: VmHWM of /proc/<pid>/status, the kernel's own high-water mark of the
resident set, so sampling need not catch the peak; periodic samples keep the last value
before a process exits. A pid that is missing, or was reused by another process (its start
time changed), gives a note, never an exception: a dead component is a finding to report.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProcSample:
    cpu_s: float
    hwm_bytes: int | None  # None: the kernel gave no VmHWM (a kernel thread, a zombie)
    start_ticks: int  # field 22 of stat: tells a reused pid from the process we started with


@dataclass(frozen=True)
class ProcFigures:
    name: str
    pid: int
    cpu_s: float | None  # None: no start sample, so nothing to subtract from
    peak_rss_bytes: int | None
    note: str = ""  # why a figure is missing or partial; "" when both are whole


def read_sample(pid: int, proc: Path = Path("/proc")) -> ProcSample | None:
    """One reading of ``pid``, or None when it is gone (or unreadable)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')': split after the
    # last one. What follows starts at field 3 (state), so field n is at index n - 3.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        ticks = int(fields[14 - 3]) + int(fields[15 - 3])
        start = int(fields[22 - 3])
    except (IndexError, ValueError):
        return None
    hwm = None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()  # "VmHWM:   123456 kB"
            hwm = int(parts[1]) * 1024 if len(parts) >= 2 and parts[1].isdigit() else None
            break
    return ProcSample(ticks / os.sysconf("SC_CLK_TCK"), hwm, start)


@dataclass
class _Track:
    pid: int
    first: ProcSample | None = None
    last: ProcSample | None = None
    peak: int | None = None
    notes: list[str] = field(default_factory=list)


class ProcStats:
    """``start()``, ``sample()`` as often as wanted (or ``sampling(interval)``), ``stop()``."""

    def __init__(self, pids: Mapping[str, int], proc: Path = Path("/proc")) -> None:
        self._proc = proc
        self._tracks = {name: _Track(pid) for name, pid in pids.items()}
        self._lock = threading.Lock()  # the sampling thread and stop() may meet

    def start(self) -> None:
        with self._lock:
            for name, t in self._tracks.items():
                t.first = self._read(name, t)
                if t.first is None:
                    t.notes.append(f"pid {t.pid} ({name}) was not running at the start")
                t.last = t.first

    def sample(self) -> None:
        with self._lock:
            for name, t in self._tracks.items():
                s = self._read(name, t)
                if s is not None:
                    t.last = s

    def _read(self, name: str, t: _Track) -> ProcSample | None:
        s = read_sample(t.pid, self._proc)
        if s is None:
            return None
        if t.first is not None and s.start_ticks != t.first.start_ticks:
            note = f"pid {t.pid} ({name}) now belongs to another process (restarted?)"
            if note not in t.notes:
                t.notes.append(note)
            return None
        if s.hwm_bytes is not None:
            t.peak = max(t.peak or 0, s.hwm_bytes)
        return s

    def stop(self) -> dict[str, ProcFigures]:
        with self._lock:
            out = {}
            for name, t in self._tracks.items():
                end = self._read(name, t)
                notes = list(t.notes)
                if end is None and t.first is not None and not notes:
                    notes.append(
                        f"pid {t.pid} ({name}) was gone at the end; CPU seconds and peak memory "
                        "are up to its last sample"
                    )
                end = end or t.last
                cpu = end.cpu_s - t.first.cpu_s if t.first and end else None
                out[name] = ProcFigures(name, t.pid, cpu, t.peak, "; ".join(notes))
            return out

    @contextmanager
    def sampling(self, interval_s: float) -> Iterator[ProcStats]:
        """start(), a daemon thread sampling every ``interval_s``; stop() is the caller's."""
        self.start()
        done = threading.Event()

        def loop() -> None:
            while not done.wait(interval_s):
                self.sample()

        thread = threading.Thread(target=loop, name="k8sai-procstats", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            done.set()
            thread.join()
