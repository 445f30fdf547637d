"""Seeded regressions ("mutants"): a YAML overlay that changes one component of the stack the
way a real regression or misconfiguration would, to show that the suites notice.

A mutant file (schema: :class:`Mutant`, documented in docs/mutants.md) names what it changes,
the real-world failure it stands for, the suites it affects, and its ``changes``: one section
per component. This module only holds the active mutant and the merge rule; each module that
owns a configuration asks for its own section (``changes().epp`` ...) and applies it, so a
mutant reaches a component exactly where that component's configuration is made:

============== ==========================================================================
section        applied by
============== ==========================================================================
kueue_manager  clusters/local/kueue_manager.py ``write_config`` (Kueue's Configuration)
kube_scheduler clusters/local/controlplane.py ``scheduler_args`` (KubeSchedulerConfiguration)
kueue_setups   kueue/setups.py ``load_setups`` (entries of kueue/setups.yaml)
cluster_queues kueue/objects.py ``ClusterQueueSpec.body`` (every ClusterQueue created)
epp            gaie/epp.py ``load_configs`` (the EndpointPickerConfig documents)
sim            gaie/replicas.py ``sim_args`` (llm-d-inference-sim flags)
slices         das/slices.py ``slice_node_bodies`` (the local KWOK MIG slice layout)
============== ==========================================================================

The active mutant is process state set once per pytest session (``--mutant``) before the
cluster starts. Core imports nothing else of the package, so every part may read it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.yamlfiles import exists, read_yaml, validate

CATALOGUE_DIR = data_file("core", "mutants")
Suite = Literal["smoke", "kueue", "das", "gaie"]
SUITES: tuple[str, ...] = ("smoke", "kueue", "das", "gaie")
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

# The merge rule's markers (see deep_merge).
REPLACE = "$replace"
DELETE = "$delete"
# Keys that identify an item of a list of mappings, in the order tried: GAIE plugins are
# identified by name (which defaults to their type), profile plugin entries by pluginRef,
# Kueue setups' cluster_queues and flavors' resources by name, scheduler profiles by
# schedulerName.
IDENTITY_KEYS = ("name", "schedulerName", "pluginRef", "type")


class MutantError(K8saiError):
    """A mutant file is missing, malformed, or does not fit the configuration it changes."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimChanges(_Strict):
    # Flag name (with or without the leading --) -> value. A value replaces the flag where
    # sim_args sets it and is appended otherwise; null removes the flag (and its value).
    flags: dict[str, str | int | float | bool | None] = Field(min_length=1)


class SliceChanges(_Strict):
    # The MIG profiles each GPU is cut into, in GPU order (GPUs fill nodes in order, as
    # ``Plan.slices_per_node`` does), replacing the planner's best layout on the local tier.
    # A GPU not listed gets no slices.
    gpus: list[list[str]] = Field(min_length=1)


class Changes(_Strict):
    """One optional section per component; see docs/mutants.md for each."""

    kueue_manager: dict[str, Any] | None = None  # overlay onto Kueue's Configuration
    kube_scheduler: dict[str, Any] | None = None  # overlay onto KubeSchedulerConfiguration
    kueue_setups: dict[str, dict[str, Any]] | None = None  # setup name or "*" -> overlay
    cluster_queues: dict[str, Any] | None = None  # overlay onto every ClusterQueue object
    epp: dict[str, dict[str, Any]] | None = None  # EPP config name -> overlay
    sim: SimChanges | None = None
    slices: SliceChanges | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Changes:
        if not any(getattr(self, f) for f in type(self).model_fields):
            raise ValueError(f"set at least one of {', '.join(type(self).model_fields)}")
        return self


CONTROL_PLANE_SECTIONS = ("kueue_manager", "kube_scheduler")


class Mutant(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(min_length=1)  # what it changes, one line
    stands_for: str = Field(min_length=1)  # the real-world regression or misconfiguration
    suites: list[Suite] = Field(min_length=1)  # the suites whose verdicts it should turn red
    # Verdict keys (profile slo fields) or figure-name substrings expected to turn red:
    # documentation for the table, never used to decide "caught".
    expect: list[str] = Field(default_factory=list)
    changes: Changes

    def control_plane(self) -> dict[str, Any]:
        """The sections that configure the local control plane's processes."""
        return {
            s: getattr(self.changes, s)
            for s in CONTROL_PLANE_SECTIONS
            if getattr(self.changes, s) is not None
        }

    def short_changes(self) -> str:
        return ", ".join(s for s in type(self.changes).model_fields if getattr(self.changes, s))


def control_plane_fingerprint(mutant: Mutant | None) -> str:
    """Identifies what a mutant changes in the local control plane ("" for nothing): a local
    cluster started with one fingerprint must not serve a run with another."""
    sections = mutant.control_plane() if mutant is not None else {}
    if not sections:
        return ""
    text = json.dumps(sections, sort_keys=True, separators=(",", ":"))
    return f"{mutant.name}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"  # type: ignore[union-attr]


# -- loading ---------------------------------------------------------------------------------


def catalogue_names() -> list[str]:
    return sorted(p.stem for p in CATALOGUE_DIR.glob("*.yaml"))


def catalogue_path(name: str) -> Path:
    return CATALOGUE_DIR / f"{name}.yaml"


def resolve(spec: str) -> Path:
    """A catalogue name (``epp-prefix-weight-zero``) or a path to a mutant file."""
    if spec in catalogue_names():
        return catalogue_path(spec)
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # ~NAME of no user: taken as written
        path = Path(spec)
    if path.suffix in (".yaml", ".yml") or exists(path):
        return path.resolve()
    raise MutantError(
        f"--mutant={spec}: no mutant of that name in the catalogue (known: "
        f"{', '.join(catalogue_names())}) and no such file."
    )


def load_mutant(path: Path) -> Mutant:
    """Read and check one mutant file; MutantError names the file and the field."""
    data = read_yaml(path, "Mutant", MutantError)
    return validate(
        data,
        Mutant,
        f"Mutant file {path}",
        MutantError,
        expects="with 'name', 'description', 'stands_for', 'suites' and 'changes'",
    )


def load(spec: str) -> tuple[Mutant, Path]:
    path = resolve(spec)
    return load_mutant(path), path


def load_catalogue() -> list[Mutant]:
    return [load_mutant(catalogue_path(n)) for n in catalogue_names()]


# -- the active mutant -----------------------------------------------------------------------

_active: tuple[Mutant, Path] | None = None


def activate(mutant: Mutant | None, path: Path | None = None) -> None:
    """Make ``mutant`` the one every component applies (None: no mutant). Called once per
    session, before the cluster starts."""
    global _active
    _active = (mutant, path or catalogue_path(mutant.name)) if mutant is not None else None


def active() -> Mutant | None:
    return _active[0] if _active is not None else None


def active_path() -> Path | None:
    return _active[1] if _active is not None else None


def changes() -> Changes:
    """The active mutant's changes; all sections None when there is none."""
    m = active()
    return m.changes if m is not None else Changes.model_construct()


def describe_active() -> str:
    """``name (path)`` of the active mutant, or "" when there is none."""
    return f"{_active[0].name} ({_active[1]})" if _active is not None else ""


def where(field: str) -> str:
    """How errors name a field of the active mutant: file and dotted field."""
    m, path = _active if _active is not None else (None, None)
    name = f"mutant '{m.name}' ({path})" if m is not None else "the mutant"
    return f"{name}, field 'changes.{field}'"


# -- the merge rule --------------------------------------------------------------------------


def _identity(item: object) -> object:
    if not isinstance(item, dict):
        return None
    for key in IDENTITY_KEYS:
        if key in item:
            return (key, item[key])
    return None


def _keyed(items: list[Any]) -> bool:
    return all(_identity(i) is not None for i in items)


def _plain(value: Any) -> Any:
    """``value`` without merge markers (a new value added as is)."""
    if isinstance(value, dict):
        if set(value) == {REPLACE}:
            return _plain(value[REPLACE])
        return {k: _plain(v) for k, v in value.items() if v is not None and k != DELETE}
    if isinstance(value, list):
        return [_plain(v) for v in value if not (isinstance(v, dict) and v.get(DELETE))]
    return copy.deepcopy(value)


def deep_merge(base: Any, overlay: Any) -> Any:
    """``overlay`` merged onto ``base``; neither is changed.

    - mapping onto mapping: key by key, recursively; a key whose overlay value is null is
      removed.
    - list of mappings onto list of mappings, when every item of both has an identity (its
      first key of ``name``, ``schedulerName``, ``pluginRef``, ``type``): item by item, matched
      by identity, recursively; unmatched overlay items are appended in their order; an
      overlay item with ``$delete: true`` removes its match.
    - ``{$replace: value}``: ``value`` as is, whatever was there (a whole list or document).
    - anything else: the overlay's value replaces the base's.
    """
    if isinstance(overlay, dict) and set(overlay) == {REPLACE}:
        return _plain(overlay[REPLACE])
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = copy.deepcopy(base)
        for key, value in overlay.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = deep_merge(out[key], value)
            else:
                out[key] = _plain(value)
        return out
    if isinstance(base, list) and isinstance(overlay, list) and _keyed(base) and _keyed(overlay):
        merged = copy.deepcopy(base)
        for item in overlay:
            ident = _identity(item)
            at = next((i for i, b in enumerate(merged) if _identity(b) == ident), None)
            if item.get(DELETE):
                if at is not None:
                    del merged[at]
            elif at is None:
                merged.append(_plain(item))
            else:
                merged[at] = deep_merge(merged[at], item)
        return merged
    return _plain(overlay)


def overlay_names(overlays: dict[str, Any], known: list[str] | tuple[str, ...], field: str) -> None:
    """Refuse an overlay for a name the configuration does not have (a typo would otherwise
    make a mutant that changes nothing and is never caught)."""
    unknown = sorted(set(overlays) - set(known))
    if unknown:
        raise MutantError(
            f"{where(field)}: {', '.join(repr(u) for u in unknown)} "
            f"{'is' if len(unknown) == 1 else 'are'} not among {', '.join(map(repr, known))}."
        )
