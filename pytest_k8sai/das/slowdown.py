"""How much slower a Whisper job runs on a MIG slice than on a whole GPU, fitted to the paper.

Paper Table 5 ran 8 jobs (4 medium on 1g.5gb, 4 large on 3g.20gb, none waiting) on whole GPUs
and on slices. Its text gives mean / median / P95 job completion time: 14 / 10 / 36 min
without MIG and 17 / 13 / 40 min with it. The per-job times are not published, so the fit
uses this project's Whisper trace (workloads/whisper_trace.yaml): the first 4 jobs of each model
in the DAS creation order (medium-0, large-0, ..., large-3). Whole-GPU times are the trace's
``exec_seconds``; on a slice a job takes ``exec_seconds * slowdown[profile]``. The fit picks the
pair of factors (grid, step 0.001, in [1, 2.5]) minimising the squared log-errors of the three
ratios slice/whole for mean, median and P95 against the paper's (17/14, 13/10, 40/36): ratios,
because the trace's 8 jobs only approximate the paper's 8 (their whole-GPU mean / median / P95
are 13.9 / 8.3 / 34.3 min against the paper's 14 / 10 / 36). Only the local tier uses the
factors; on a real cluster the job runs at whatever speed its slice gives it.

``fixtures/make_mig_slowdown.py`` runs the fit and writes ``das/mig_slowdown.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.yamlfiles import load_model
from pytest_k8sai.workloads.whisper import WhisperJob

SLOWDOWN_PATH = data_file("das", "mig_slowdown.yaml")
# Paper Table 5 (minutes), the figures its text quotes.
PAPER_TABLE5 = {
    "whole": {"mean": 14.0, "median": 10.0, "p95": 36.0},
    "slice": {"mean": 17.0, "median": 13.0, "p95": 40.0},
}
GRID = np.round(np.arange(1.0, 2.5005, 0.001), 3)


class Slowdown(BaseModel):
    """Per MIG profile, run time on that slice / run time on a whole GPU; and the fit's record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    profile_of_model: dict[str, str]
    factors: dict[str, float]  # MIG profile -> factor (> 0)
    fitted_jobs: list[str]
    # statistic -> {"paper": ratio, "fit": ratio}
    ratios: dict[str, dict[str, float]] = Field(default_factory=dict)

    def factor(self, profile: str) -> float:
        if profile not in self.factors:
            raise K8saiError(
                f"No fitted slowdown for MIG profile '{profile}' in {SLOWDOWN_PATH} (known: "
                f"{', '.join(self.factors)}); the local tier needs one to simulate a job on it."
            )
        return self.factors[profile]


def _stats(x: np.ndarray) -> np.ndarray:
    """mean, median, P95 along the last axis (P95 interpolated linearly, as numpy's default)."""
    return np.stack([x.mean(-1), np.median(x, -1), np.percentile(x, 95, axis=-1)], -1)


def fit(jobs: Sequence[WhisperJob], profile_of_model: Mapping[str, str]) -> tuple[dict, dict]:
    """Fit one factor per profile (exactly two profiles) to Table 5's ratios; return the
    factors and, per statistic, the paper's ratio and the fitted one."""
    profiles = list(dict.fromkeys(profile_of_model[j.model] for j in jobs))
    if len(profiles) != 2:
        raise ValueError(f"the fit needs jobs on exactly two profiles, got {profiles}")
    whole = np.array([j.exec_seconds for j in jobs])
    first = np.array([profile_of_model[j.model] == profiles[0] for j in jobs])
    whole_paper, slice_paper = PAPER_TABLE5["whole"], PAPER_TABLE5["slice"]
    paper = np.array([slice_paper[k] / whole_paper[k] for k in whole_paper])
    base = _stats(whole)
    best = (np.inf, 0.0, 0.0)
    for a in GRID:
        # Every b for this a at once: rows are candidate b, columns jobs.
        sliced = whole * np.where(first, a, GRID[:, None])
        err = (np.log(_stats(sliced) / base) - np.log(paper)) ** 2
        total = err.sum(-1)
        i = int(total.argmin())
        if total[i] < best[0]:
            best = (float(total[i]), float(a), float(GRID[i]))
    factors = {profiles[0]: best[1], profiles[1]: best[2]}
    got = _stats(whole * np.where(first, best[1], best[2])) / base
    ratios = {
        k: {"paper": round(float(p), 4), "fit": round(float(g), 4)}
        for k, p, g in zip(PAPER_TABLE5["whole"], paper, got, strict=True)
    }
    return factors, ratios


def load_slowdown(path: Path = SLOWDOWN_PATH) -> Slowdown:
    return load_model(path, Slowdown, "MIG slowdown")
