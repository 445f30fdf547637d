"""The AI Conformance checklist: requirement files, the status rule, and the program's layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_k8sai.core.verdicts import Verdict
from pytest_k8sai.report.aic.checklist import CheckResult, ClusterTier, decide, fill
from pytest_k8sai.report.aic.evidence import Absent, CheckEvidence, EvidenceLog, Untestable
from pytest_k8sai.report.aic.requirements import (
    AicError,
    IdNotes,
    id_notes,
    load_file,
    minor_version,
    packaged_versions,
    requirements_for,
)
from pytest_k8sai.report.aic.session import AicSession, check_marker_ids, finish, tier_of
from pytest_k8sai.report.aic.validate import structure_problems, submission_gaps
from pytest_k8sai.report.results import TestOutcome as Outcome

KWOK = ClusterTier("local", "the local tier (KWOK)", "api")
REAL = ClusterTier("prod", "existing cluster", "runtime")
RUNTIME = IdNotes(runtime_dependent=True, upstream_test="TestX", attest="show X")
API = IdNotes(runtime_dependent=False, attest="show Y")


def _ev(nodeid: str, **kw: object) -> CheckEvidence:
    e = CheckEvidence(nodeid)
    for k, v in kw.items():
        setattr(e, k, v)
    return e


def _check(outcome: str, nodeid: str = "t::a", **ev: object) -> CheckResult:
    return CheckResult(nodeid, ["x"], outcome, evidence=_ev(nodeid, **ev) if ev else None)


def _decide(checks: list[CheckResult], notes: IdNotes = API, tier: ClusterTier = REAL):
    return decide("x", "cat", "MUST", checks, notes, tier, "results.json")


def test_every_packaged_version_loads_and_every_id_has_notes():
    assert packaged_versions() == ["1.33", "1.34", "1.35", "1.36"]
    notes = id_notes()
    for v in packaged_versions():
        doc, path = requirements_for(f"v{v}.2")
        assert doc.version == v and path.name == f"AIConformance-{v}.yaml"
        assert set(doc.ids()) <= set(notes)
    assert "dra_support" in requirements_for("1.35")[0].ids()
    assert "dra_support" not in requirements_for("1.36")[0].ids()


def test_minor_version_forms():
    assert minor_version("v1.36.0") == "1.36"
    assert minor_version("1.36.2+k3s1") == "1.36"
    assert minor_version("unknown") == ""


def test_a_version_without_a_packaged_file_names_the_option():
    with pytest.raises(AicError, match=r"--aic-requirements PATH.*AIConformance-1\.37\.yaml"):
        requirements_for("v1.37.0")


def test_a_bad_requirement_file_is_one_paragraph(tmp_path: Path):
    bad = tmp_path / "r.yaml"
    bad.write_text(
        "metadata: {kubernetesVersion: v1.37}\nspec:\n  x:\n    - id: a\n      level: MAY\n"
    )
    with pytest.raises(AicError, match=r"r\.yaml.*level"):
        load_file(bad)


def test_marker_ids_are_checked():
    check_marker_ids("t::a", ["gang_scheduling"])
    with pytest.raises(AicError, match="unknown id gang.*gang_scheduling"):
        check_marker_ids("t::a", ["gang"])
    with pytest.raises(AicError, match="no id"):
        check_marker_ids("t::a", [])


def test_all_passed_on_a_real_cluster_is_implemented():
    o = _decide([_check("passed"), _check("skipped", "t::b")], RUNTIME)
    assert o.status == "Implemented"
    assert o.evidence == ["file://results.json#t::a"]
    assert "TestX" in o.notes() and "supporting evidence" in o.notes()


def test_one_failure_makes_it_not_implemented():
    o = _decide([_check("passed"), _check("failed", "t::b")])
    assert o.status == "Not Implemented" and "t::b" in o.reason


def test_absent_capability_is_not_implemented_with_why():
    o = _decide([_check("skipped", absent="no GatewayClass is Accepted")])
    assert o.status == "Not Implemented" and o.reason == "no GatewayClass is Accepted"


def test_nothing_ran_needs_attestation():
    assert _decide([]).status == ""
    o = _decide([_check("skipped", untestable="KWOK runs no containers")])
    assert o.status == "" and "skipped" in o.reason and o.needs_attestation
    assert "A vendor must show: show Y" in o.notes()


def test_runtime_id_on_api_level_evidence_is_never_implemented():
    o = _decide([_check("passed")], RUNTIME, KWOK)
    assert o.status == "Partially Implemented" and "API-level evidence only" in o.reason
    # A check that says its containers really ran lifts it, even on a local tier.
    o = _decide([_check("passed", tiers=[("runtime", "real kubelet")])], RUNTIME, KWOK)
    assert o.status == "Implemented"
    # One api-level statement in a check keeps it api-level.
    both = [("runtime", "pods ran"), ("api", "GPUs are emulated")]
    assert _decide([_check("passed", tiers=both)], RUNTIME, REAL).status == (
        "Partially Implemented"
    )


def test_partial_evidence_is_partially_implemented():
    o = _decide([_check("passed", partial=["API served; no DRA driver"])])
    assert o.status == "Partially Implemented" and "no DRA driver" in o.reason


def test_figures_go_into_the_notes():
    v = Verdict(
        figure="pods of the job that does not fit", measured=0, unit="pods", threshold=0,
        op="<=", n=1, source="s", passed=True, nodeid="t::a",
    )  # fmt: skip
    c = _check("passed")
    c.verdicts = [v]
    assert (
        "pods of the job that does not fit = 0 pods (PASS <= 0 pods, n 1)" in _decide([c]).notes()
    )


def _fill(checks: list[CheckResult], version: str = "1.36"):
    reqs, _ = requirements_for(version)
    return reqs, *fill(reqs, checks, id_notes(), KWOK, "results.json", f"v{version}", {})


def test_filled_checklist_keeps_the_programs_layout(tmp_path: Path):
    (tmp_path / "results.json").write_text("{}")
    checks = [CheckResult("t::gang", ["gang_scheduling"], "passed")]
    reqs, doc, outcomes = _fill(checks)
    assert structure_problems(doc, reqs, tmp_path) == []
    assert list(doc["spec"]) == list(reqs.spec)
    assert [i["id"] for c in doc["spec"].values() for i in c] == reqs.ids()
    gang = next(o for o in outcomes if o.id == "gang_scheduling")
    assert gang.status == "Implemented"  # Kueue's admission is real on every tier
    # Round trip through YAML, as the file is written.
    again = yaml.safe_load(yaml.safe_dump(doc, sort_keys=False))
    assert structure_problems(again, reqs, tmp_path) == []
    gaps = submission_gaps(doc, reqs)
    assert any("placeholders" in g for g in gaps)
    assert "secure_accelerator_access (MUST): needs attestation" in gaps


def test_structure_problems_are_found(tmp_path: Path):
    reqs, doc, _ = _fill([CheckResult("t::gang", ["gang_scheduling"], "passed")])
    # results.json is not in tmp_path: the evidence reference dangles.
    assert any("evidence file results.json not found" in p
               for p in structure_problems(doc, reqs, tmp_path))  # fmt: skip
    broken = {"metadata": doc["metadata"], "spec": dict(doc["spec"])}
    broken["spec"].pop("security")
    first = dict(broken["spec"]["accelerators"][0], status="Done")
    broken["spec"]["accelerators"] = [first, *broken["spec"]["accelerators"][1:]]
    problems = structure_problems(broken, reqs, tmp_path)
    assert "missing spec category: security" in problems
    assert any("invalid status 'Done'" in p for p in problems)


def test_finish_writes_the_checklist_beside_results_and_to_the_report(tmp_path: Path):
    results = tmp_path / "res" / "results.json"
    results.parent.mkdir()
    results.write_text("{}")
    session = AicSession(report_path=tmp_path / "out" / "PRODUCT.yaml")
    session.checks = {
        "t::gang": ["gang_scheduling"],
        "t::sec": ["secure_accelerator_access"],
        "t::dra": ["dra_support"],  # not an id of 1.36: kept in results.json only
    }
    log = EvidenceLog()
    with pytest.raises(Untestable):
        log.bind("t::sec").untestable("KWOK nodes run no containers")
    result = finish(
        session,
        version="v1.36.0",
        tier=tier_of("local", "local", real_node=False),
        outcomes=[
            Outcome(nodeid="t::gang", outcome="passed", duration_s=1.0),
            Outcome(nodeid="t::sec", outcome="skipped", duration_s=0.1, message="KWOK"),
        ],
        verdicts=[],
        evidence=log,
        results_json=results,
        metadata={"platformName": "pytest-k8sai local tier"},
        run_id="r1",
    )
    assert result.problems == []
    assert [p.name for p in result.written] == ["aic-checklist.yaml", "PRODUCT.yaml"]
    written = yaml.safe_load((tmp_path / "out" / "PRODUCT.yaml").read_text())
    assert written["metadata"]["kubernetesVersion"] == "v1.36"
    assert written["metadata"]["platformName"] == "pytest-k8sai local tier"
    sched = {i["id"]: i for i in written["spec"]["schedulingOrchestration"]}
    assert sched["gang_scheduling"]["evidence"] == ["file://../res/results.json#t::gang"]
    sec = written["spec"]["security"][0]
    assert sec["status"] == "" and "KWOK nodes run no containers" in sec["notes"]
    assert result.as_dict()["ids"][0]["status"] in ("needs attestation", "Implemented")
    assert [o["id"] for o in result.as_dict()["ids_not_in_checklist"]] == ["dra_support"]
    assert "dra_support" not in {i["id"] for c in written["spec"].values() for i in c}


def test_metadata_fields_the_file_lacks_are_a_profile_error(tmp_path: Path):
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(AicError, match="conformance.metadata.*vendor"):
        finish(
            AicSession(),
            version="v1.36.0",
            tier=KWOK,
            outcomes=[],
            verdicts=[],
            evidence=EvidenceLog(),
            results_json=tmp_path / "results.json",
            metadata={"vendor": "x"},
            run_id="r",
        )


def test_absent_and_untestable_raise_not_applicable():
    log = EvidenceLog()
    with pytest.raises(Absent, match="Not Implemented on this cluster: no CRDs"):
        log.bind("t::a").absent("no CRDs")
    assert log.checks["t::a"].absent == "no CRDs"
    with pytest.raises(ValueError, match="runtime, api"):
        log.bind("t::b").tier("kwok", "x")  # type: ignore[arg-type]


def test_allure_overview_lists_each_id(tmp_path: Path):
    from pytest_k8sai.report.allure import ENVIRONMENT_FILE, write_environment
    from pytest_k8sai.report.results import Environment

    env = Environment(
        profile="local", provider="local", time_compression=60, profile_data={}, python="3.11",
        pytest="8", pytest_k8sai="0", host="h", command=[],
    )  # fmt: skip
    conformance = {
        "ids": [
            {"id": "gang_scheduling", "level": "MUST", "status": "Implemented",
             "tier": "the local tier", "reason": "r"},
            {"id": "workload_sandboxing", "level": "SHOULD", "status": "needs attestation",
             "tier": "t", "reason": "no check covers it"},
        ]
    }  # fmt: skip
    write_environment(tmp_path, env, "r1", tmp_path / "results.json", conformance)
    text = (tmp_path / ENVIRONMENT_FILE).read_text()
    assert "AI\\ conformance\\ gang_scheduling\\ (MUST)=Implemented - the local tier" in text
    assert "workload_sandboxing\\ (SHOULD)=needs attestation - no check covers it" in text
