"""One run's report: listens to verdicts, tables, plots, test outcomes and the cluster, keeps
``results.json`` current, compares with ``--baseline`` as figures arrive, and at the end
writes ``summary.md`` (and Allure's environment). The plugin's hooks only call into this.
"""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest

from pytest_k8sai.core.profiles import Profile
from pytest_k8sai.core.verdicts import VERDICTS_FILE, Verdict, VerdictLog
from pytest_k8sai.report import allure as allure_out
from pytest_k8sai.report import redact
from pytest_k8sai.report.baseline import Baseline
from pytest_k8sai.report.compare import Comparer
from pytest_k8sai.report.plots import Plot, PlotLog
from pytest_k8sai.report.results import (
    RESULTS_FILE,
    Environment,
    Figure,
    FigureChange,
    PlotFile,
    Results,
    ResultsWriter,
    TableData,
    TestOutcome,
    utc_now,
    write_atomic,
)
from pytest_k8sai.report.summary import SUMMARY_FILE, summary_markdown
from pytest_k8sai.report.tables import Table, TableLog

GIT_TIMEOUT_S = 5.0
MUTANT_KEY = "mutant"  # environment.versions key naming the --mutant a run had


def _pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def git_state(directory: Path) -> tuple[str | None, bool | None]:
    """(HEAD sha, uncommitted changes to tracked files) of the checkout, or (None, None)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(directory), *args],
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT_S,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    sha = git("rev-parse", "HEAD")
    if sha is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return sha, None if status is None else bool(status)


def environment(profile: Profile, rootdir: Path, command: list[str]) -> Environment:
    sha, dirty = git_state(rootdir)
    return Environment(
        profile=profile.name,
        provider=profile.provider,
        time_compression=profile.time_compression,
        profile_data=profile.model_dump(mode="json"),
        git_sha=sha,
        git_dirty=dirty,
        python=platform.python_version(),
        pytest=pytest.__version__,
        pytest_k8sai=_pkg_version("pytest-k8sai"),
        host=socket.gethostname(),
        command=command,
    )


def _outcome(report: pytest.TestReport) -> str:
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return "skipped" if report.skipped else "passed"


def _message(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    if report.failed:
        text = getattr(report.longrepr, "reprcrash", None)
        line = text.message if text is not None else str(report.longrepr)
        return line.splitlines()[0] if line else ""
    return ""


class RunReport:
    """Everything a run writes besides verdicts.jsonl and tables.md, which it also lists."""

    def __init__(
        self,
        *,
        results_dir: Path,
        run_id: str,
        env: Environment,
        verdicts: VerdictLog,
        tables: TableLog,
        plots: PlotLog,
        baseline: Baseline | None,
        profile: Profile,
        mutant: str | None = None,
    ) -> None:
        self.results_dir = results_dir
        self.path = results_dir / RESULTS_FILE
        self.seconds = 0.0
        self._depth = 0
        self.plots = plots
        self.verdicts = verdicts
        # The seeded regression (--mutant) the run had, as "name (file)": kept under
        # environment.versions[MUTANT_KEY], since it changes what the components are.
        self.mutant = {MUTANT_KEY: mutant} if mutant else {}
        env.versions = {**env.versions, **self.mutant}
        self.writer = ResultsWriter(
            self.path, Results(run_id=run_id, started_at=utc_now(), environment=env)
        )
        self._t0 = time.perf_counter()
        self.comparer = Comparer(baseline, profile.regression) if baseline is not None else None
        self.fail_on_regression = profile.regression.fail_run
        self.baseline_errors = list(baseline.errors) if baseline is not None else []
        if self.comparer is not None:
            self.writer.results.comparison = self.comparer.comparison
        self._tables_file = tables.path.name if tables.path else None
        self._outcomes: dict[str, TestOutcome] = {}
        verdicts.listeners.append(self.on_verdict)
        tables.listeners.append(self.on_tables)
        plots.listeners.append(self.on_plot)
        with self.timed():
            self.writer.write()  # at once, so the file exists from the start

    @property
    def results(self) -> Results:
        return self.writer.results

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Counts the time spent in report work (nested blocks once) for the overhead figure."""
        self._depth += 1
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.seconds += time.perf_counter() - t0

    def on_verdict(self, verdict: Verdict) -> None:
        with self.timed():
            fig = Figure.of(verdict)
            self.results.figures.append(fig)
            if self.comparer is not None:
                self.comparer.add(fig)
            self.writer.write()

    def on_tables(self, tables: list[Table]) -> None:
        with self.timed():
            self.results.tables = [TableData.of(t) for t in tables]
            self.writer.write()

    def on_plot(self, plot: Plot) -> None:
        with self.timed():
            rel = str(plot.path.relative_to(self.results_dir))
            kept = [p for p in self.results.plots if p.file != rel]
            self.results.plots = [*kept, PlotFile(file=rel, title=plot.title, suite=plot.suite)]
            self.writer.write()

    def on_cluster(
        self, provider: str, versions: Mapping[str, str], timings_s: Mapping[str, float]
    ) -> None:
        """The cluster is up (or attached): its provider, versions and start phases."""
        with self.timed():
            env = self.results.environment
            env.cluster_provider = provider
            env.versions = {**versions, **self.mutant}
            env.cluster_timings_s = dict(timings_s)
            self.writer.write()

    def on_preflight(self, data: Mapping[str, Any]) -> None:
        """What preflight found on the cluster (facts, permissions, the suites' outlook)."""
        with self.timed():
            self.results.environment.preflight = dict(data)
            self.writer.write()

    def on_conformance(self, data: Mapping[str, Any]) -> None:
        """The AI Conformance checklist the run filled (report/aic)."""
        with self.timed():
            self.results.conformance = dict(data)
            self.writer.write()

    def on_test_report(self, report: pytest.TestReport) -> None:
        """Keeps one outcome per test (the worst of its phases); written at its teardown."""
        with self.timed():
            prev = self._outcomes.get(report.nodeid)
            outcome = _outcome(report)
            if prev is None or (prev.outcome == "passed" and outcome != "passed"):
                prev = TestOutcome(
                    nodeid=report.nodeid,
                    outcome=outcome,  # type: ignore[arg-type]
                    duration_s=(prev.duration_s if prev else 0.0),
                    message=_message(report),
                )
            prev.duration_s += report.duration
            self._outcomes[report.nodeid] = prev
            if report.when == "teardown":
                self.results.tests.append(self._outcomes.pop(report.nodeid))
                self.writer.write()

    def attach_to_allure(
        self, item: pytest.Item, suite: str, failed: bool, logs: Path | None
    ) -> None:
        with self.timed():
            mine = [v for v in self.verdicts.verdicts if v.nodeid == item.nodeid]
            allure_out.attach_to_test(mine, self.plots.of_suite(suite), logs, failed)

    @property
    def regressions(self) -> list[FigureChange]:
        return self.comparer.regressions if self.comparer is not None else []

    def finish(self, exit_status: int, alluredir: Path | None) -> None:
        """Final results.json (with MISSING figures and the overhead), summary.md, Allure env."""
        with self.timed():
            if self.comparer is not None:
                self.comparer.finish()
            res = self.results
            # Only what exists: a run without tables has no tables.md.
            named = {"verdicts": VERDICTS_FILE, "tables": self._tables_file, "logs": "logs"}
            res.files = {
                role: name + ("/" if role == "logs" else "")
                for role, name in named.items()
                if name and (self.results_dir / name).exists()
            }
            res.files["summary"] = SUMMARY_FILE
            res.status = "finished"
            res.finished_at = utc_now()
            res.exit_status = exit_status
            res.wall_s = time.perf_counter() - self._t0
            res.report_overhead_s = self.seconds + self.plots.seconds
            self.writer.write()
            try:
                summary = redact.scrub(summary_markdown(res, self.path))
                write_atomic(self.results_dir / SUMMARY_FILE, summary)
            except OSError as exc:
                self.writer.error = self.writer.error or f"could not write summary: {exc}"
            if alluredir is not None:
                allure_out.write_environment(
                    alluredir, res.environment, res.run_id, self.path, res.conformance
                )
        # The last write's own time is counted too, so the file's figure is a floor.
        res.report_overhead_s = self.seconds + self.plots.seconds


def command_line() -> list[str]:
    return list(sys.argv)
