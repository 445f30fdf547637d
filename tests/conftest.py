"""The project's own tests are all part of the PR tier: ``pytest -m pr`` selects them with the
suites' PR checks (marked as each is collected, so ``-m`` sees the mark). The
reliability tests under reliability/ are marked ``reliability`` instead: a CI step of their
own (``make reliability``)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


RELIABILITY = HERE / "reliability"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "reliability: faults, interrupts, concurrent runs and timeouts on the local tier "
        "(make reliability)",
    )


def pytest_itemcollected(item: pytest.Item) -> None:
    # These kill and freeze the control plane and run whole sessions: a CI step of their own.
    if RELIABILITY in item.path.parents:
        item.add_marker(pytest.mark.reliability)
    elif HERE in item.path.parents:
        item.add_marker(pytest.mark.pr)
