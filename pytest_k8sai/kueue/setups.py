"""Kueue queueing setups as data (kueue/setups.yaml) and the objects they become.

A setup names its ClusterQueues as shares of the cluster's GPUs, which LocalQueue each model's
jobs go to, and which models get a WorkloadPriorityClass. ``plan`` turns a setup into concrete
objects for one run, and fails before anything is created if the setup cannot fit the GPUs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_k8sai.core import mutants
from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import K8saiError, ProfileError
from pytest_k8sai.core.yamlfiles import read_yaml, validate
from pytest_k8sai.kueue import objects as kueue

SETUPS_FILE = data_file("kueue", "setups.yaml")
GPU = "nvidia.com/gpu"
Model = Literal["medium", "large"]


class CQDecl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    share: float = Field(gt=0, le=1)
    cohort: str | None = None
    preemption: dict[str, Any] | None = None


class Setup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    title: str
    kueue: bool = True
    queueing_strategy: Literal["BestEffortFIFO", "StrictFIFO"] = "BestEffortFIFO"
    cluster_queues: list[CQDecl] = Field(default_factory=list)
    local_queues: dict[Model, str] = Field(default_factory=dict)
    priorities: dict[Model, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Setup:
        if not self.kueue:
            if self.cluster_queues or self.local_queues or self.priorities:
                raise ValueError("a setup with kueue: false takes no queues or priorities")
            return self
        declared = {c.name for c in self.cluster_queues}
        if not declared:
            raise ValueError("a Kueue setup needs at least one cluster_queues entry")
        if set(self.local_queues) != {"medium", "large"}:
            raise ValueError("local_queues must map both 'medium' and 'large' to a ClusterQueue")
        unknown = set(self.local_queues.values()) - declared
        if unknown:
            raise ValueError(f"local_queues point at undeclared ClusterQueues {sorted(unknown)}")
        return self


class SetupsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    setups: list[Setup]


def load_setups(path: Path = SETUPS_FILE) -> list[Setup]:
    """The setups of ``path``, with the active mutant's ``kueue_setups`` overlays applied."""
    data = read_yaml(path, "Kueue setups file", ProfileError)
    source = f"Kueue setups file {path}"
    overlays = mutants.changes().kueue_setups
    if overlays and isinstance(data, dict) and isinstance(data.get("setups"), list):
        data = mutated_setups(data, overlays)
        source += f" with {mutants.where('kueue_setups')}"
    return validate(data, SetupsFile, source, ProfileError).setups


ALL_KUEUE_SETUPS = "*"


def mutated_setups(data: dict[str, Any], overlays: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each overlay deep-merged onto the setup of its name (``*``: every setup that uses
    Kueue, applied first); ``cluster_queues`` entries are matched by name."""
    setups = [s for s in data["setups"] if isinstance(s, dict)]
    mutants.overlay_names(
        overlays, [ALL_KUEUE_SETUPS, *(str(s.get("name")) for s in setups)], "kueue_setups"
    )
    out = []
    for setup in data["setups"]:
        if isinstance(setup, dict):
            if setup.get("kueue", True) and ALL_KUEUE_SETUPS in overlays:
                setup = mutants.deep_merge(setup, overlays[ALL_KUEUE_SETUPS])
            if setup.get("name") in overlays:
                setup = mutants.deep_merge(setup, overlays[str(setup["name"])])
        out.append(setup)
    return {**data, "setups": out}


class Planned(BaseModel):
    """The objects of one run of a setup, in creation order."""

    cluster_objects: list[tuple[dict[str, Any], str]]  # (body, plural)
    local_queues: list[dict[str, Any]]
    queue_of: dict[str, str]  # model -> LocalQueue name ("" when not using Kueue)
    priority_class_of: dict[str, str]  # model -> WorkloadPriorityClass name
    cluster_queue_names: list[str]


def plan(setup: Setup, namespace: str, total_gpus: int, resource: str = GPU) -> Planned:
    """Concrete objects for a run in ``namespace``; K8saiError if quotas cannot be whole GPUs."""
    if total_gpus < 1:
        raise K8saiError(
            f"Kueue setup '{setup.name}' needs GPUs, but the profile's cluster has "
            f"{total_gpus} (capabilities.gpu_nodes.count x gpus_per_node)."
        )
    if not setup.kueue:
        return Planned(
            cluster_objects=[],
            local_queues=[],
            queue_of={},
            priority_class_of={},
            cluster_queue_names=[],
        )
    flavor = f"{namespace}-gpu"
    objs: list[tuple[dict[str, Any], str]] = [(kueue.resource_flavor(flavor), "resourceflavors")]
    cq_names = {}
    for cq in setup.cluster_queues:
        quota = cq.share * total_gpus
        if quota < 1 or abs(quota - round(quota)) > 1e-9:
            raise K8saiError(
                f"Kueue setup '{setup.name}': ClusterQueue '{cq.name}' gets share {cq.share} of "
                f"{total_gpus} GPUs = {quota:g}, which is not a whole number of GPUs >= 1. Change "
                "its share in kueue/setups.yaml or the profile's GPU count."
            )
        spec = kueue.ClusterQueueSpec(
            name=f"{namespace}-{cq.name}",
            flavor=flavor,
            quotas=[kueue.Quota(name=resource, nominal=str(round(quota)))],
            queueing_strategy=setup.queueing_strategy,
            cohort=f"{namespace}-{cq.cohort}" if cq.cohort else None,
            namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            preemption=cq.preemption,
        )
        cq_names[cq.name] = spec.name
        objs.append((spec.body(), "clusterqueues"))
    priority_class_of = {}
    for model, value in setup.priorities.items():
        name = f"{namespace}-{model}"
        priority_class_of[model] = name
        objs.append((kueue.workload_priority_class(name, value), "workloadpriorityclasses"))
    lqs = [
        kueue.local_queue(model, namespace, cq_names[cq])
        for model, cq in setup.local_queues.items()
    ]
    return Planned(
        cluster_objects=objs,
        local_queues=lqs,
        queue_of={m: m for m in setup.local_queues},
        priority_class_of=priority_class_of,
        cluster_queue_names=list(cq_names.values()),
    )
