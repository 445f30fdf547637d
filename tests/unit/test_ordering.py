"""Ordering comparisons: Kendall tau-a over common items, first divergence."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from pytest_k8sai.measure.ordering import first_divergence, kendall_tau


def brute_tau(a: list[str], b: list[str]) -> float:
    common = [x for x in a if x in b]
    pos = {x: b.index(x) for x in common}
    pairs = list(itertools.combinations(common, 2))
    score = sum(1 if pos[x] < pos[y] else -1 for x, y in pairs)
    return score / len(pairs)


def test_identical_reversed_and_one_swap():
    a = ["a", "b", "c", "d"]
    assert kendall_tau(a, a) == 1.0
    assert kendall_tau(a, a[::-1]) == -1.0
    assert kendall_tau(a, ["b", "a", "c", "d"]) == pytest.approx(1 - 2 / 6)


def test_only_common_items_count():
    assert kendall_tau(["a", "x", "b", "c"], ["a", "b", "y", "c", "z"]) == 1.0
    assert kendall_tau(["c", "b", "a"], ["a", "b", "q"]) == -1.0


def test_duplicates_count_at_first_position():
    assert kendall_tau(["a", "b", "a"], ["a", "b"]) == 1.0


def test_fewer_than_two_common_items_is_nan():
    assert math.isnan(kendall_tau(["a"], ["a"]))
    assert math.isnan(kendall_tau(["a", "b"], ["c", "d"]))
    assert math.isnan(kendall_tau([], []))


def test_matches_brute_force_on_random_orders():
    rng = random.Random(7)
    for n in (2, 3, 7, 16, 33, 100):
        a = [f"j{i}" for i in range(n)]
        b = a[:]
        rng.shuffle(b)
        b = b[: max(2, n - 3)] + ["extra"]
        assert kendall_tau(a, b) == pytest.approx(brute_tau(a, b))


def test_large_input_is_fast_enough():
    a = [f"j{i:05d}" for i in range(10_000)]
    b = a[:]
    b[0], b[-1] = b[-1], b[0]  # the swap makes 2n - 3 discordant pairs
    n = len(a)
    assert kendall_tau(a, b) == pytest.approx(1 - 2 * (2 * n - 3) / (n * (n - 1) / 2))


def test_first_divergence():
    assert first_divergence(["a", "b", "c"], ["a", "b", "c"]) is None
    assert first_divergence(["a", "b", "c"], ["a", "c", "b"]) == 1
    assert first_divergence(["a", "b"], ["a", "b", "c"]) == 2
    assert first_divergence([], ["a"]) == 0
    assert first_divergence([], []) is None


def test_order_kept_across_groups_ignores_ties_within_a_group():
    from pytest_k8sai.measure.ordering import order_kept_across_groups

    group = {"a": "s1", "b": "s1", "c": "s2", "d": "s3"}
    # a/b swap inside second s1: allowed; everything across seconds is kept.
    assert order_kept_across_groups(["a", "b", "c", "d"], ["b", "a", "c", "d"], group) == (5, 5)
    # c and d swapped across seconds: one of five cross-group pairs differs.
    assert order_kept_across_groups(["a", "b", "c", "d"], ["a", "b", "d", "c"], group) == (5, 4)
    assert order_kept_across_groups(["a"], ["a"], group) == (0, 0)
