"""The program's requirement files and this project's notes per requirement id.

A requirement file is the CNCF Kubernetes AI Conformance checklist for one Kubernetes minor
version (``AIConformance-1.NN.yaml``, the layout of cncf/k8s-ai-conformance ``docs/``):
``metadata`` (vendor and platform fields) and ``spec`` (category -> requirements, each with
id, description, level, status, evidence, notes). The files for 1.33-1.36 ship with the
package; a newer one (1.37 adds ``workload_sandboxing``) is given by path
(``--aic-requirements``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.yamlfiles import load_model

Level = Literal["MUST", "SHOULD"]
# The statuses the program's validator accepts (cncf/k8s-ai-conformance scripts/validate.go).
STATUSES = ("Implemented", "Partially Implemented", "Not Implemented", "N/A")
FILE_PATTERN = "AIConformance-{version}.yaml"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


class AicError(K8saiError):
    """A requirement file, a marker id or the checklist's destination cannot be used."""


class Requirement(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    description: str = ""
    level: Level
    status: str = ""
    evidence: list[str] = Field(default_factory=list)
    notes: str = ""


class RequirementFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    metadata: dict[str, str]
    spec: dict[str, list[Requirement]]

    @property
    def version(self) -> str:
        """ "1.36" from metadata.kubernetesVersion ("v1.36")."""
        return minor_version(self.metadata.get("kubernetesVersion", ""))

    def ids(self) -> list[str]:
        return [r.id for reqs in self.spec.values() for r in reqs]


class IdNotes(BaseModel):
    """What this project knows about one id (ids.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime_dependent: bool
    upstream_test: str = ""
    attest: str


def minor_version(text: str) -> str:
    """ "1.36" from "v1.36", "v1.36.0" or "1.36.2+k3s1"; "" when it is not a version."""
    m = _VERSION.match(text.strip())
    return f"{m.group(1)}.{m.group(2)}" if m else ""


def packaged_versions() -> list[str]:
    found = sorted(
        (p.name.removeprefix("AIConformance-").removesuffix(".yaml"))
        for p in data_file("report", "aic").glob(FILE_PATTERN.format(version="*"))
    )
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split(".")))


def load_file(path: Path) -> RequirementFile:
    doc = load_model(path, RequirementFile, "AI conformance requirement file", AicError)
    if not doc.version:
        raise AicError(
            f"AI conformance requirement file {path}: field 'metadata.kubernetesVersion' is "
            f"{doc.metadata.get('kubernetesVersion', '(missing)')!r}, not a version like v1.36."
        )
    return doc


def requirements_for(version: str, path: Path | None = None) -> tuple[RequirementFile, Path]:
    """The requirement file given by ``path``, else the packaged one for ``version``
    (the cluster's, e.g. "v1.36.0")."""
    if path is not None:
        return load_file(path), path
    minor = minor_version(version)
    known = packaged_versions()
    if minor not in known:
        raise AicError(
            f"No AI conformance requirement file for Kubernetes {version or '(unknown)'} ships "
            f"with pytest-k8sai (it has {', '.join(known)}). Give the program's file for your "
            "version with --aic-requirements PATH (cncf/k8s-ai-conformance docs/"
            f"{FILE_PATTERN.format(version=minor or '1.NN')})."
        )
    packaged = data_file("report", "aic", FILE_PATTERN.format(version=minor))
    return load_file(packaged), packaged


class _IdTable(RootModel[dict[str, IdNotes]]):
    pass


def id_notes() -> dict[str, IdNotes]:
    path = data_file("report", "aic", "ids.yaml")
    return load_model(path, _IdTable, "AI conformance id notes", AicError).root


def known_ids() -> list[str]:
    """Every id of every version this project knows (marker ids are checked against it)."""
    return sorted(id_notes())
