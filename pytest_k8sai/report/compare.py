"""Tonight against a baseline: per figure, the change, a significance test and a verdict.

The rule, for a figure whose raw samples exist on both sides (at least ``min_samples`` each):

- statistic: the one the figure reports (``Figure.statistic``: median, P95, P99, mean ...;
  median when unset), computed on tonight's samples and on the baseline's samples pooled over
  every baseline run;
- test: a percentile bootstrap confidence interval (level ``1 - alpha``) of the difference
  tonight - baseline of that statistic, both samples resampled independently with a seeded
  generator; the Mann-Whitney U p-value (two-sided) is reported beside it as a check of a
  shift of the whole distribution;
- verdict: REGRESSION when the interval lies wholly on the worse side of zero (worse: higher
  for figures held with ``<=``/``<``, lower for ``>=``/``>``) and the change exceeds the
  profile's ``regression.tolerance_pct``; IMPROVEMENT the same way round; SAME otherwise.
  Both conditions are needed: significance alone flags tiny real changes of huge samples,
  the tolerance alone flags noise.

Figures without enough samples (e.g. one makespan per run) are UNTESTED: the change is shown
and never judged. Figures only tonight are NEW; only in the baseline, MISSING.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from pytest_k8sai.core.profiles import Regression
from pytest_k8sai.measure.stats import mann_whitney_u
from pytest_k8sai.report.baseline import Baseline
from pytest_k8sai.report.results import Comparison, Figure, FigureChange

_QUANTILE = {"median": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}
# Bootstrap arrays are built in chunks of about this many values to bound memory.
_CHUNK_VALUES = 4_000_000


def statistic(values: np.ndarray, name: str | None, axis: int | None = None) -> np.ndarray:
    """The named summary along ``axis`` (numpy's linear percentiles, as measure.stats)."""
    name = name or "median"
    if name in _QUANTILE:
        return np.percentile(values, _QUANTILE[name], axis=axis)
    if name == "mean":
        return np.mean(values, axis=axis)
    if name == "min":
        return np.min(values, axis=axis)
    if name == "max":
        return np.max(values, axis=axis)
    raise ValueError(f"unknown statistic {name!r}")


def _resampled(
    values: np.ndarray, name: str | None, count: int, rng: np.random.Generator
) -> np.ndarray:
    n = values.size
    per_chunk = max(1, _CHUNK_VALUES // n)
    out = []
    while count > 0:
        k = min(count, per_chunk)
        idx = rng.integers(0, n, size=(k, n))
        out.append(statistic(values[idx], name, axis=1))
        count -= k
    return np.concatenate(out)


def bootstrap_diff_ci(
    baseline: Sequence[float],
    current: Sequence[float],
    name: str | None = "median",
    *,
    alpha: float = 0.05,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI (level 1 - alpha) of statistic(current) - statistic(baseline)."""
    rng = np.random.default_rng(seed)
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    diffs = _resampled(c, name, resamples, rng) - _resampled(b, name, resamples, rng)
    lo, hi = np.percentile(diffs, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def _pct(base: float, cur: float) -> float | None:
    if base == 0:
        return None if cur == 0 else math.copysign(math.inf, cur)
    return (cur - base) / abs(base) * 100


def _finite(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    return arr[np.isfinite(arr)]


def compare_figure(
    current: Figure, baselines: Sequence[Figure], policy: Regression
) -> FigureChange:
    """Judge one figure of tonight against the same figure in every baseline run."""
    name = current.statistic or "median"
    base_samples = _finite(s for f in baselines for s in (f.samples or []))
    cur_samples = _finite(current.samples or [])
    enough = min(base_samples.size, cur_samples.size) >= policy.min_samples and all(
        f.samples for f in baselines
    )
    common = {"figure": current.figure, "unit": current.unit, "statistic": name}
    if not enough:
        base = float(np.median([f.measured for f in baselines]))
        b_n = base_samples.size or sum(f.n for f in baselines)
        c_n = cur_samples.size or current.n
        return FigureChange(
            **common,
            verdict="UNTESTED",
            baseline=base,
            current=current.measured,
            change_pct=_pct(base, current.measured),
            baseline_n=b_n,
            current_n=c_n,
            test="none",
            why=f"raw samples: baseline {base_samples.size}, tonight {cur_samples.size}; a "
            f"test needs >= {policy.min_samples} on each side (regression.min_samples)",
        )
    base = float(statistic(base_samples, name))
    cur = float(statistic(cur_samples, name))
    lo, hi = bootstrap_diff_ci(
        base_samples,
        cur_samples,
        name,
        alpha=policy.alpha,
        resamples=policy.bootstrap_resamples,
        seed=policy.seed,
    )
    p = mann_whitney_u(cur_samples, base_samples).p_value
    change = _pct(base, cur)
    lower = current.lower_is_better
    worse_sig = lo > 0 if lower else hi < 0
    better_sig = hi < 0 if lower else lo > 0
    worse_pct = (change if lower else -change) if change is not None else 0.0
    tol = policy.tolerance_pct
    level = f"{(1 - policy.alpha) * 100:g} %"
    if worse_sig and worse_pct > tol:
        verdict, why = "REGRESSION", f"worse by {abs(worse_pct):.1f} % > {tol:g} %, {level} CI"
    elif better_sig and -worse_pct > tol:
        verdict, why = "IMPROVEMENT", f"better by {abs(worse_pct):.1f} % > {tol:g} %, {level} CI"
    elif worse_sig or better_sig:
        verdict, why = "SAME", f"significant but within tolerance {tol:g} %"
    else:
        verdict, why = "SAME", f"{level} CI of the difference includes 0"
    return FigureChange(
        **common,
        verdict=verdict,
        baseline=base,
        current=cur,
        change_pct=change,
        baseline_n=int(base_samples.size),
        current_n=int(cur_samples.size),
        test=f"bootstrap {name} difference ({policy.bootstrap_resamples} resamples); "
        "Mann-Whitney U",
        p_value=p,
        diff_ci=(lo, hi),
        why=why,
    )


class Comparer:
    """Compares figures as they are recorded (so results.json holds the comparison so far)
    and, at the end, lists the baseline's figures that did not come back."""

    def __init__(self, baseline: Baseline, policy: Regression) -> None:
        self.policy = policy
        self.by_figure: dict[str, list[Figure]] = {}
        for run in baseline.runs:
            for f in run.figures:
                self.by_figure.setdefault(f.figure, []).append(f)
        self.comparison = Comparison(
            baseline_files=[str(p) for p in baseline.files],
            baseline_run_ids=[r.run_id for r in baseline.runs],
            tolerance_pct=policy.tolerance_pct,
            alpha=policy.alpha,
            min_samples=policy.min_samples,
            bootstrap_resamples=policy.bootstrap_resamples,
            errors=list(baseline.errors),
        )
        self._seen: set[str] = set()

    @property
    def usable(self) -> bool:
        return bool(self.comparison.baseline_files)

    def add(self, current: Figure) -> FigureChange | None:
        if not self.usable:
            return None
        self._seen.add(current.figure)
        found = self.by_figure.get(current.figure)
        if not found:
            change = FigureChange(
                figure=current.figure,
                unit=current.unit,
                verdict="NEW",
                baseline=None,
                current=current.measured,
                change_pct=None,
                current_n=current.n,
                statistic=current.statistic or "median",
                why="not in the baseline",
            )
        else:
            change = compare_figure(current, found, self.policy)
        self.comparison.changes.append(change)
        return change

    def finish(self) -> None:
        if not self.usable:
            return
        for name, figs in self.by_figure.items():
            if name not in self._seen:
                self.comparison.changes.append(
                    FigureChange(
                        figure=name,
                        unit=figs[0].unit,
                        verdict="MISSING",
                        baseline=float(np.median([f.measured for f in figs])),
                        current=None,
                        change_pct=None,
                        baseline_n=sum(f.n for f in figs),
                        why="in the baseline, not measured tonight (deselected or failed early)",
                    )
                )
        self._seen.update(self.by_figure)

    @property
    def regressions(self) -> list[FigureChange]:
        return [c for c in self.comparison.changes if c.verdict == "REGRESSION"]
