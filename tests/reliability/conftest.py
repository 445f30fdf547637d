"""Shared by the fault-injection tests: local tier only, and one JSON line per run's figures
in ``<results dir>/faults.jsonl`` (the side-by-side table of docs/reliability.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _local_tier_only(k8sai_profile):
    if k8sai_profile.provider != "local" or k8sai_profile.real_nodes:
        pytest.skip("fault injection needs the local tier's own processes (--cluster=local)")


@pytest.fixture(scope="session")
def fault_log(k8sai_results_dir: Path) -> Callable[[dict[str, Any]], None]:
    path = k8sai_results_dir / "faults.jsonl"

    def write(figures: dict[str, Any]) -> None:
        with path.open("a") as fh:
            fh.write(json.dumps(figures) + "\n")
        print(json.dumps(figures, indent=1))

    return write
