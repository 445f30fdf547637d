"""A run's time budget: the scenario's target wall time times a factor, from one start.

Every phase (nodes Ready, submission, drain) asks the same budget, so a slow phase leaves less
to the next instead of each getting its own timeout, and a run that exceeds its budget stops
at a known point and says which phase it was in.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pytest_k8sai.core.errors import K8saiError

DEFAULT_FACTOR = 1.5  # the targets already hold slack; 1.5 separates "slow" from "stuck"


class Budget:
    def __init__(
        self,
        target_s: float,
        factor: float = DEFAULT_FACTOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (target_s > 0 and factor > 0):
            raise K8saiError(
                f"Scale budget: target wall time {target_s:g} s x factor {factor:g} must be > 0."
            )
        self.limit_s = target_s * factor
        self._clock = clock
        self.start = clock()
        self.phase = "start"  # the phase in progress, named in a report when time runs out
        self.expired_in: str | None = None  # the phase the budget ran out in

    def enter(self, phase: str) -> None:
        self.phase = phase

    def elapsed(self) -> float:
        return self._clock() - self.start

    def remaining(self) -> float:
        return max(0.0, self.limit_s - self.elapsed())

    def expired(self) -> bool:
        """True once the limit is passed; remembers the phase it happened in."""
        if self.elapsed() >= self.limit_s:
            if self.expired_in is None:
                self.expired_in = self.phase
            return True
        return False
