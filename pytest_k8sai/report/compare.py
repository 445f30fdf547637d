"""Tonight against a baseline: per figure, the change, a significance test and a verdict.

The rule, for a figure whose raw samples exist on both sides (at least ``min_samples`` each):

- runs: each side's samples are split into the runs they came from. A baseline results file
  is one run; tonight is one run. Where a figure's samples came from several experiment runs
  inside one results file and the figure records their sizes (``sample_runs``: consecutive
  groups of ``samples``), each group is a run;
- statistic: the one the figure reports (``Figure.statistic``: median, P95, P99, mean ...;
  median when unset), computed on each side's samples (all runs together);
- test: a hierarchical (two-stage) percentile bootstrap confidence interval (level
  ``1 - alpha``) of the difference tonight - baseline of that statistic. Each resample of a
  side draws its runs with replacement, then, within every drawn run, as many samples as
  that run has, with replacement, and computes the statistic over them. Samples of one run
  share that run's conditions (machine load, cluster start, cache state), so they are not
  independent draws: pooling them as if they were made the interval too narrow, and a change
  that lies within the run-to-run spread was flagged. A side with one run has a trivial first
  stage: its resamples are the plain bootstrap of its samples. The Mann-Whitney U p-value
  (two-sided) is reported beside the interval as a check of a shift of the whole
  distribution; it treats all samples as independent, so with several runs per side it is
  optimistic and the verdict never uses it;
- verdict: REGRESSION when the interval lies wholly on the worse side of zero (worse: higher
  for figures held with ``<=``/``<``, lower for ``>=``/``>``) and the change exceeds the
  profile's ``regression.tolerance_pct``; IMPROVEMENT the same way round; SAME otherwise.
  Both conditions are needed: significance alone flags tiny real changes of huge samples,
  the tolerance alone flags noise.

The first stage can only see run-to-run spread on a side with several runs. With one run
tonight, the interval holds the baseline's run-to-run uncertainty but not tonight's own, so a
night whose run lands beyond the baseline runs' spread can still be flagged.

Figures without enough samples (e.g. one makespan per run) are UNTESTED: the change is shown
and never judged. Figures only tonight are NEW; only in the baseline, MISSING.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


def _masked_statistic(values: np.ndarray, valid: np.ndarray, name: str | None) -> np.ndarray:
    """``statistic`` of each row of ``values`` over the positions where ``valid`` holds.

    Rows of a two-stage resample differ in length (runs of different sizes are drawn), so the
    draws sit in a rectangle padded to the longest run and the padding is masked out. The
    quantiles interpolate linearly between order statistics, as ``np.percentile`` does."""
    name = name or "median"
    masked = np.where(valid, values, np.nan)
    if name == "mean":
        return np.nanmean(masked, axis=1)
    if name == "min":
        return np.nanmin(masked, axis=1)
    if name == "max":
        return np.nanmax(masked, axis=1)
    if name not in _QUANTILE:
        raise ValueError(f"unknown statistic {name!r}")
    ordered = np.sort(masked, axis=1)  # NaN (padding) sorts last
    count = valid.sum(axis=1)
    pos = _QUANTILE[name] / 100 * (count - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, count - 1)
    low = np.take_along_axis(ordered, lo[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, hi[:, None], axis=1)[:, 0]
    return low + (high - low) * (pos - lo)


def _resampled(
    values: np.ndarray, name: str | None, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` bootstrap statistics of one run's samples (the plain one-stage bootstrap)."""
    n = values.size
    per_chunk = max(1, _CHUNK_VALUES // n)
    out = []
    while count > 0:
        k = min(count, per_chunk)
        idx = rng.integers(0, n, size=(k, n))
        out.append(statistic(values[idx], name, axis=1))
        count -= k
    return np.concatenate(out)


def _resampled_runs(
    runs: Sequence[np.ndarray], name: str | None, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` two-stage bootstrap statistics: runs with replacement, then samples within
    each drawn run (as many as it has), then the statistic over all drawn samples."""
    if len(runs) == 1:
        # The first stage can only draw this run: the plain bootstrap, with the same draws as
        # before the rule was hierarchical, so one-run comparisons keep their numbers.
        return _resampled(runs[0], name, count, rng)
    sizes = np.array([r.size for r in runs], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    values = np.concatenate(runs)
    n_runs, width = sizes.size, int(sizes.max())
    same_size = bool((sizes == width).all())
    per_chunk = max(1, _CHUNK_VALUES // (n_runs * width))
    out = []
    while count > 0:
        k = min(count, per_chunk)
        chosen = rng.integers(0, n_runs, size=(k, n_runs))  # stage 1: runs
        chosen_n = sizes[chosen][..., None]
        # Stage 2: within each drawn run, indices below its own size (high broadcasts).
        within = rng.integers(0, chosen_n, size=(k, n_runs, width))
        drawn = values[starts[chosen][..., None] + within].reshape(k, n_runs * width)
        if same_size:
            out.append(statistic(drawn, name, axis=1))
        else:
            valid = (np.arange(width) < chosen_n).reshape(k, n_runs * width)
            out.append(_masked_statistic(drawn, valid, name))
        count -= k
    return np.concatenate(out)


def hierarchical_diff_ci(
    baseline_runs: Sequence[Sequence[float]],
    current_runs: Sequence[Sequence[float]],
    name: str | None = "median",
    *,
    alpha: float = 0.05,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Two-stage percentile bootstrap CI (level 1 - alpha) of statistic(current) -
    statistic(baseline), each side given as its runs' samples (see the module's rule)."""
    rng = np.random.default_rng(seed)
    b = [np.asarray(r, dtype=float) for r in baseline_runs if len(r)]
    c = [np.asarray(r, dtype=float) for r in current_runs if len(r)]
    if not b or not c:
        raise ValueError("each side needs at least one run with samples")
    diffs = _resampled_runs(c, name, resamples, rng) - _resampled_runs(b, name, resamples, rng)
    lo, hi = np.percentile(diffs, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def bootstrap_diff_ci(
    baseline: Sequence[float],
    current: Sequence[float],
    name: str | None = "median",
    *,
    alpha: float = 0.05,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of statistic(current) - statistic(baseline), every sample taken
    as independent (one run per side). This was the rule for pooled baselines; kept for
    one-run sides and to show how much narrower pooling makes the interval."""
    return hierarchical_diff_ci(
        [baseline], [current], name, alpha=alpha, resamples=resamples, seed=seed
    )


def runs_of(figure: Figure) -> tuple[list[np.ndarray], str]:
    """The figure's finite samples split into its runs, and a note when a recorded grouping
    could not be used. One run unless the figure records ``sample_runs`` (sizes of
    consecutive groups of ``samples``) that add up to its samples."""
    samples = np.asarray(figure.samples or [], dtype=float)
    # getattr: the results file's Figure may not carry the grouping (older files, or before
    # the suites record it); a Verdict does.
    sizes = getattr(figure, "sample_runs", None)
    note = ""
    groups = [samples]
    if sizes:
        if all(s > 0 for s in sizes) and sum(sizes) == samples.size:
            groups = np.split(samples, np.cumsum(sizes)[:-1])
        else:
            note = (
                f"{figure.figure}: sample_runs {list(sizes)} do not split its "
                f"{samples.size} samples; taken as one run"
            )
    runs = [g[np.isfinite(g)] for g in groups]
    return [r for r in runs if r.size], note


def _pct(base: float, cur: float) -> float | None:
    if base == 0:
        return None if cur == 0 else math.copysign(math.inf, cur)
    return (cur - base) / abs(base) * 100


def compare_figure(
    current: Figure, baselines: Sequence[Figure], policy: Regression
) -> FigureChange:
    """Judge one figure of tonight against the same figure in every baseline run."""
    name = current.statistic or "median"
    base_runs: list[np.ndarray] = []
    notes: list[str] = []
    for f in baselines:
        runs, note = runs_of(f)
        base_runs += runs
        notes += [note] if note else []
    cur_runs, note = runs_of(current)
    notes += [note] if note else []
    base_samples = np.concatenate(base_runs) if base_runs else np.empty(0)
    cur_samples = np.concatenate(cur_runs) if cur_runs else np.empty(0)
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
    lo, hi = hierarchical_diff_ci(
        base_runs,
        cur_runs,
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
    why += f" (runs: baseline {len(base_runs)}, tonight {len(cur_runs)})"
    if notes:
        why += "; " + "; ".join(notes)
    return FigureChange(
        **common,
        verdict=verdict,
        baseline=base,
        current=cur,
        change_pct=change,
        baseline_n=int(base_samples.size),
        current_n=int(cur_samples.size),
        test=f"hierarchical bootstrap of the {name} difference: runs, then samples within "
        f"runs ({len(base_runs)} baseline, {len(cur_runs)} tonight; "
        f"{policy.bootstrap_resamples} resamples); Mann-Whitney U over samples taken as "
        "independent",
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
                if not f.invalid:  # a figure a fault spoiled is no baseline
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
        if current.invalid:
            return None  # shown as INVALID with its reason; no comparison can be made
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
