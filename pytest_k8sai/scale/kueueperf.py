"""Kueue's own scheduler performance test as a scenario: its generator config and its range
spec, read from the Kueue module the local tier builds from (never copied into this package),
so the ``scale-kueue-perf`` scenario follows whatever the pinned Kueue version ships.

Kueue's generator counts CPU on envtest; here each unit becomes one GPU on KWOK nodes, and the
node count is the smallest that holds the summed nominal quota.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from pytest_k8sai.clusters.local.build import load_components
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.yamlfiles import exists, load_model, read_yaml, validate
from pytest_k8sai.scale.scenario import (
    KUEUE_PERF,
    Nodes,
    ReclaimPolicy,
    Scenario,
    Submit,
    WithinQueuePolicy,
)

CONFIGS = Path("test", "performance", "scheduler", "configs")
# Kueue's `run-performance-scheduler-in-cluster` make target sets its client to --qps=1000
# --burst=2000 so its harness never binds; its baseline plans ~385 creates/s in the first 35 s.
# This 2-core machine's API server takes ~100/s with Kueue's webhook in the path, so the
# harness keeps the growth sizes' limit: its lag then measures the harness, and the limit only
# spreads the first minute's creates (Kueue admitted ~43/s in its own trial runs: 15,000 in
# ~351 s), while each workload's time to admission still starts at its creation.
KUEUE_PERF_SUBMIT = Submit(qps=100, burst=100, workers=16)
# Kueue's generator.go has these sections only in Topology-Aware Scheduling configs.
TAS_KEYS = ("topology", "resourceFlavor")


class _Kueue(BaseModel):
    # Kueue's camelCase keys; unknown ones (TAS's podCount, tasLevel, ...) are refused.
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel)


class _KWorkload(_Kueue):
    class_name: str
    runtime_ms: int = Field(ge=0)
    priority: int = 0
    request: int = Field(ge=1)  # a quantity string in Go ("1"); whole units only here


class _KWorkloadsSet(_Kueue):
    count: int
    creation_interval_ms: int
    workloads: list[_KWorkload]


class _KQueuesSet(_Kueue):
    class_name: str
    count: int
    nominal_quota: int
    borrowing_limit: int | None = None
    reclaim_within_cohort: ReclaimPolicy = "Never"
    within_cluster_queue: WithinQueuePolicy = "Never"
    workloads_sets: list[_KWorkloadsSet]

    # Go's zero value: an empty string means the field was not set.
    @field_validator("borrowing_limit", mode="before")
    @classmethod
    def _no_limit(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("reclaim_within_cohort", "within_cluster_queue", mode="before")
    @classmethod
    def _kueue_default(cls, value: object) -> object:
        return "Never" if value == "" else value  # Kueue's default policy


class _KCohortSet(_Kueue):
    class_name: str
    count: int
    queues_sets: list[_KQueuesSet]


class _KConfig(_Kueue):
    cohorts: list[_KCohortSet] = Field(min_length=1)


class _Cmd(_Kueue):
    max_wall_ms: int = Field(gt=0)


class RangeSpec(_Kueue):
    """Kueue's pass/fail limits for its baseline (checker/checker_test.go reads the same)."""

    cmd: _Cmd
    cluster_queue_classes_min_usage: dict[str, float] = Field(default_factory=dict)  # percent
    wl_classes_max_avg_time_to_admission_ms: dict[str, int] = Field(default_factory=dict)


def go_module_cache() -> Path:
    """``go env GOMODCACHE``; without Go, its documented default (GOPATH[0]/pkg/mod)."""
    go = shutil.which("go")
    if go:
        # GOTOOLCHAIN=local: a go.mod in the working directory must not start a download.
        env = {**os.environ, "GOTOOLCHAIN": "local"}
        try:
            out = subprocess.run(
                [go, "env", "GOMODCACHE"],
                capture_output=True,
                text=True,
                env=env,
                timeout=30,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out = ""  # fall back to the default below
        if out:
            return Path(out)
    if env_cache := os.environ.get("GOMODCACHE"):
        return Path(env_cache)
    gopath = os.environ.get("GOPATH", "").split(os.pathsep)[0] or str(Path.home() / "go")
    return Path(gopath) / "pkg" / "mod"


def escaped_module_path(module: str) -> str:
    """The module cache spells capitals as '!' + lower case (golang.org/x/mod/module)."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), module)


def kueue_config_path(file: str, config: str = "baseline") -> Path:
    """``configs/<config>/<file>`` of the Kueue module pinned in clusters/local/components.yaml;
    K8saiError saying how to get it when the module is not downloaded."""
    comp = load_components()["kueue"]
    module = f"{escaped_module_path(comp.module)}@{comp.version}"
    path = go_module_cache() / module / CONFIGS / config / file
    if not exists(path):
        raise K8saiError(
            f"The {KUEUE_PERF} scenario reads Kueue's own {file} at {path}, but it is absent: "
            f"the Go module cache holds no {comp.module}@{comp.version} (the version pinned in "
            "clusters/local/components.yaml). Build the local tier once, or run `go mod "
            f"download {comp.module}@{comp.version}`, and retry."
        )
    return path


def kueue_generator_path(config: str = "baseline") -> Path:
    return kueue_config_path("generator.yaml", config)


def kueue_rangespec_path(config: str = "baseline") -> Path:
    return kueue_config_path("rangespec.yaml", config)


def load_rangespec(path: Path) -> RangeSpec:
    return load_model(path, RangeSpec, "Kueue range spec", K8saiError)


def _cohort_set(k: _KCohortSet) -> dict[str, Any]:
    """Kueue's spelling to ours, as plain data, so Scenario's validators check the result."""
    return {
        "class_name": k.class_name,
        "count": k.count,
        "queue_sets": [
            {
                "class_name": q.class_name,
                "count": q.count,
                "nominal_quota": q.nominal_quota,
                "borrowing_limit": q.borrowing_limit,
                "reclaim_within_cohort": q.reclaim_within_cohort,
                "within_cluster_queue": q.within_cluster_queue,
                "workload_sets": [
                    {
                        "count": w.count,
                        "creation_interval_ms": w.creation_interval_ms,
                        "workloads": [wl.model_dump() for wl in w.workloads],
                    }
                    for w in q.workloads_sets
                ],
            }
            for q in k.queues_sets
        ],
    }


def from_kueue_generator(
    path: Path,
    *,
    name: str = KUEUE_PERF,
    gpus_per_node: int = 8,
    submit: Submit = KUEUE_PERF_SUBMIT,
    target_wall_s: float | None = None,
) -> Scenario:
    """A Scenario from a Kueue generator.yaml. Without ``target_wall_s`` the budget is the
    ``cmd.maxWallMs`` of the rangespec.yaml beside it (Kueue's own limit for the run)."""
    source = f"Kueue generator config {path}"
    data = read_yaml(path, "Kueue generator config", K8saiError)
    if isinstance(data, dict) and (tas := [k for k in TAS_KEYS if k in data]):
        raise K8saiError(
            f"{source} is a Topology-Aware Scheduling config (it has {', '.join(tas)}); the "
            "scale tier converts only configs without topology, like configs/baseline."
        )
    config = validate(data, _KConfig, source, K8saiError, expects="with a 'cohorts' list")
    cohorts = [_cohort_set(k) for k in config.cohorts]
    if target_wall_s is None:
        spec_path = path.parent / "rangespec.yaml"
        if not exists(spec_path):
            raise K8saiError(
                f"{source}: no rangespec.yaml beside it to take the time budget from "
                "(cmd.maxWallMs); pass target_wall_s."
            )
        target_wall_s = load_rangespec(spec_path).cmd.max_wall_ms / 1000
    quota = sum(
        c["count"] * sum(q["count"] * q["nominal_quota"] for q in c["queue_sets"]) for c in cohorts
    )
    data_out = {
        "name": name,
        "description": f"Kueue's scheduler performance generator config {path}, in GPUs",
        "target_wall_s": target_wall_s,
        # The fewest nodes that hold every ClusterQueue's nominal quota.
        "nodes": Nodes(count=max(1, math.ceil(quota / gpus_per_node)), gpus_per_node=gpus_per_node),
        "submit": submit,
        "cohorts": cohorts,
    }
    return validate(data_out, Scenario, f"{source} (converted)", K8saiError)


def kueue_perf_scenario(config: str = "baseline") -> Scenario:
    """The ``scale-kueue-perf`` built-in: Kueue's baseline, read from the pinned module."""
    return from_kueue_generator(kueue_generator_path(config))
