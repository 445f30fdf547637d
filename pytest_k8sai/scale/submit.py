"""The submission pacer: sends each planned workload at its offset, never faster than a token
bucket of ``burst`` tokens refilled at ``qps``, and measures itself, so a run can tell Kueue's
slowness from the harness's own.

Per submission it records the scheduled time, the ready time and the actual send. Ready is
``max(scheduled, token available)`` on the timeline of an ideal harness whose sends take no
time, so ``lag = sent - ready`` is the time lost to this harness (slow creates, late wake-ups,
and the backlog they leave), never the wait the limit imposes on purpose. The limit itself is
enforced on the real sends. The clock, sleep and CPU clock are injectable for tests.

With ``workers`` > 1 the sends run on that many threads: a send is issued when the token
bucket allows it and a worker is free, so one slow create no longer holds up the ones behind
it (serial creates at ~30 ms each turned a burst of 60 into 1.7 s of lag). A send's duration
(request to response) is kept apart from lag: a slow API server shows there, not as harness
lag, unless every worker is waiting on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.measure import stats


@dataclass(frozen=True)
class Sent:
    index: int
    scheduled_s: float  # all times relative to the start of the run
    ready_s: float  # max(scheduled, token available) for an ideal harness
    sent_s: float

    @property
    def lag_s(self) -> float:
        return self.sent_s - self.ready_s


@dataclass(frozen=True)
class PacerReport:
    sent: list[Sent]
    wall_s: float  # start of the run to the return of the last send
    submissions_per_s: float
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    # The harness process's CPU time over the wall time (1.0 = one core busy throughout).
    cpu_busy_share: float
    # False when ``stop()`` ended the run early (a spent time budget): ``sent`` says how far.
    complete: bool = True
    workers: int = 1
    # Each send's duration (request -> response), seconds, in order of completion.
    send_durations_s: list[float] = field(default_factory=list)


class TokenBucket:
    """``burst`` tokens at the start, ``qps`` more per second, never more than ``burst``.

    Kept as the equivalent virtual schedule (GCRA: a theoretical arrival time ``tat``): one
    number of state, no float drift from summing fractional tokens."""

    def __init__(self, qps: float, burst: int, now: float) -> None:
        if qps <= 0 or burst < 1:
            raise K8saiError(
                f"Submission limit qps={qps}, burst={burst}: need qps > 0, burst >= 1."
            )
        self._interval = 1 / qps
        self._tolerance = (burst - 1) * self._interval  # how far ahead of tat a send may be
        self._tat = now

    def available_at(self, t: float) -> float:
        """The earliest time >= ``t`` at which the next send conforms."""
        return max(t, self._tat - self._tolerance)

    def take(self, t: float) -> None:
        """Record a send at ``t``; idle time refills at most ``burst`` tokens (max())."""
        self._tat = max(self._tat, t) + self._interval


class Pacer:
    def __init__(
        self,
        qps: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cpu_clock: Callable[[], float] = time.process_time,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise K8saiError(f"Submission workers={workers}: need at least 1 sender.")
        self.qps, self.burst, self.workers = qps, burst, workers
        self._clock, self._sleep, self._cpu = clock, sleep, cpu_clock

    def _sleep_until(self, t: float) -> None:
        # Sleep may wake early (a signal, a coarse timer): loop until the clock says so.
        while (left := t - self._clock()) > 0:
            self._sleep(left)

    def run(
        self,
        offsets_s: Sequence[float],
        send: Callable[[int], None],
        stop: Callable[[], bool] | None = None,
    ) -> PacerReport:
        """Call ``send(i)`` for each offset, in order (offsets sorted, as plan.py gives them).
        ``stop()`` is asked before each send; True ends the run there (the report says so)."""
        if any(b < a for a, b in zip(offsets_s, offsets_s[1:], strict=False)):
            raise K8saiError("Submission offsets must be sorted; plan.py gives them in order.")
        start, cpu0 = self._clock(), self._cpu()
        limit = TokenBucket(self.qps, self.burst, start)  # on the real sends: enforces
        ideal = TokenBucket(self.qps, self.burst, start)  # on instant sends: defines lag
        sent: list[Sent] = []
        durations: list[float] = []
        errors: list[BaseException] = []
        free = threading.Semaphore(self.workers)
        pool = ThreadPoolExecutor(self.workers, "k8sai-submit") if self.workers > 1 else None

        def timed(i: int) -> None:
            t0 = self._clock()
            try:
                send(i)
            except BaseException as exc:  # raised again below, after the other sends end
                errors.append(exc)
            finally:
                durations.append(self._clock() - t0)  # list.append is atomic under the GIL
                free.release()

        complete = True
        try:
            for i, offset in enumerate(offsets_s):
                scheduled = start + offset
                ready = ideal.available_at(scheduled)
                ideal.take(ready)
                # Real sends are never earlier than ideal ones, so the real bucket is never
                # fuller than the ideal one: this wait ends at or after ready, and lag >= 0.
                self._sleep_until(limit.available_at(scheduled))
                if errors or (stop is not None and stop()):
                    complete = False
                    break
                free.acquire()  # waits while every worker is busy: that backlog is lag
                now = self._clock()
                limit.take(now)
                sent.append(Sent(i, offset, ready - start, now - start))
                if pool is None:
                    timed(i)
                else:
                    pool.submit(timed, i)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)  # the wall time below ends with the last response
        if errors:
            raise errors[0]
        wall = self._clock() - start
        cpu = self._cpu() - cpu0
        lags = [s.lag_s for s in sent]
        return PacerReport(
            sent=sent,
            wall_s=wall,
            submissions_per_s=len(sent) / wall if wall > 0 else float("nan"),
            lag_p50_s=stats.percentile(lags, 50),
            lag_p99_s=stats.percentile(lags, 99),
            lag_max_s=max(lags, default=float("nan")),
            cpu_busy_share=cpu / wall if wall > 0 else float("nan"),
            complete=complete,
            workers=self.workers,
            send_durations_s=durations,
        )
