"""Compare two orderings of the same jobs, e.g. submission order against admission order.

``kendall_tau`` is tau over the items both lists share: (concordant - discordant) pairs divided
by all n(n-1)/2 pairs. Each list is a strict order (an item counts at its first position), so
there are no ties and scipy's tau-b equals tau-a here; scipy counts in O(n log n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as scipy_stats


def kendall_tau(a: Sequence[str], b: Sequence[str]) -> float:
    """Kendall's tau-a of ``a`` against ``b`` over their common items; NaN below two of them.

    1.0: same relative order; -1.0: exactly reversed; items found in only one list are ignored.
    """
    pos_b: dict[str, int] = {}
    for i, item in enumerate(b):
        pos_b.setdefault(item, i)
    seen: set[str] = set()
    ranks: list[int] = []  # b-position of each common item, in a's order
    for item in a:
        if item in pos_b and item not in seen:
            seen.add(item)
            ranks.append(pos_b[item])
    if len(ranks) < 2:
        return math.nan
    return float(scipy_stats.kendalltau(range(len(ranks)), ranks).statistic)


def first_divergence(a: Sequence[str], b: Sequence[str]) -> int | None:
    """Index of the first position where ``a`` and ``b`` differ; None if they are identical.

    When one list is a prefix of the other, the divergence is where the shorter one ends.
    """
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def order_kept_across_groups(
    a: Sequence[str], b: Sequence[str], group: dict[str, str]
) -> tuple[int, int]:
    """Pairs of common items from different groups (e.g. creation seconds) that ``a`` and
    ``b`` both order, and how many of those pairs they order the same way. Pairs within one
    group are left out: the order inside a group is not part of the contract being checked."""
    pos_b = {item: i for i, item in reversed(list(enumerate(b)))}
    common = [x for x in dict.fromkeys(a) if x in pos_b]
    compared = kept = 0
    for i, x in enumerate(common):
        for y in common[i + 1 :]:
            if group.get(x) == group.get(y):
                continue
            compared += 1
            kept += pos_b[x] < pos_b[y]
    return compared, kept
