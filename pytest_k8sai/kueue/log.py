"""Exact admission-attempt durations from the Kueue manager's verbose log.

Kueue's histogram ``kueue_admission_attempt_duration_seconds`` uses Prometheus' default buckets
(5, 10, 25 ms, ...), so a P99 read from it is an interpolation. At ``--zap-log-level=2`` the
scheduler logs, per scheduling cycle (pkg/scheduler/scheduler.go, Kueue v0.17):

- "Obtained heads" with ``waitDuration``: seconds from cycle start until heads were popped;
- "Scheduling cycle complete" with ``duration``: seconds from cycle start to cycle end.

The histogram observes ``time since heads were obtained`` at the end of the cycle, so one attempt
is ``duration - waitDuration`` of a cycle that obtained heads: the same interval, to the
microsecond, for every attempt instead of a bucket count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HEADS = "Obtained heads"
COMPLETE = "Scheduling cycle complete"
# Logged synchronously in the scheduling loop when a workload is admitted (the API write that
# makes it visible follows asynchronously, so watch order can differ from decision order).
ASSUMED = "Workload assumed in the cache"


@dataclass(frozen=True)
class Attempt:
    cycle: int
    ts: str  # the log line's RFC3339 time of cycle completion
    duration_s: float
    heads: int


def workload_namespace(rec: dict[str, object]) -> str | None:
    """The namespace of the Workload a log line is about: klog's {"name", "namespace"}, or
    "namespace/name" in the lines that print the key as text."""
    wl = rec.get("workload")
    if isinstance(wl, dict):
        ns = wl.get("namespace")
        return str(ns) if ns is not None else None
    if isinstance(wl, str) and "/" in wl:
        return wl.split("/", 1)[0]
    return None


def parse_attempts(lines: Iterable[str], namespace: str | None = None) -> list[Attempt]:
    """Pair each cycle's 'Obtained heads' with its 'Scheduling cycle complete' line.

    With ``namespace``, only the cycles that took a Workload of that namespace among their
    heads: every head is logged at level 2 with its cycle and Workload before the cycle
    completes ("Attempting to schedule workload", or "Workload re-queued" for one found
    inadmissible at nomination). So two runs sharing one Kueue each count the attempts that
    handled their own Workloads (a cycle that took heads of both counts for both), never the
    other run's alone; the histogram cannot be split that way.
    """
    waits: dict[int, tuple[float, int]] = {}
    touched: set[int] = set()  # cycles that took a Workload of ``namespace``
    needle = namespace  # a substring test first: the log is mostly other lines
    out: list[Attempt] = []
    for line in lines:
        ours = needle is not None and needle in line
        if not ours and HEADS not in line and COMPLETE not in line:
            continue  # cheap pre-filter: the log is mostly other lines
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        cycle = rec.get("schedulingCycle")
        if not isinstance(cycle, int):
            continue
        if ours and workload_namespace(rec) == namespace:
            touched.add(cycle)
        if rec.get("msg") == HEADS:
            waits[cycle] = (float(rec["waitDuration"]), int(rec.get("headCount", 0)))
        elif rec.get("msg") == COMPLETE and cycle in waits:
            wait, heads = waits.pop(cycle)
            if namespace is None or cycle in touched:
                duration = float(rec["duration"]) - wait
                out.append(Attempt(cycle, str(rec.get("ts", "")), duration, heads))
            touched.discard(cycle)
    return out


def parse_admissions(lines: Iterable[str], namespace: str) -> list[str]:
    """Names of the Workloads of ``namespace`` that the scheduler admitted, in decision order."""
    out = []
    for line in lines:
        if ASSUMED not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        wl = rec.get("workload") or {}
        if rec.get("msg") == ASSUMED and wl.get("namespace") == namespace:
            out.append(str(wl.get("name")))
    return out


class KueueLog:
    """Read attempts logged between two points of a growing log file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        """The current end of the log; pass it to attempts_since() later."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def lines_since(self, offset: int) -> list[str]:
        with self.path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace").splitlines()

    def attempts_since(self, offset: int) -> list[Attempt]:
        return parse_attempts(self.lines_since(offset))
