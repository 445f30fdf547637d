"""The checklist at the end of a run: which checks the session had, what they did, and where
the filled checklist goes (``--aic-report PATH``, results.json ``conformance``, Allure)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from pytest_k8sai.core.verdicts import Verdict
from pytest_k8sai.report.aic.checklist import (
    NOT_SELECTED,
    CheckResult,
    ClusterTier,
    IdOutcome,
    decide,
    fill,
)
from pytest_k8sai.report.aic.evidence import EvidenceLog
from pytest_k8sai.report.aic.requirements import (
    STATUSES,
    AicError,
    RequirementFile,
    id_notes,
    known_ids,
    load_file,
    requirements_for,
)
from pytest_k8sai.report.aic.validate import structure_problems, submission_gaps
from pytest_k8sai.report.results import TestOutcome, write_atomic

CHECKLIST_FILE = "aic-checklist.yaml"


def check_marker_ids(nodeid: str, ids: list[str]) -> None:
    known = known_ids()
    unknown = [i for i in ids if i not in known]
    if not ids or unknown:
        raise AicError(
            f"{nodeid}: @pytest.mark.aic({', '.join(map(repr, ids))}) names "
            f"{'no id' if not ids else 'unknown id ' + ', '.join(unknown)}; the Kubernetes AI "
            f"Conformance ids are: {', '.join(known)}."
        )


@dataclass
class AicSession:
    """Set at the start (options) and at collection (the marked checks)."""

    report_path: Path | None = None
    requirements: RequirementFile | None = None  # from --aic-requirements, read at the start
    requirements_path: Path | None = None
    checks: dict[str, list[str]] = field(default_factory=dict)  # nodeid -> ids
    # Every marked check collected, before -m/-k deselected some: nodeid -> ids.
    known: dict[str, list[str]] = field(default_factory=dict)
    result: AicResult | None = None
    error: str = ""

    @classmethod
    def from_options(cls, report: str | None, requirements: str | None, cwd: Path) -> AicSession:
        s = cls(report_path=(cwd / report).resolve() if report else None)
        if requirements:
            s.requirements_path = (cwd / requirements).resolve()
            s.requirements = load_file(s.requirements_path)
        if s.report_path is not None and s.report_path.is_dir():
            raise AicError(
                f"--aic-report {report}: is a directory; give the checklist's file path "
                "(e.g. --aic-report k8sai-results/PRODUCT.yaml)."
            )
        return s

    @property
    def wanted(self) -> bool:
        return bool(self.checks) or self.report_path is not None


@dataclass
class AicResult:
    document: dict[str, Any]
    outcomes: list[IdOutcome]
    requirements_file: str
    problems: list[str]
    gaps: list[str]
    written: list[Path]
    # Ids the run checked that this version's checklist does not have (e.g. dra_support on
    # 1.36): judged by the same rule, kept in results.json only.
    other: list[IdOutcome] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kubernetes_version": self.document["metadata"].get("kubernetesVersion", ""),
            "requirements_file": self.requirements_file,
            "ids": [o.as_dict() for o in self.outcomes],
            "ids_not_in_checklist": [o.as_dict() for o in self.other],
            "schema_problems": self.problems,
            "submission_gaps": self.gaps,
            "checklist_files": [str(p) for p in self.written],
        }

    def counts(self) -> str:
        """ "Implemented 1, Partially Implemented 2, ..., needs attestation 8"."""
        keys = [o.status or "needs attestation" for o in self.outcomes]
        order = [*STATUSES, "needs attestation"]
        return ", ".join(f"{k} {keys.count(k)}" for k in order if k in keys)

    def summary_lines(self) -> list[str]:
        lines = []
        for o in self.outcomes:
            lines.append(
                f"  {o.id:<28} {o.level:<6} {(o.status or 'needs attestation'):<22} "
                f"{o.reason[:110]}"
            )
        return lines


def tier_of(profile_name: str, provider: str, real_node: bool) -> ClusterTier:
    if provider == "existing":
        return ClusterTier(profile_name, f"existing cluster (profile {profile_name})", "runtime")
    if real_node:
        return ClusterTier(
            profile_name,
            f"the {profile_name} tier: local control plane, one real kubelet + containerd GPU "
            "node whose GPUs are a device plugin's fake ids, other nodes KWOK",
            "api",
        )
    return ClusterTier(
        profile_name,
        f"the {profile_name} tier: local control plane and KWOK GPU nodes (a pod 'Running' "
        "there has nothing behind it)",
        "api",
    )


def finish(
    session: AicSession,
    *,
    version: str,
    tier: ClusterTier,
    outcomes: list[TestOutcome],
    verdicts: list[Verdict],
    evidence: EvidenceLog,
    results_json: Path,
    metadata: dict[str, str],
    run_id: str,
) -> AicResult:
    """Fill the checklist and write it: always beside results.json, and to --aic-report."""
    if session.requirements is not None and session.requirements_path is not None:
        reqs, reqs_path = session.requirements, session.requirements_path
    else:
        reqs, reqs_path = requirements_for(version)
    unknown_meta = [k for k in metadata if k not in reqs.metadata]
    if unknown_meta:
        raise AicError(
            f"Profile field 'conformance.metadata' has {', '.join(unknown_meta)}, which the "
            f"requirement file {reqs_path.name} does not have (its metadata fields: "
            f"{', '.join(reqs.metadata)})."
        )
    by_node = {o.nodeid: o for o in outcomes}
    checks = []
    for nodeid, ids in session.checks.items():
        o = by_node.get(nodeid)
        checks.append(
            CheckResult(
                nodeid=nodeid,
                ids=ids,
                outcome=o.outcome if o else "not run",
                message=o.message if o else "",
                evidence=evidence.checks.get(nodeid),
                verdicts=[v for v in verdicts if v.nodeid == nodeid],
            )
        )
    checks += [
        CheckResult(nodeid=nodeid, ids=ids, outcome=NOT_SELECTED)
        for nodeid, ids in session.known.items()
        if nodeid not in session.checks
    ]
    dests = [results_json.parent / CHECKLIST_FILE]
    if session.report_path is not None and session.report_path not in dests:
        dests.append(session.report_path)
    written, problems = [], []
    document: dict[str, Any] = {}
    result_outcomes: list[IdOutcome] = []
    for dest in dests:
        # Evidence points at results.json relative to where each copy is written.
        ref = os.path.relpath(results_json, dest.parent)
        k8s = _minor(version) if version else f"v{reqs.version}"
        document, result_outcomes = fill(reqs, checks, id_notes(), tier, ref, k8s, metadata)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            text = yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)
            write_atomic(dest, _header(run_id, tier, reqs_path) + text)
        except OSError as exc:
            raise AicError(f"--aic-report {dest}: cannot write the checklist: {exc}.") from None
        written.append(dest)
        problems += [f"{dest.name}: {p}" for p in structure_problems(document, reqs, dest.parent)]
    if version and _minor(version) != f"v{reqs.version}":
        problems.append(
            f"the requirement file {reqs_path.name} is for v{reqs.version}, the cluster runs "
            f"{version}: the program expects the file of the cluster's version"
        )
    in_file = set(reqs.ids())
    notes = id_notes()
    other = [
        decide(i, "", "", [c for c in checks if i in c.ids], notes[i], tier, "results.json")
        for i in sorted({i for c in checks for i in c.ids} - in_file)
        if i in notes
    ]
    return AicResult(
        other=other,
        document=document,
        outcomes=result_outcomes,
        requirements_file=str(reqs_path),
        problems=problems,
        gaps=submission_gaps(document, reqs),
        written=written,
    )


def _minor(version: str) -> str:
    # The checklist names the minor version ("v1.36"), as the program's files do.
    parts = version.lstrip("v").split(".")
    return f"v{parts[0]}.{parts[1]}" if len(parts) >= 2 else version


def _header(run_id: str, tier: ClusterTier, reqs_path: Path) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        "# Kubernetes AI Conformance checklist, filled by pytest-k8sai from automated checks\n"
        f"# run {run_id} at {now} on {tier.description}\n"
        f"# requirements: {reqs_path.name}. An empty status means NEEDS ATTESTATION: the notes\n"
        "# say what the vendor must show. Fill the metadata placeholders before submitting.\n\n"
    )
