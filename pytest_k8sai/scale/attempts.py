"""Kueue's admission attempts during one scale run, from the same two sources the Kueue suite
reads (kueue/log.py, kueue/runs.py): exact durations from the manager's level-2 log, and this
run's increase of its histogram. Where a source is missing or unusable the figures say why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.kueue.log import KueueLog, parse_attempts
from pytest_k8sai.kueue.runs import (
    AttemptScrape,
    attempt_histogram_share,
    scrape_attempt_histogram,
)
from pytest_k8sai.measure import prometheus, stats
from pytest_k8sai.scale.results import AttemptFigures

QUANTILES = (50, 95, 99)


def _ms(x: float) -> float | None:
    return round(x * 1000, 3) if math.isfinite(x) else None


def attempt_figures(
    exact_s: Sequence[float] | None,
    hist: prometheus.Histogram | None,
    invalid: Sequence[str] = (),
) -> AttemptFigures:
    """Percentiles of the exact durations (seconds) and of the histogram share. Pure."""
    f = AttemptFigures(invalid=[w for w in invalid if w])
    if exact_s:
        f.exact_n = len(exact_s)
        f.exact_p50_ms, f.exact_p95_ms, f.exact_p99_ms = (
            _ms(stats.percentile(list(exact_s), q)) for q in QUANTILES
        )
        f.exact_max_ms = _ms(max(exact_s))
    if hist is not None and hist.count > 0:
        f.hist_n = int(hist.count)
        f.hist_p50_ms, f.hist_p95_ms, f.hist_p99_ms = (
            _ms(hist.quantile(q / 100)) for q in QUANTILES
        )
        f.hist_buckets = [
            (None if math.isinf(le) else round(le * 1000, 3), c) for le, c in hist.buckets
        ]
    return f


class AttemptWindow:
    """Marks the log and scrapes the histogram at ``open()``; ``close(namespace)`` reads what
    happened since, for the cycles that took a Workload of ``namespace``."""

    def __init__(self, cluster: ClusterHandle) -> None:
        self._cluster = cluster
        logs = cluster.endpoints.get("logs")
        self._log = KueueLog(Path(logs) / "kueue.log") if logs else None
        self._mark = 0
        self._before: AttemptScrape | None = None
        self._invalid: list[str] = []

    def _scrape(self) -> AttemptScrape | None:
        try:
            return scrape_attempt_histogram(self._cluster)
        except ClusterError as exc:
            self._invalid.append(f"histogram: Kueue's /metrics unreachable: {exc}")
            return None

    def open(self) -> AttemptWindow:
        if self._log is not None:
            self._mark = self._log.mark()
        self._before = self._scrape()
        return self

    def close(self, namespace: str) -> AttemptFigures:
        exact: list[float] | None = None
        if self._log is None:
            self._invalid.append("exact: no Kueue log on this cluster (local tier only)")
        else:
            lines = self._log.lines_since(self._mark)
            exact = [a.duration_s for a in parse_attempts(lines, namespace)]
        hist, why = attempt_histogram_share(self._before, self._scrape())
        if "kueue_metrics" not in self._cluster.endpoints:
            self._invalid.append("histogram: no Kueue metrics endpoint on this cluster")
        return attempt_figures(exact, hist, [*self._invalid, why])
