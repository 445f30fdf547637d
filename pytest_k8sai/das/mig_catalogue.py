"""The MIG catalogue: per GPU model, its GPU instance profiles and their valid placements.

The data is ``catalogue.yaml`` next to this module (its header cites NVIDIA's MIG user guide).
Lookups of an unknown GPU product or MIG profile raise an error that lists the known ones.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.yamlfiles import load_model

CATALOGUE_PATH = data_file("das", "mig_catalogue.yaml")
# How the GPU operator's device plugin names a MIG profile in the mixed strategy.
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"


class CatalogueError(K8saiError):
    """A GPU product or MIG profile the catalogue does not know, or a bad catalogue file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MigProfile(_Strict):
    """One GPU instance profile: its share of the GPU and where it may be placed."""

    name: str = Field(pattern=r"^\dg\.\d+gb(\+me)?$")
    compute: int = Field(ge=1, description="compute slices (of the GPU's compute_slices)")
    memory_gb: int = Field(ge=1)
    starts: list[int] = Field(min_length=1, description="allowed first memory slice indices")
    size: int = Field(ge=1, description="memory slices occupied")
    max_per_gpu: int | None = Field(None, ge=1)

    @property
    def resource(self) -> str:
        return MIG_RESOURCE_PREFIX + self.name


class GpuModel(_Strict):
    model: str
    products: list[str] = Field(min_length=1)
    memory_slices: int = Field(ge=1, le=64)
    compute_slices: int = Field(ge=1)
    profiles: list[MigProfile] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> GpuModel:
        names = [p.name for p in self.profiles]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.model}: a profile name appears twice in {names}")
        for p in self.profiles:
            if p.compute > self.compute_slices:
                raise ValueError(f"{self.model} {p.name}: compute {p.compute} > compute_slices")
            bad = [s for s in p.starts if s < 0 or s + p.size > self.memory_slices]
            if bad:
                raise ValueError(
                    f"{self.model} {p.name}: starts {bad} + size {p.size} leave the "
                    f"{self.memory_slices} memory slices"
                )
        return self

    def profile(self, name: str) -> MigProfile:
        for p in self.profiles:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.profiles)
        raise CatalogueError(
            f"MIG profile '{name}' does not exist on {self.model} GPUs "
            f"({', '.join(self.products)}); known profiles: {known}."
        )


class Catalogue(_Strict):
    source: str
    gpus: list[GpuModel] = Field(min_length=1)

    def gpu(self, product: str) -> GpuModel:
        """The GPU model whose node label value (nvidia.com/gpu.product) is ``product``."""
        for g in self.gpus:
            if product in g.products or product == g.model:
                return g
        known = "; ".join(f"{g.model}: {', '.join(g.products)}" for g in self.gpus)
        raise CatalogueError(
            f"GPU product '{product}' is not in the MIG catalogue ({CATALOGUE_PATH}); "
            f"known products: {known}."
        )


@cache
def load_catalogue(path: Path = CATALOGUE_PATH) -> Catalogue:
    return load_model(path, Catalogue, "MIG catalogue", CatalogueError)
