"""Deferred and immediate status changes of the run's Workloads (finish after the run time,
give an evicted Workload's quota back), on a few worker threads, so the watch thread that
produces them never waits for an API call.

:class:`DueQueue` is the pure part (what is due when); :class:`Finisher` runs it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
MAX_WAIT_S = 1.0


class DueQueue(Generic[T]):
    """Items ordered by their due time; ties keep insertion order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()

    def push(self, due: float, item: T) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), item))

    def pop_due(self, now: float) -> T | None:
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)[2]
        return None

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


class Finisher(Generic[T]):
    """``submit(due, item)``; ``handle(item)`` runs on a worker once ``due`` is reached.
    Exceptions from ``handle`` are counted and the last few kept (a failed patch is a finding
    for the report, not a reason to stop the run)."""

    def __init__(
        self,
        handle: Callable[[T], None],
        workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handle, self._clock = handle, clock
        self._queue: DueQueue[T] = DueQueue()
        self._cond = threading.Condition()
        self._stop = False
        self.done = 0
        self.failed = 0
        self.errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._loop, name=f"k8sai-scale-finisher-{i}", daemon=True)
            for i in range(workers)
        ]
        for th in self._threads:
            th.start()

    def submit(self, due: float, item: T) -> None:
        with self._cond:
            self._queue.push(due, item)
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stop:
                        return
                    item = self._queue.pop_due(self._clock())
                    if item is not None:
                        break
                    nxt = self._queue.next_due()
                    # Capped: a far due time must not overflow the wait, and an injected
                    # clock need not run at the speed of the real one.
                    wait = None if nxt is None else min(MAX_WAIT_S, max(0.0, nxt - self._clock()))
                    self._cond.wait(wait)
            try:
                self._handle(item)
                ok = True
            except Exception as exc:  # reported, not raised: see the class docstring
                ok = False
                msg = f"{type(exc).__name__}: {str(exc)[:200]}"
            with self._cond:
                if ok:
                    self.done += 1
                else:
                    self.failed += 1
                    self.errors = [*self.errors[-9:], msg]

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for th in self._threads:
            th.join(timeout_s)
