"""A scale scenario as data: nodes, the submission rate, and cohorts of ClusterQueues with the
workloads each one receives, in the shape of Kueue's scheduler performance generator
(test/performance/scheduler/configs/*/generator.yaml), so Kueue's own baseline converts 1:1.

Quotas and requests are whole GPUs (``nvidia.com/gpu`` on the KWOK nodes); Kueue's generator
uses CPU, which is why :mod:`pytest_k8sai.scale.kueueperf` converts rather than reads as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.yamlfiles import exists, load_model, printable

SCENARIO_DIR = data_file("scale", "scenarios")
# Not a file of ours: read from the downloaded Kueue module at run time (kueueperf.py).
KUEUE_PERF = "scale-kueue-perf"

# Class names end up in object names (ClusterQueues, cohorts, Jobs): a DNS label, kept short so
# the longest generated name stays within 63 characters (plan.py checks the real length).
ClassName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=20)]
# Kueue v1beta2's enums (apis/kueue/v1beta2/clusterqueue_types.go): a typo fails here, not as a
# rejected ClusterQueue minutes into a run.
ReclaimPolicy = Literal["Never", "LowerPriority", "Any"]
WithinQueuePolicy = Literal["Never", "LowerPriority", "LowerOrNewerEqualPriority"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Nodes(_Model):
    count: int = Field(ge=1)
    gpus_per_node: int = Field(default=8, ge=1)

    @property
    def gpus(self) -> int:
        return self.count * self.gpus_per_node


class Submit(_Model):
    """The harness's own limit: a token bucket of ``burst`` tokens refilled at ``qps``."""

    qps: float = Field(gt=0)
    burst: int = Field(ge=1)
    # Concurrent senders: creates go through Kueue's webhook (~30 ms each on 2 cores), so one
    # sender cannot keep up with a burst; more than the API server's cores mostly queue.
    workers: int = Field(default=8, ge=1, le=64)


class WorkloadTemplate(_Model):
    class_name: ClassName
    runtime_ms: int = Field(ge=0)
    priority: int = 0
    request: int = Field(ge=1)  # GPUs


class WorkloadSet(_Model):
    """``count`` rounds; each round creates every template once, one per interval."""

    count: int = Field(ge=1)
    creation_interval_ms: int = Field(ge=0)
    workloads: list[WorkloadTemplate] = Field(min_length=1)

    @property
    def size(self) -> int:
        return self.count * len(self.workloads)


class QueueSet(_Model):
    """``count`` identical ClusterQueues in each cohort of the enclosing cohort set."""

    class_name: ClassName
    count: int = Field(ge=1)
    nominal_quota: int = Field(ge=0)  # GPUs
    borrowing_limit: int | None = Field(default=None, ge=0)  # None: may borrow all the cohort's
    reclaim_within_cohort: ReclaimPolicy = "Never"
    within_cluster_queue: WithinQueuePolicy = "Never"
    workload_sets: list[WorkloadSet] = Field(min_length=1)

    @model_validator(mode="after")
    def _requests_fit_own_limit(self) -> QueueSet:
        # A workload larger than its queue can ever hold stays pending forever, and the run
        # would end at its time budget instead of with a figure.
        if self.borrowing_limit is None:
            return self  # bounded by the cohort instead: CohortSet checks that
        cap = self.nominal_quota + self.borrowing_limit
        for i, ws in enumerate(self.workload_sets):
            for j, wl in enumerate(ws.workloads):
                if wl.request > cap:
                    raise ValueError(
                        f"workload_sets.{i}.workloads.{j} (class '{wl.class_name}') requests "
                        f"{wl.request} GPUs, more than nominal_quota + borrowing_limit = {cap}"
                    )
        return self


class CohortSet(_Model):
    """``count`` identical cohorts, each holding every queue set."""

    class_name: ClassName
    count: int = Field(ge=1)
    queue_sets: list[QueueSet] = Field(min_length=1)

    @property
    def quota_per_cohort(self) -> int:
        return sum(qs.count * qs.nominal_quota for qs in self.queue_sets)

    @model_validator(mode="after")
    def _requests_fit_cohort(self) -> CohortSet:
        cap = self.quota_per_cohort
        for i, qs in enumerate(self.queue_sets):
            biggest = max(wl.request for ws in qs.workload_sets for wl in ws.workloads)
            if biggest > cap:
                raise ValueError(
                    f"queue_sets.{i} has a workload of {biggest} GPUs, more than the "
                    f"{cap} GPUs of nominal quota in the whole cohort"
                )
        return self


class Scenario(_Model):
    name: ClassName
    description: str = ""
    target_wall_s: float = Field(gt=0)  # the run's budget, setup to last admission
    nodes: Nodes
    submit: Submit
    cohorts: list[CohortSet] = Field(min_length=1)

    @property
    def quota_gpus(self) -> int:
        return sum(cs.count * cs.quota_per_cohort for cs in self.cohorts)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        # Cohort names are "<class_name>-<index>" as in Kueue's generator, so two cohort sets
        # of one class would merge their cohorts and reuse ClusterQueue names.
        names = [cs.class_name for cs in self.cohorts]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"cohorts repeat class_name {dup}; each cohort set needs its own")
        # Quota beyond the nodes' GPUs admits workloads whose pods then wait for a node, so the
        # run would time kube-scheduler's backlog instead of Kueue's admission.
        if self.quota_gpus > self.nodes.gpus:
            raise ValueError(
                f"the ClusterQueues' nominal quotas sum to {self.quota_gpus} GPUs, more than the "
                f"{self.nodes.gpus} GPUs of nodes.count x nodes.gpus_per_node"
            )
        return self


def builtin_names() -> list[str]:
    return sorted([*(p.stem for p in SCENARIO_DIR.glob("*.yaml")), KUEUE_PERF])


def load_scenario(spec: str | Path) -> Scenario:
    """A built-in scenario by name (``scale-small``, ``scale-kueue-perf``) or a YAML file."""
    text = str(spec)
    if text == KUEUE_PERF:
        # Imported here: kueueperf builds on this module's models.
        from pytest_k8sai.scale import kueueperf

        return kueueperf.kueue_perf_scenario()
    path = Path(text)
    if text in builtin_names():
        path = SCENARIO_DIR / f"{text}.yaml"
    elif not (path.suffix in (".yaml", ".yml") or exists(path)):
        raise K8saiError(
            f"Scale scenario '{printable(text)}': no built-in scenario of that name (known: "
            f"{', '.join(builtin_names())}) and no such YAML file."
        )
    return load_model(
        path,
        Scenario,
        "Scale scenario",
        K8saiError,
        expects="with 'name', 'target_wall_s', 'nodes', 'submit' and 'cohorts'",
    )
