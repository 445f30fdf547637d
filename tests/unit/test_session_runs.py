"""SessionRuns: runs made on first request, kept, and a failed key failed once for the session."""

from __future__ import annotations

import pytest

from pytest_k8sai.core.errors import FailedEarlier
from pytest_k8sai.core.session_runs import SessionRuns


class Counting(SessionRuns[str, int]):
    def __init__(self) -> None:
        super().__init__()
        self.draws = 0

    def draw(self) -> None:
        self.draws += 1


def test_runs_are_made_once_and_numbered_from_one():
    s = Counting()
    made: list[int] = []

    def run(number: int) -> int:
        made.append(number)
        return number * 10

    assert s.runs_of("a", 2, "setup 'a'", run) == [10, 20]
    assert s.runs_of("a", 2, "setup 'a'", run) == [10, 20]  # kept, not rerun
    assert s.runs_of("a", 3, "setup 'a'", run) == [10, 20, 30]  # only the missing one
    assert made == [1, 2, 3] and s.draws == 3


def test_a_failed_key_fails_later_requests_without_rerunning():
    s = Counting()
    calls = 0

    def boom(number: int) -> int:
        nonlocal calls
        calls += 1
        raise RuntimeError("cluster gone")

    with pytest.raises(RuntimeError):
        s.runs_of("b", 1, "setup 'b'", boom)
    with pytest.raises(FailedEarlier, match="setup 'b' failed earlier .*cluster gone"):
        s.runs_of("b", 1, "setup 'b'", boom)
    assert calls == 1 and s.draws == 0 and s.failed == {"b": "RuntimeError: cluster gone"}
