"""Figures as JUnit XML test properties (pytest's ``--junitxml`` writes ``user_properties``):
``<property name="k8sai: FIGURE" value="measured=.. ms; threshold=<= ..; verdict=..; n=..;
source=.."/>``, so CI systems that read JUnit see every figure of a test."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pytest_k8sai.core.verdicts import Verdict, _num

PREFIX = "k8sai: "
_ADDED = pytest.StashKey[int]()


def property_value(v: Verdict) -> str:
    threshold = "-" if v.threshold is None else f"{v.op} {_num(v.threshold)} {v.unit}".rstrip()
    measured = f"{_num(v.measured)} {v.unit}".rstrip()
    return (
        f"measured={measured}; threshold={threshold}; verdict={v.verdict}; n={v.n}; "
        f"source={v.source}"
    )


def add_properties(item: pytest.Item, verdicts: Sequence[Verdict]) -> None:
    """Append the item's verdicts not yet added (called before each phase's report)."""
    mine = [v for v in verdicts if v.nodeid == item.nodeid]
    done = item.stash.get(_ADDED, 0)
    for v in mine[done:]:
        item.user_properties.append((PREFIX + v.figure, property_value(v)))
    item.stash[_ADDED] = len(mine)
