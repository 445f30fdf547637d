"""Per-session state the plugin computes once and the fixtures read (kept on ``config.stash``)."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_k8sai.errors import K8saiError
from pytest_k8sai.profiles import Profile
from pytest_k8sai.report.tables import TableLog
from pytest_k8sai.verdicts import VerdictLog


@dataclass
class RunState:
    profile: Profile
    run_id: str
    results_dir: Path
    kubeconfig: str | None
    context: str | None
    keep_cluster: bool
    verdicts: VerdictLog
    tables: TableLog
    # Lines for the end-of-run summary (kept kubeconfig, where logs went, cleanup problems).
    notes: list[str] = field(default_factory=list)


STATE = pytest.StashKey[RunState]()


def get_state(config: pytest.Config) -> RunState:
    try:
        return config.stash[STATE]
    except KeyError:
        raise pytest.UsageError(
            "pytest-k8sai fixtures were requested but the k8sai plugin did not configure this "
            "session; load it with '-p pytest_k8sai.plugin' or install the pytest-k8sai package."
        ) from None


def new_run_id() -> str:
    """UTC timestamp plus a short random suffix; also a valid Kubernetes label value."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def check_results_dir(path: Path, flag: str = "--results-dir") -> None:
    """Fail early (without creating anything) if results could not be written under ``path``."""
    if path.exists():
        if not path.is_dir():
            raise K8saiError(f"{flag}={path}: exists but is not a directory.")
        target = path
    else:
        target = path.parent
        while not target.exists():
            target = target.parent
        if not target.is_dir():
            raise K8saiError(
                f"{flag}={path}: cannot create it because {target} is a file, not a directory."
            )
    if not os.access(target, os.W_OK | os.X_OK):
        raise K8saiError(
            f"{flag}={path}: {target} is not writable; choose another directory with {flag}."
        )
