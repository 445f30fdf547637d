"""Scrape a Prometheus text endpoint and read histograms from it.

A histogram quantile here is what PromQL's histogram_quantile computes: a linear interpolation
inside the bucket the quantile falls in. With Kueue's default buckets (5, 10, 25 ms, ...) that is
an estimate, so every figure taken from it says so in its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import urllib3
from prometheus_client.parser import text_string_to_metric_families

from pytest_k8sai.core.errors import ClusterError


def scrape(
    url: str, *, token: str | None = None, ca_file: str | None = None, timeout_s: float = 5.0
) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    pool = urllib3.PoolManager(
        ca_certs=ca_file, retries=False, timeout=urllib3.Timeout(total=timeout_s)
    )
    try:
        resp = pool.request("GET", url, headers=headers)
    except urllib3.exceptions.HTTPError as exc:
        raise ClusterError(f"Cannot scrape metrics at {url}: {exc}") from None
    if resp.status != 200:
        raise ClusterError(
            f"Scraping metrics at {url} returned HTTP {resp.status}: "
            f"{resp.data[:200].decode(errors='replace')}"
        )
    return str(resp.data.decode())


@dataclass(frozen=True)
class Histogram:
    """Cumulative buckets summed over every series that matched."""

    name: str
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), +Inf last
    count: float
    sum: float

    def minus(self, earlier: Histogram) -> Histogram:
        """What was observed between two scrapes of the same cumulative histogram."""
        before = dict(earlier.buckets)
        buckets = tuple((le, c - before.get(le, 0.0)) for le, c in self.buckets)
        return Histogram(self.name, buckets, self.count - earlier.count, self.sum - earlier.sum)

    def plus(self, other: Histogram) -> Histogram:
        """Two disjoint observation windows as one histogram (same bucket bounds)."""
        theirs = dict(other.buckets)
        buckets = tuple((le, c + theirs.get(le, 0.0)) for le, c in self.buckets)
        return Histogram(self.name, buckets, self.count + other.count, self.sum + other.sum)

    def quantile(self, q: float) -> float:
        """histogram_quantile(q): NaN without samples; the highest finite bound if in +Inf."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        if self.count == 0:
            return math.nan
        rank = q * self.count
        prev_bound, prev_count = 0.0, 0.0
        for bound, cum in self.buckets:
            if cum >= rank:
                if math.isinf(bound):
                    return prev_bound
                if cum == prev_count:
                    return bound
                return prev_bound + (bound - prev_bound) * (rank - prev_count) / (cum - prev_count)
            prev_bound, prev_count = bound, cum
        return prev_bound


def histogram(text: str, name: str, **labels: str) -> Histogram:
    """Sum the histogram ``name`` over all series whose labels include ``labels``."""
    buckets: dict[float, float] = {}
    count = total = 0.0
    found = False
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        found = True
        for s in family.samples:
            if any(s.labels.get(k) != v for k, v in labels.items()):
                continue
            if s.name.endswith("_bucket"):
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
            elif s.name.endswith("_count"):
                count += s.value
            elif s.name.endswith("_sum"):
                total += s.value
    if not found:
        raise KeyError(f"metric {name} not exposed")
    return Histogram(name, tuple(sorted(buckets.items())), count, total)


def gauge(text: str, name: str) -> float | None:
    """The first sample of the gauge ``name`` (e.g. ``process_start_time_seconds``: a change
    between two scrapes means the process restarted and its counters began again)."""
    for family in text_string_to_metric_families(text):
        if family.name == name and family.samples:
            return float(family.samples[0].value)
    return None
