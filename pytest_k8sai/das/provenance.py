"""Whose slices a run measures: the suite's own (a layout it wrote, a slowdown it fitted) or a
real component's (DAS, an existing MIG cluster). A figure that the suite's own inputs fix is
reported as a model check there, never judged; where real parts decide it, it is a verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pytest_k8sai.core.profiles import Profile

# Why a figure is not judged where the slices are the suite's own (``Verdict.model_check``).
FITTED_SLOWDOWN = "slowdown factors fitted on these {n} jobs (Table 5, das/mig_slowdown.yaml)"
FITTED_SLOWDOWN_OTHER = (
    "slowdown factors fitted to Table 5 on the trace's jobs {jobs} (das/mig_slowdown.yaml)"
)
OWN_LAYOUT = "slice layout = the planner's best, written by this suite"
OWN_LAYOUT_AND_QUOTA = "slice layout and Kueue quota = the planner's best, written by this suite"
OWN_GAIN = (
    "slices run the fitted slowdown on the planner's best layout: from those inputs alone, "
    "with no scheduling delay, the gain is {predicted:.3f}; kube-scheduler's part is judged "
    "by the wait-with-a-free-slice verdict"
)
HELD_OUT = "prediction from the Table 5 fit + trace, no cluster; Table 6 was not fitted"


def own_slices(profile: Profile) -> bool:
    """True where the suite makes the slices itself, so their count and speed are its inputs.

    The condition is ``profile.simulated`` alone, the same one ``das.runs.run_arm`` uses to
    add KWOK slice nodes with the planner's layout and to run each sliced pod for
    ``exec_seconds x`` the fitted slowdown. ``capabilities.das`` does not enter: a simulated
    profile that claims DAS still gets the suite's layout and slowdown for its sliced arm; the
    real DAS (local tier with ``capabilities.das``) runs a third arm beside it
    (``runs.local_das``), whose placement DAS decides. Off the simulated
    tier the slices are real: DAS slices just in time, or an existing MIG cluster has its own
    layout, and jobs run at whatever speed their slice gives them.
    """
    return profile.simulated


def slowdown_reason(profile: Profile, measured_jobs: Iterable[str], fitted_jobs: list[str]) -> str:
    """``model_check`` for a slice/whole JCT ratio: empty (a verdict) where slices are real."""
    if not own_slices(profile):
        return ""
    names = list(measured_jobs)
    if sorted(names) == sorted(fitted_jobs):
        return FITTED_SLOWDOWN.format(n=len(names))
    return FITTED_SLOWDOWN_OTHER.format(jobs=", ".join(fitted_jobs))


def layout_reason(
    profile: Profile,
    offered: Iterable[Mapping[str, int] | None],
    planned: Mapping[str, int],
    *,
    kueue: bool = False,
) -> str:
    """``model_check`` for peak concurrency and packing: empty where a real layout decides.

    ``offered``: per run, the slices the nodes offered (resource -> count; None: not read);
    ``planned``: the planner's best. Only a layout equal to the planner's best makes
    "peak / best" the suite's own input; any other layout (an existing cluster's, or a
    mutant's fragmented one on the local tier) is measured, so the figure is a verdict."""
    if not own_slices(profile):
        return ""
    if any(o is not None and dict(o) != dict(planned) for o in offered):
        return ""
    return OWN_LAYOUT_AND_QUOTA if kueue else OWN_LAYOUT


def gain_reason(profile: Profile, predicted_gain: float) -> str:
    """``model_check`` for the full trace's mean JCT gain (why: ``docs/suites/das.md``)."""
    return OWN_GAIN.format(predicted=predicted_gain) if own_slices(profile) else ""
