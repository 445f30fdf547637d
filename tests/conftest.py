"""The project's own tests are all part of the PR tier: ``pytest -m pr`` selects them with the
suites' PR checks. (Marked as each is collected, so ``-m`` sees the mark.)"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_itemcollected(item: pytest.Item) -> None:
    if HERE in item.path.parents:
        item.add_marker(pytest.mark.pr)
