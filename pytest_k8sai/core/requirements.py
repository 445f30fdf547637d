"""``@pytest.mark.requires(...)``: which capabilities a test needs, and why it is skipped."""

from __future__ import annotations

import pytest

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.profiles import REQUIREMENTS, Profile

# The profile field behind each requirement name, quoted in skip reasons so users know what to set.
CAPABILITY_FIELD = {
    "gpu": "capabilities.gpu_nodes.count > 0",
    "mig": "capabilities.mig.enabled",
    "kueue": "capabilities.kueue",
    "das": "capabilities.das",
    "inference_gateway": "capabilities.inference_gateway",
}


def requirements_of(item: pytest.Item) -> list[str]:
    """All names in the item's requires marks; an unknown name is an error naming the test."""
    names: list[str] = []
    for mark in item.iter_markers(name="requires"):
        if not mark.args or mark.kwargs:
            raise K8saiError(
                f"{item.nodeid}: @pytest.mark.requires needs one or more requirement names as "
                f"positional arguments; known names: {', '.join(REQUIREMENTS)}."
            )
        for name in mark.args:
            if name not in REQUIREMENTS:
                raise K8saiError(
                    f"{item.nodeid}: @pytest.mark.requires({name!r}) names an unknown "
                    f"requirement; known names: {', '.join(REQUIREMENTS)}."
                )
            if name not in names:
                names.append(name)
    return names


def skip_reason(profile: Profile, requirements: list[str]) -> str | None:
    lacking = [r for r in requirements if profile.lacks(r)]
    if not lacking:
        return None
    what = ", ".join(f"{r} ({CAPABILITY_FIELD[r]})" for r in lacking)
    return f"profile '{profile.name}' lacks {what}"
