"""A heartbeat against the API server during a measurement: finds the outages a watch cannot.

A watch that stalls (etcd frozen, the API server overloaded to a halt) delivers nothing and
raises nothing, so the events it holds back arrive late with shifted timestamps and no error.
This thread makes one small quorum read (a list with ``limit=1``, served by etcd, not the
watch cache) every ``interval_s``; a read that fails, or takes longer than ``stall_s``, is an
outage, kept as a ``WatchGap`` of kind "API" from the read's start to its answer.

``stall_s`` is an outage, not a slowness bound: a list of one object that takes seconds means
the control plane stopped answering. A slow but answering API is a regression for the
verdicts to judge, never a reason to declare them invalid, so the bound stays far above any
latency an answering API server shows (local tier: 5-50 ms, 2-core CI peaks below 0.5 s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pytest_k8sai.measure.joblatency import WatchGap

STALL_S = 3.0
INTERVAL_S = 1.0


class ApiHeartbeat:
    def __init__(
        self,
        read: Callable[[], Any],
        *,
        interval_s: float = INTERVAL_S,
        stall_s: float = STALL_S,
        timeout_s: float = 30.0,
    ) -> None:
        """``read``: one small quorum read, given ``timeout_s`` by the caller's closure."""
        self._read = read
        self._interval_s = interval_s
        self._stall_s = stall_s
        self.timeout_s = timeout_s
        self._gaps: list[WatchGap] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="k8sai-heartbeat")
        self.reads = 0

    def start(self) -> ApiHeartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 5)

    def gaps(self) -> list[WatchGap]:
        with self._lock:
            return list(self._gaps)

    def _run(self) -> None:
        open_gap: WatchGap | None = None
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self._read()
                cause = ""
            except Exception as exc:  # noqa: BLE001 - any failure to answer is an outage
                # The class and the gist: urllib3's messages repeat the whole URL.
                gist = "connection refused" if "refused" in str(exc).lower() else "no answer"
                cause = f"{type(exc).__name__}: {gist}"
            t1 = time.monotonic()
            self.reads += 1
            if cause or t1 - t0 > self._stall_s:
                with self._lock:
                    if open_gap is None:
                        why = cause or f"a one-object list took {t1 - t0:.1f} s"
                        open_gap = WatchGap("API", t0, cause=why)
                        self._gaps.append(open_gap)
                    open_gap.failures += 1
                    if not cause:  # it answered, late: the outage ends with the answer
                        open_gap.end, open_gap = t1, None
            elif open_gap is not None:
                with self._lock:
                    open_gap.end, open_gap = t1, None
            self._stop.wait(max(0.0, self._interval_s - (time.monotonic() - t0)))
