"""Allure output through allure-pytest, when the run has ``--alluredir``.

Each suite is an epic and each setup a feature (labels set at collection); each test gets its
figures as a table (CSV, which Allure shows as a table) and as raw JSON, the plots of its suite
and, when it failed, the tail of every component log; the overview's Environment widget shows
the profile, versions and run id (``environment.properties``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_k8sai.core.verdicts import Verdict, _num
from pytest_k8sai.report import redact
from pytest_k8sai.report.labels import feature_of, suite_of
from pytest_k8sai.report.plots import Plot
from pytest_k8sai.report.results import Environment, Figure, dump_figures

ENVIRONMENT_FILE = "environment.properties"
# Enough of a component log to see what happened around a failure, small enough to browse.
LOG_TAIL_BYTES = 128 * 1024


def alluredir(config: pytest.Config) -> Path | None:
    value = getattr(config.option, "allure_report_dir", None)
    return Path(value).resolve() if value else None


def add_labels(items: Sequence[pytest.Item]) -> None:
    """epic = suite, feature = setup (or module), as allure-pytest's own label markers."""
    for item in items:
        item.add_marker(pytest.mark.allure_label(suite_of(item.nodeid), label_type="epic"))
        item.add_marker(pytest.mark.allure_label(feature_of(item), label_type="feature"))


def figures_csv(verdicts: Sequence[Verdict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["figure", "measured", "unit", "threshold", "verdict", "n", "source"])
    for v in verdicts:
        threshold = "" if v.threshold is None else f"{v.op} {_num(v.threshold)}"
        w.writerow([v.figure, _num(v.measured), v.unit, threshold, v.verdict, v.n, v.source])
    return buf.getvalue()


def attach_to_test(
    verdicts: Sequence[Verdict], plots: Sequence[Plot], logs: Path | None, failed: bool
) -> None:
    """Called while the test is still the current Allure item (its teardown report)."""
    import allure

    if verdicts:
        allure.attach(
            figures_csv(verdicts), name="figures", attachment_type=allure.attachment_type.CSV
        )
        allure.attach(
            dump_figures([Figure.of(v) for v in verdicts]),
            name="raw results (figures with samples)",
            attachment_type=allure.attachment_type.JSON,
        )
    for p in plots:
        if p.path.exists():
            png = allure.attachment_type.PNG
            allure.attach.file(str(p.path), name=p.title, attachment_type=png)
    if failed and logs is not None and logs.is_dir():
        for log in sorted(logs.glob("*.log")):
            allure.attach(
                redact.scrub(_tail(log)),
                name=f"component log {log.name} (tail)",
                attachment_type=allure.attachment_type.TEXT,
            )


def _tail(path: Path) -> str:
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - LOG_TAIL_BYTES))
        data = fh.read()
    head = f"[last {len(data)} of {size} bytes of {path}]\n" if size > len(data) else ""
    return head + data.decode("utf-8", errors="replace")


def _escape_key(key: str) -> str:
    for ch in " =:":
        key = key.replace(ch, "\\" + ch)
    return key


def write_environment(
    directory: Path,
    env: Environment,
    run_id: str,
    results: Path,
    conformance: Mapping[str, Any] | None = None,
) -> Path:
    """Allure's overview lists these key=value pairs under Environment; with a filled AI
    Conformance checklist, one pair per requirement id (its status and evidence tier)."""
    pairs = {
        "run id": run_id,
        "profile": env.profile,
        "provider": env.provider,
        "time compression": _num(env.time_compression),
        "suite git sha": (env.git_sha or "-") + (" (dirty)" if env.git_dirty else ""),
        "pytest-k8sai": env.pytest_k8sai,
        "results": str(results),
        **{f"version {k}": v for k, v in env.versions.items()},
    }
    for item in (conformance or {}).get("ids", []):
        pairs[f"AI conformance {item['id']} ({item['level']})"] = (
            f"{item['status']} - {item['tier']}"
            if item["status"] != "needs attestation"
            else f"needs attestation - {item['reason']}"
        )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ENVIRONMENT_FILE
    # Properties format: escape the separators in keys, one pair per line.
    lines = [f"{_escape_key(k)}={v}" for k, v in pairs.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def log_dir(live: str | None, results_dir: Path) -> Path | None:
    """The component logs to attach: the live cluster's log directory while it runs; after the
    last test the cluster is gone and the cluster fixture copied them to <results-dir>/logs."""
    dirs = [Path(live)] if live else []
    return next((d for d in [*dirs, results_dir / "logs"] if d.is_dir()), None)
