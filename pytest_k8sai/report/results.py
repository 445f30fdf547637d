"""The results file: one versioned JSON document per run (``<results-dir>/results.json``).

Schema ``pytest-k8sai/results`` version 1 is documented in docs/results-schema.md. The file
is rewritten atomically (temporary file + rename) whenever a figure, a test outcome or a table
arrives, so a run that crashes keeps everything it measured and the file is never half written.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from pytest_k8sai.core.verdicts import Op, Statistic, Verdict
from pytest_k8sai.report import redact
from pytest_k8sai.report.tables import Table

SCHEMA = "pytest-k8sai/results"
SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"


class _Model(BaseModel):
    # Unknown keys are an error: a file that does not match is another schema, not ours.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")


class Figure(_Model):
    """One measured figure: what, how much, held against what, from where, and the raw values."""

    figure: str
    measured: float
    unit: str
    threshold: float | None
    op: Op
    verdict: Literal["PASS", "FAIL", "INFO", "INVALID"]
    n: int = Field(ge=0)
    source: str
    nodeid: str = ""
    suite: str = ""
    setup: str = ""
    statistic: Statistic | None = None
    samples: list[float] | None = None
    sample_runs: list[int] | None = None  # sizes of consecutive per-run groups in samples
    key: str = ""  # the profile's slo field the threshold came from
    paper: float | None = None  # the paper's value for that field
    # Set when the figure is reported, not judged, on this tier (e.g. a model check) and why;
    # model_threshold is the bound it is held to where real components decide it.
    not_judged: str = ""
    model_threshold: float | None = None
    invalid: str = ""  # why a fault during the measurement makes the figure untrustworthy

    @classmethod
    def of(cls, v: Verdict) -> Figure:
        return cls(
            figure=v.figure,
            measured=v.measured,
            unit=v.unit,
            threshold=v.threshold,
            op=v.op,
            verdict=v.verdict,  # type: ignore[arg-type]
            n=v.n,
            source=v.source,
            nodeid=v.nodeid,
            suite=v.suite,
            setup=v.setup,
            statistic=v.statistic,
            samples=v.samples,
            sample_runs=v.sample_runs,
            key=v.key,
            paper=v.paper,
            not_judged=v.model_check,
            model_threshold=v.model_threshold,
            invalid=v.invalid,
        )

    @property
    def lower_is_better(self) -> bool:
        """Which way a regression goes: the threshold's op says which way is good."""
        return self.op in ("<=", "<")


class TestOutcome(_Model):
    nodeid: str
    outcome: Literal["passed", "failed", "skipped", "error"]
    duration_s: float
    message: str = ""  # first line of the failure or skip reason


class TableData(_Model):
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, t: Table) -> TableData:
        return cls(title=t.title, headers=t.headers, rows=t.rows, notes=t.notes)


class Environment(_Model):
    """Where the figures come from: enough to tell two runs' conditions apart."""

    profile: str
    provider: str
    time_compression: float
    profile_data: dict[str, Any]  # the whole profile as loaded (thresholds included)
    cluster_provider: str | None = None  # filled once the cluster is up
    versions: dict[str, str] = Field(default_factory=dict)  # component -> version
    cluster_timings_s: dict[str, float] = Field(default_factory=dict)
    # What the cluster was found to have, what this identity may do, and the suites' outlook
    # (k8sai preflight, read once the cluster is up; docs/preflight.md).
    preflight: dict[str, Any] | None = None
    git_sha: str | None = None  # of the checkout the suites ran from
    git_dirty: bool | None = None
    python: str = ""
    pytest: str = ""
    pytest_k8sai: str = ""
    host: str = ""
    command: list[str] = Field(default_factory=list)


class FigureChange(_Model):
    """One figure tonight against the baseline (see report/compare.py for the rule)."""

    figure: str
    unit: str
    verdict: Literal["REGRESSION", "IMPROVEMENT", "SAME", "UNTESTED", "NEW", "MISSING"]
    baseline: float | None
    current: float | None
    change_pct: float | None  # (current - baseline) / |baseline| x 100
    baseline_n: int = 0
    current_n: int = 0
    statistic: str = "median"
    test: str = ""  # which test was made, or why none
    p_value: float | None = None  # Mann-Whitney U, two-sided
    diff_ci: tuple[float, float] | None = None  # bootstrap CI of current - baseline statistic
    why: str = ""


class Comparison(_Model):
    baseline_files: list[str]
    baseline_run_ids: list[str]
    tolerance_pct: float
    alpha: float
    min_samples: int
    bootstrap_resamples: int
    changes: list[FigureChange] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)  # baselines that could not be read


class PlotFile(_Model):
    file: str  # relative to the results file
    title: str
    suite: str = ""


class Results(_Model):
    schema_: Literal["pytest-k8sai/results"] = Field(SCHEMA, alias="schema")
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    started_at: str  # ISO 8601 UTC
    finished_at: str | None = None
    status: Literal["running", "finished"] = "running"
    exit_status: int | None = None
    wall_s: float | None = None
    report_overhead_s: float = 0.0  # time spent writing these files and plots
    environment: Environment
    figures: list[Figure] = Field(default_factory=list)
    tests: list[TestOutcome] = Field(default_factory=list)
    tables: list[TableData] = Field(default_factory=list)
    comparison: Comparison | None = None
    plots: list[PlotFile] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)  # role -> path relative to the file
    # The Kubernetes AI Conformance checklist this run filled (runs with @pytest.mark.aic
    # checks or --aic-report): per id its status, reason, tier, checks, figures and evidence.
    conformance: dict[str, Any] | None = None

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings", populate_by_name=True)


_FIGURES = TypeAdapter(list[Figure])


def dump_figures(figures: list[Figure]) -> str:
    return _FIGURES.dump_json(figures, indent=1).decode()


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def dump(results: Results) -> str:
    return results.model_dump_json(by_alias=True, indent=1)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` in one step: readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are mode 0600; open() honours the user's umask.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("x", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ResultsWriter:
    """Holds this run's Results and rewrites results.json after every change.

    A write that fails (disk full mid-run) is remembered in ``error`` and not raised: the test
    that produced the figure should not fail for it; the summary says the file is stale.
    """

    def __init__(self, path: Path, results: Results) -> None:
        self.path = path
        self.results = results
        self.error: str | None = None

    def write(self) -> None:
        try:
            # Test messages and preflight facts come from outside: secrets masked.
            write_atomic(self.path, redact.scrub(dump(self.results)))
        except OSError as exc:
            self.error = f"could not write {self.path}: {exc.strerror or exc}"
