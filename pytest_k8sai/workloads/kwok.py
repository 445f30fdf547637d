"""Annotations that tell KWOK how a simulated pod behaves (stages from kwok's pod/general set).

KWOK's Stage delay returns the jitter whenever jitter <= duration, and the default jitter is
5 s, so a delay alone would come out as about 5 s: every delay here sets both annotations.
"""

from __future__ import annotations

# Pods carrying these tolerate the KWOK node taint and may run there.
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}


def _exact(stage: str, ms: int) -> dict[str, str]:
    value = f"{ms}ms"
    return {
        f"{stage}.stage.kwok.x-k8s.io/delay": value,
        f"{stage}.stage.kwok.x-k8s.io/jitter-delay": value,
    }


def run_for(seconds: float) -> dict[str, str]:
    """Pod annotations: start at once, be Ready at once, complete after ``seconds``."""
    if seconds < 0:
        raise ValueError(f"a pod cannot run for a negative time ({seconds} s)")
    return {
        **_exact("pod-create", 0),
        **_exact("pod-ready", 0),
        **_exact("pod-complete", round(seconds * 1000)),
    }
