"""What the paper measured for each SLO field (core/paper_values.yaml), shown beside a tier's
own threshold in every verdict, so a calibrated local bound is always read against the paper."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.profiles import Slo
from pytest_k8sai.core.yamlfiles import read_yaml, validate


class PaperValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    where: str = Field(min_length=1)  # the paper's table, figure or section


@cache
def paper_values() -> dict[str, PaperValue]:
    """slo field -> what the paper measured for it, in the field's unit."""
    path = data_file("core", "paper_values.yaml")
    data = read_yaml(path, "Paper values")
    if not isinstance(data, dict):
        raise K8saiError(f"Paper values {path} must be a mapping of slo field -> value/where.")
    out = {k: validate(v, PaperValue, f"Paper values {path}, entry '{k}'") for k, v in data.items()}
    unknown = sorted(set(out) - set(Slo.model_fields))
    if unknown:
        raise K8saiError(f"Paper values {path} name fields Slo does not have: {unknown}.")
    return out


def paper_numbers() -> dict[str, float]:
    return {k: v.value for k, v in paper_values().items()}
