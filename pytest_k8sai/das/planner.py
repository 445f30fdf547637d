"""The best packing a job mix can get on N identical MIG GPUs (pure code, no cluster).

Each job asks for one MIG profile. A GPU can hold any set of non-overlapping placements from the
catalogue (``starts``/``size`` over its memory slices, at most ``max_per_gpu`` of a profile);
that is exactly the rule the MIG user guide states. The planner maximises the number of jobs
that run at once:

1. Per GPU, enumerate every feasible set of placements of the requested profiles and keep one
   placement per distinct count vector (how many of each profile). Feasibility is closed under
   removing an instance, so only vectors within the demand are kept.
2. Dynamic programming over the GPUs with state = remaining demand: best(g, rest) = max over a
   GPU's count vectors c <= rest of |c| + best(g - 1, rest - c). Exact; memoised on the
   remaining demand, so 32 jobs of two profiles on 8 GPUs visit at most 17 x 17 states per GPU.

Ties between equally good layouts are broken deterministically (the first vector in a fixed
order: more compute used first), so the same mix always gives the same layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from pytest_k8sai.das.mig_catalogue import CatalogueError, GpuModel, MigProfile


class PlacementError(CatalogueError):
    """A job mix that cannot run at all on the given GPUs."""


@dataclass(frozen=True)
class GpuLayout:
    """The MIG instances one GPU is cut into: (profile name, first memory slice) each."""

    instances: tuple[tuple[str, int], ...]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, _ in self.instances:
            out[name] = out.get(name, 0) + 1
        return out

    def describe(self) -> str:
        if not self.instances:
            return "(unused)"
        return " + ".join(f"{n}@{s}" for n, s in sorted(self.instances, key=lambda x: x[1]))


@dataclass(frozen=True)
class Plan:
    """The best packing of ``demand`` (profile -> jobs) on ``len(gpus)`` GPUs."""

    gpu_model: str
    demand: dict[str, int]
    gpus: tuple[GpuLayout, ...]

    @property
    def placed(self) -> dict[str, int]:
        out = dict.fromkeys(self.demand, 0)
        for g in self.gpus:
            for name, k in g.counts().items():
                out[name] += k
        return out

    @property
    def best_concurrency(self) -> int:
        return sum(self.placed.values())

    def slices_per_node(self, gpus_per_node: int) -> list[dict[str, int]]:
        """Per node (consecutive GPUs), profile -> slices: what the mixed strategy exposes."""
        nodes = []
        for i in range(0, len(self.gpus), gpus_per_node):
            counts: dict[str, int] = {}
            for g in self.gpus[i : i + gpus_per_node]:
                for name, k in g.counts().items():
                    counts[name] = counts.get(name, 0) + k
            nodes.append(counts)
        return nodes

    def describe(self) -> str:
        groups: dict[str, int] = {}
        for g in self.gpus:
            groups[g.describe()] = groups.get(g.describe(), 0) + 1
        return "; ".join(f"{k} x [{d}]" for d, k in groups.items())


def gpu_configurations(
    gpu: GpuModel, demand: Mapping[str, int]
) -> dict[tuple[int, ...], tuple[tuple[str, int], ...]]:
    """Count vector (in ``demand``'s order) -> one placement list, for every feasible set of
    placements of the demanded profiles on one GPU (the empty set included)."""
    names = list(demand)
    profiles: list[MigProfile] = [gpu.profile(n) for n in names]
    cands = [(i, s, p.size) for i, p in enumerate(profiles) for s in p.starts]
    limits = [
        min(demand[n], p.max_per_gpu if p.max_per_gpu is not None else demand[n])
        for n, p in zip(names, profiles, strict=True)
    ]
    found: dict[tuple[int, ...], tuple[tuple[str, int], ...]] = {}

    def walk(k: int, used: int, counts: list[int], chosen: list[tuple[str, int]]) -> None:
        key = tuple(counts)
        if key not in found:
            found[key] = tuple(chosen)
        for j in range(k, len(cands)):
            i, start, size = cands[j]
            mask = ((1 << size) - 1) << start
            if used & mask or counts[i] >= limits[i]:
                continue
            counts[i] += 1
            chosen.append((names[i], start))
            walk(j + 1, used | mask, counts, chosen)
            chosen.pop()
            counts[i] -= 1

    walk(0, 0, [0] * len(names), [])
    return found


def best_packing(gpu: GpuModel, n_gpus: int, demand: Mapping[str, int]) -> Plan:
    """The layout of ``n_gpus`` GPUs that runs the most of ``demand``'s jobs at once."""
    demand = {n: int(k) for n, k in demand.items() if k}
    if any(k < 0 for k in demand.values()):
        raise PlacementError(f"job mix {demand} has a negative job count")
    for name in demand:
        gpu.profile(name)  # an unknown profile is an error that lists the known ones
    if demand and n_gpus < 1:
        raise PlacementError(
            f"job mix {demand} cannot run at all: the cluster has no {gpu.model} GPU"
        )
    configs = gpu_configurations(gpu, demand)
    compute = [gpu.profile(n).compute for n in demand]
    # Fixed order: more jobs first, then more compute used, then the vector itself.
    order = sorted(
        configs,
        key=lambda c: (-sum(c), -sum(a * b for a, b in zip(c, compute, strict=True)), c),
    )

    @cache
    def best(g: int, rest: tuple[int, ...]) -> tuple[int, tuple[tuple[int, ...], ...]]:
        if g == 0 or not any(rest):
            return 0, ()
        top: tuple[int, tuple[tuple[int, ...], ...]] = (-1, ())
        for c in order:
            if any(a > b for a, b in zip(c, rest, strict=True)):
                continue
            sub, chosen = best(g - 1, tuple(b - a for a, b in zip(c, rest, strict=True)))
            if sum(c) + sub > top[0]:
                top = (sum(c) + sub, (c, *chosen))
        return top

    _, chosen = best(n_gpus, tuple(demand.values()))
    layouts = [GpuLayout(configs[c]) for c in chosen]
    layouts += [GpuLayout(())] * (n_gpus - len(layouts))
    return Plan(gpu_model=gpu.model, demand=dict(demand), gpus=tuple(layouts))


def whole_gpu_best(jobs: int, n_gpus: int) -> int:
    """Best concurrency when every job takes one whole GPU."""
    if jobs and n_gpus < 1:
        raise PlacementError(f"{jobs} whole-GPU jobs cannot run at all: the cluster has no GPU")
    return min(jobs, n_gpus)
