"""The GPU slicing suite sized to the cluster it finds, not the paper's 8 A100-40GB: how many
jobs the limited experiment runs, and what the paper's concurrency count stands for."""

from __future__ import annotations

from pytest_k8sai.core.profiles import Profile

# Paper Table 6: the planner's best packing of the full trace (16 x 1g.5gb + 16 x 3g.20gb) on
# 8 A100-40GB is 28 jobs at once; DAS reached 25. tables.PAPER cites it from here.
PAPER_BEST_FULL = 28


def limited_per_model(profile: Profile, models: int) -> int:
    """Jobs per model in the limited experiment (paper Table 5: every job runs at once on
    whole GPUs): the profile's count, or fewer so that each job gets a whole GPU of its own."""
    fits = profile.total_gpus // models
    return max(1, min(profile.das_suite.limited_jobs_per_model, fits))


def concurrency_threshold(profile: Profile, best: int) -> tuple[float, str]:
    """``das_concurrency_min`` stands for the paper's 25 of a best of 28 on 8 A100-40GB. On a
    cluster whose planner's best differs (fewer GPUs, another product) it scales with that best,
    so a 4-GPU cluster that packs its own best fully passes. The threshold, and a note for the
    verdict's source ("" when unscaled)."""
    paper_best = PAPER_BEST_FULL
    if best == paper_best or best <= 0:
        return profile.slo.das_concurrency_min, ""
    scaled = profile.slo.das_concurrency_min * best / paper_best
    return scaled, (
        f"; threshold {profile.slo.das_concurrency_min:g} x best {best} / paper best "
        f"{paper_best} = {scaled:.1f}"
    )
