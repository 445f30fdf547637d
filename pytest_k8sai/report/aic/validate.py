"""Is a filled checklist what the program accepts? The rules of the program's own validator
(cncf/k8s-ai-conformance ``scripts/validate.go``), less its network checks (URLs answering,
the vendor being a CNCF member), split in two:

- :func:`structure_problems`: the document has the reference file's layout (every metadata
  field a string, every category and id present, statuses from the program's list, N/A with
  notes, evidence a list of strings whose local files exist). A checklist this project writes
  must always pass this.
- :func:`submission_gaps`: what still stands between it and a submission (MUST ids not
  Implemented, ids left for attestation, placeholder metadata). Expected on a test cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_k8sai.report.aic.requirements import STATUSES, RequirementFile


def _local_file(ref: str) -> str | None:
    """The path of a local evidence reference ("file://results.json#test", "logs/x"), or
    None for a URL."""
    if ref.startswith(("http://", "https://")):
        return None
    return ref.removeprefix("file://").split("#", 1)[0]


def structure_problems(doc: Any, reference: RequirementFile, report_dir: Path) -> list[str]:
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["the document is not a mapping with 'metadata' and 'spec'"]
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        problems.append("missing 'metadata' section")
    else:
        for key in reference.metadata:
            if not isinstance(meta.get(key), str):
                problems.append(f"metadata field {key} missing or not a string")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return [*problems, "missing 'spec' section"]
    for category, reqs in reference.spec.items():
        items = spec.get(category)
        if not isinstance(items, list):
            problems.append(f"missing spec category: {category}")
            continue
        by_id = {i.get("id"): i for i in items if isinstance(i, dict)}
        for req in reqs:
            item = by_id.get(req.id)
            if item is None:
                problems.append(f"missing requirement '{req.id}' in category '{category}'")
                continue
            status, evidence, notes = item.get("status"), item.get("evidence"), item.get("notes")
            if item.get("level") != req.level:
                problems.append(f"'{req.id}': level {item.get('level')!r}, expected {req.level}")
            if status != "" and status not in STATUSES:
                problems.append(f"'{req.id}': invalid status {status!r} (one of {STATUSES})")
            if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
                problems.append(f"'{req.id}': evidence is not a list of strings")
                continue
            if status == "" and evidence and req.level == "SHOULD":
                problems.append(f"'{req.id}': evidence given but no status")
            if status == "N/A" and not notes:
                problems.append(f"'{req.id}': notes required when status is N/A")
            if not isinstance(notes, str):
                problems.append(f"'{req.id}': notes is not a string")
            for ref in evidence:
                local = _local_file(ref)
                if local is not None and not (report_dir / local).exists():
                    problems.append(f"'{req.id}': evidence file {local} not found in {report_dir}")
    return problems


def submission_gaps(doc: dict[str, Any], reference: RequirementFile) -> list[str]:
    gaps: list[str] = []
    meta = doc.get("metadata", {})
    placeholders = [k for k, v in meta.items() if str(v).startswith("[") and str(v).endswith("]")]
    if placeholders:
        gaps.append(f"metadata placeholders to fill: {', '.join(placeholders)}")
    levels = {r.id: r.level for reqs in reference.spec.values() for r in reqs}
    for items in doc.get("spec", {}).values():
        for item in items:
            level, status = levels.get(item["id"]), item["status"]
            if status == "":
                gaps.append(f"{item['id']} ({level}): needs attestation")
            elif level == "MUST" and status != "Implemented":
                gaps.append(f"{item['id']} (MUST): {status}")
    return gaps
