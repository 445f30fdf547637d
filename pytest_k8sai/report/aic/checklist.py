"""The AI Conformance checklist filled from the run: one status per requirement id, decided by
the checks marked with that id, with the evidence and figures behind it.

The rule per id (the checks are the tests marked ``@pytest.mark.aic(id)`` that the run
collected):

- a check failed or errored -> **Not Implemented** (the failure is named);
- a check found the capability missing (``aic.absent``) -> **Not Implemented** (why);
- no check ran and passed (none selected, or each skipped: a profile lacks the capability,
  the tier cannot show it) -> status left empty: **needs attestation**, with what the vendor
  must show;
- every check that ran passed, but one saw only part of it (``aic.partial``), or the id needs
  containers that really run and every passing check's evidence is API-level only (KWOK pods,
  emulated devices) -> **Partially Implemented**;
- otherwise -> **Implemented**.

A check counts only if every check of the id that ran passed. The upstream
kubernetes-sigs/ai-conformance test, where one covers the id, is named as the recommended
evidence; ours is supporting evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pytest_k8sai.core.verdicts import Verdict
from pytest_k8sai.report.aic.evidence import CheckEvidence, Tier
from pytest_k8sai.report.aic.requirements import IdNotes, RequirementFile

NEEDS_ATTESTATION = "needs attestation"
# A check the session collected but deselected (-m, -k): it exists, it did not run.
NOT_SELECTED = "not selected"
UPSTREAM_REPO = "kubernetes-sigs/ai-conformance"


@dataclass
class CheckResult:
    """One marked test as the run saw it."""

    nodeid: str
    ids: list[str]
    # passed, failed, error, skipped, "not run" (selected, never reported) or NOT_SELECTED
    outcome: str
    message: str = ""
    evidence: CheckEvidence | None = None
    verdicts: list[Verdict] = field(default_factory=list)

    def tier(self, default: Tier) -> Tier:
        """What this check's evidence rests on: "api" if it said so once, "runtime" if it only
        said runtime, else the cluster's default."""
        said = [t for t, _ in self.evidence.tiers] if self.evidence else []
        if "api" in said:
            return "api"
        return "runtime" if said else default


@dataclass(frozen=True)
class ClusterTier:
    """Which tier produced the evidence: named in every id's notes."""

    name: str  # the profile, e.g. "local"
    description: str  # e.g. "local tier: KWOK GPU nodes, pods have nothing behind them"
    default: Tier  # what a check's evidence rests on when it does not say


@dataclass
class IdOutcome:
    id: str
    category: str
    level: str
    status: str  # one of STATUSES, or "" (needs attestation)
    reason: str
    tier: str
    checks: list[dict[str, str]] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    upstream_test: str = ""
    attest: str = ""
    evidence: list[str] = field(default_factory=list)

    @property
    def needs_attestation(self) -> bool:
        return self.status == ""

    def notes(self) -> str:
        """The checklist's ``notes`` field: one paragraph a reviewer can read."""
        reason = self.reason.rstrip(".") + "."
        head = f"[pytest-k8sai, {self.tier}] {self.status or NEEDS_ATTESTATION.upper()}"
        parts = [f"{head}: {reason}"]
        if self.checks:
            parts.append(
                "Checks: "
                + "; ".join(
                    f"{c['nodeid']} {c['outcome']}"
                    + (f" ({c['message']})" if c["message"] else "")
                    + (f" [evidence: {c['tier']}]" if c["outcome"] == "passed" else "")
                    for c in self.checks
                )
                + "."
            )
        if self.seen:
            parts.append("Seen: " + "; ".join(self.seen) + ".")
        if self.figures:
            parts.append("Figures: " + "; ".join(self.figures) + ".")
        if self.upstream_test:
            parts.append(
                f"Recommended evidence: {UPSTREAM_REPO} {self.upstream_test} (go test ./test "
                f"-run {self.upstream_test}); the checks above are supporting evidence."
            )
        if self.status != "Implemented":
            parts.append(f"A vendor must show: {self.attest}")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "level": self.level,
            "status": self.status or NEEDS_ATTESTATION,
            "reason": self.reason,
            "tier": self.tier,
            "checks": self.checks,
            "figures": self.figures,
            "seen": self.seen,
            "upstream_test": self.upstream_test,
            "attest": self.attest if self.status != "Implemented" else "",
            "evidence": self.evidence,
        }


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    # 13891 ms, not 1.389e+04 ms: figures are read by people.
    return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"


def figure_line(v: Verdict) -> str:
    """ "gang job admitted -> all pods scheduled P50 = 412 ms (INFO, n 2)"."""
    unit = f" {v.unit}" if v.unit else ""
    if v.threshold is None or v.model_check:
        judged = "INFO"
    else:
        judged = f"{'PASS' if v.passed else 'FAIL'} {v.op} {_num(v.threshold)}{unit}"
    return f"{v.figure} = {_num(v.measured)}{unit} ({judged}, n {v.n})"


def _skip_reason(c: CheckResult) -> str:
    if c.evidence is not None and c.evidence.untestable:
        return f"not checkable on this tier: {c.evidence.untestable}"
    return c.message or "skipped"


def decide(
    req_id: str,
    category: str,
    level: str,
    checks: list[CheckResult],
    notes: IdNotes,
    tier: ClusterTier,
    results_ref: str,
) -> IdOutcome:
    """One id's status from its checks (the rule in the module docstring)."""
    out = IdOutcome(
        id=req_id,
        category=category,
        level=level,
        status="",
        reason="",
        tier=tier.description,
        upstream_test=notes.upstream_test,
        attest=notes.attest,
    )
    ran = [c for c in checks if c.outcome in ("passed", "failed", "error")]
    passed = [c for c in ran if c.outcome == "passed"]
    failed = [c for c in ran if c.outcome != "passed"]
    absent = [c for c in checks if c.evidence is not None and c.evidence.absent]
    partial = [p for c in passed if c.evidence is not None for p in c.evidence.partial]
    for c in checks:
        out.checks.append(
            {
                "nodeid": c.nodeid,
                "outcome": c.outcome,
                "message": c.message,
                "tier": c.tier(tier.default) if c.outcome == "passed" else "",
            }
        )
        if c.evidence is not None:
            out.seen += c.evidence.notes
        out.figures += [figure_line(v) for v in c.verdicts]
        if c.outcome in ("passed", "failed", "error"):
            out.evidence.append(f"file://{results_ref}#{c.nodeid}")
    if failed:
        out.status = "Not Implemented"
        out.reason = "a check failed: " + "; ".join(
            f"{c.nodeid}: {c.message or c.outcome}" for c in failed
        )
    elif absent:
        out.status = "Not Implemented"
        out.reason = "; ".join(c.evidence.absent for c in absent if c.evidence is not None)
    elif not passed:
        skipped = [c for c in checks if c.outcome == "skipped"]
        unselected = [c for c in checks if c.outcome == NOT_SELECTED]
        if not checks:
            out.reason = "no check of pytest-k8sai covers this id"
        elif skipped:
            out.reason = "no check ran here: " + "; ".join(
                f"{c.nodeid} skipped ({_skip_reason(c)})" for c in skipped
            )
            if unselected:
                out.reason += f"; {len(unselected)} more not selected in this run"
        elif len(unselected) == len(checks):
            out.reason = (
                f"its {len(checks)} check(s) were not selected in this run (-m or -k): "
                "pytest -m conformance runs them"
            )
        else:
            out.reason = "its checks were not run in this session"
    elif partial:
        out.status = "Partially Implemented"
        out.reason = "part of it was shown: " + "; ".join(partial)
    elif notes.runtime_dependent and all(c.tier(tier.default) == "api" for c in passed):
        out.status = "Partially Implemented"
        out.reason = (
            "API-level evidence only: this id needs containers that really run, and the "
            f"passing checks ran on {tier.description}"
        )
    else:
        out.status = "Implemented"
        out.reason = f"every check that ran passed ({len(passed)} of {len(checks)})"
    return out


def fill(
    reqs: RequirementFile,
    checks: list[CheckResult],
    id_notes: dict[str, IdNotes],
    tier: ClusterTier,
    results_ref: str,
    kubernetes_version: str,
    metadata: dict[str, str],
) -> tuple[dict[str, Any], list[IdOutcome]]:
    """The checklist document (the program's layout) and each id's outcome."""
    outcomes: list[IdOutcome] = []
    spec: dict[str, list[dict[str, Any]]] = {}
    for category, items in reqs.spec.items():
        spec[category] = []
        for req in items:
            mine = [c for c in checks if req.id in c.ids]
            notes = id_notes.get(req.id) or _unknown_id(req.id)
            o = decide(req.id, category, req.level, mine, notes, tier, results_ref)
            outcomes.append(o)
            entry = req.model_dump()
            entry.update(status=o.status, evidence=list(o.evidence), notes=o.notes())
            spec[category].append(entry)
    meta = dict(reqs.metadata)
    meta["kubernetesVersion"] = kubernetes_version or meta.get("kubernetesVersion", "")
    meta.update(metadata)
    return {"metadata": meta, "spec": spec}, outcomes


def _unknown_id(req_id: str) -> IdNotes:
    # A newer requirement file may bring an id this project has no notes for.
    return IdNotes(
        runtime_dependent=True,
        attest=f"what the program's description of {req_id} asks for (pytest-k8sai has no "
        "check or notes for this id yet)",
    )
