"""Repetitions of an experiment made on first request and kept for the session, so that several
tests can check the same runs. Suites subclass it with what one run is."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from pytest_k8sai.core.errors import FailedEarlier

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class SessionRuns(Generic[K, R]):
    """``results[key]``: the runs made so far; a key whose run raised is failed for the session."""

    def __init__(self) -> None:
        self.results: dict[K, list[R]] = {}
        self.failed: dict[K, str] = {}

    def draw(self) -> None:
        """Redraw plots after each new run, so a crash keeps what was measured."""

    def runs_of(self, key: K, n: int, label: str, run: Callable[[int], R]) -> list[R]:
        """At least ``n`` runs of ``key``; ``run(number)`` makes one (numbered from 1)."""
        if key in self.failed:
            # Reported once; the other tests that need these runs do not rerun them.
            raise FailedEarlier(f"{label} failed earlier in this session: {self.failed[key]}")
        done = self.results.setdefault(key, [])
        while len(done) < n:
            try:
                done.append(run(len(done) + 1))
            except Exception as exc:
                self.failed[key] = f"{type(exc).__name__}: {exc}"
                raise
            self.draw()
        return done
