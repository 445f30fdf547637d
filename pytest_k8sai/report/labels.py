"""Which suite and which setup a test belongs to: for verdicts, results files and Allure
(each suite an epic, each setup a feature)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

SETUP_PARAM = "setup"


def suite_of(nodeid: str) -> str:
    """``suites/kueue/test_x.py::t`` -> ``kueue``; outside ``suites/``: the test file's folder
    (``tests``), or the module name for a file at the root."""
    parts = PurePosixPath(nodeid.split("::", 1)[0]).parts
    if "suites" in parts[:-1]:
        i = parts.index("suites")
        if i + 1 < len(parts) - 1:
            return parts[i + 1]
    if len(parts) > 1:
        return parts[-2]
    return PurePosixPath(parts[0]).stem if parts else ""


def setup_of(item: pytest.Item) -> str:
    """The id of the test's ``setup`` parameter (the suites parametrize over setups by that
    name), else ""."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or SETUP_PARAM not in callspec.params:
        return ""
    value = callspec.params[SETUP_PARAM]
    return str(getattr(value, "name", value))


def feature_of(item: pytest.Item) -> str:
    """Allure feature: the setup, or the test module for tests that span setups."""
    return setup_of(item) or PurePosixPath(item.nodeid.split("::", 1)[0]).stem
