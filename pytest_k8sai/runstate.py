"""Per-session state the plugin computes once and the fixtures read (kept on ``config.stash``)."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_k8sai.clusters import check_reach_flags
from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.clusters.local import controlplane
from pytest_k8sai.clusters.local import state as local_state
from pytest_k8sai.core import mutants
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.profiles import LOCAL_CLUSTER_ENV, Profile, load_profile
from pytest_k8sai.core.verdicts import VERDICTS_FILE, VerdictLog
from pytest_k8sai.report import redact
from pytest_k8sai.report.aic import session as aic_checklist
from pytest_k8sai.report.aic.evidence import EvidenceLog
from pytest_k8sai.report.baseline import load_baseline
from pytest_k8sai.report.plots import PLOTS_DIR, PlotLog
from pytest_k8sai.report.session import RunReport, command_line, environment
from pytest_k8sai.report.tables import TableLog

if TYPE_CHECKING:  # preflight imports this module
    from pytest_k8sai.clusters.preflight.report import Preflight

# Free space a run needs under --results-dir: results.json with raw samples, plots and logs.
MIN_FREE_BYTES = 64 * 1024 * 1024
TABLES_FILE = "tables.md"


@dataclass
class RunState:
    profile: Profile
    run_id: str
    results_dir: Path
    kubeconfig: str | None
    context: str | None
    keep_cluster: bool
    verdicts: VerdictLog
    tables: TableLog
    # Lines for the end-of-run summary (kept kubeconfig, where logs went, cleanup problems).
    notes: list[str] = field(default_factory=list)
    # What teardown could not remove (objects found on a cluster that outlives the run, a
    # cluster not destroyed): an interrupted run's last line names them or says there are none.
    left_behind: list[str] = field(default_factory=list)
    plots: PlotLog = field(default_factory=lambda: PlotLog(None))
    # results.json, the baseline comparison and summary.md (None in sessions without them).
    report: RunReport | None = None
    cluster: ClusterHandle | None = None
    # What preflight found once the cluster was up (None before, or if it could not read).
    preflight: Preflight | None = None
    # What the AI-conformance checks (@pytest.mark.aic) saw, for the checklist.
    aic: EvidenceLog = field(default_factory=EvidenceLog)
    # --aic-report / --aic-requirements, the marked checks collected, and the filled checklist.
    aic_session: aic_checklist.AicSession = field(default_factory=aic_checklist.AicSession)

    def header_lines(self) -> list[str]:
        """What pytest prints under its own header: profile, run id, results, baseline."""
        p = self.profile
        lines = [
            f"k8sai: profile {p.name} (provider {p.provider}), run id {self.run_id}",
            f"k8sai: results in {self.results_dir}",
        ]
        report = self.report
        if report is not None and report.comparer is not None:
            comp = report.comparer.comparison
            if comp.baseline_files:
                lines.append(
                    f"k8sai: baseline {len(comp.baseline_files)} file(s), run(s) "
                    f"{', '.join(comp.baseline_run_ids)}"
                )
            lines += [f"k8sai: BASELINE ERROR: {e}" for e in report.baseline_errors]
        return lines

    def finish_conformance(self) -> None:
        """Fill the AI Conformance checklist from the marked checks (if the run had any, or
        --aic-report asked for one): results.json, aic-checklist.yaml, --aic-report."""
        s = self.aic_session
        if not s.wanted or self.report is None:
            return
        version = self.preflight.facts.version if self.preflight is not None else ""
        p = self.profile
        try:
            s.result = aic_checklist.finish(
                s,
                version="" if version == "unknown" else version,
                tier=aic_checklist.tier_of(p.name, p.provider, p.local.gpu_nodes == "real"),
                outcomes=self.report.results.tests,
                verdicts=self.verdicts.verdicts,
                evidence=self.aic,
                results_json=self.report.path,
                metadata=p.conformance.metadata,
                run_id=self.run_id,
            )
        except K8saiError as exc:
            s.error = str(exc)
            self.notes.append(f"AI conformance checklist not written: {exc}")
            return
        self.report.on_conformance(s.result.as_dict())

    def attach_cluster(self, handle: ClusterHandle) -> None:
        """The cluster is up: its versions go into the results file, and the credentials
        this run holds for it are masked in everything the run writes."""
        self.cluster = handle
        redact.remember_handle(handle)
        if self.report is not None:
            self.report.on_cluster(handle.provider, handle.versions, handle.timings)


STATE = pytest.StashKey[RunState]()


def get_state(config: pytest.Config) -> RunState:
    try:
        return config.stash[STATE]
    except KeyError:
        raise pytest.UsageError(
            "pytest-k8sai fixtures were requested but the k8sai plugin did not configure this "
            "session; load it with '-p pytest_k8sai.plugin' or install the pytest-k8sai package."
        ) from None


def start_session(config: pytest.Config) -> RunState:
    """The session's state from the command line: the profile (checked), the results
    directory (checked before anything runs), the baseline and the results writer."""
    opt = config.option
    profile = load_profile(opt.cluster)
    check_reach_flags(profile, kubeconfig=opt.kubeconfig, context=opt.context)
    # Relative to where pytest was started, so a later chdir cannot move it.
    results_dir = (config.invocation_params.dir / Path(opt.results_dir)).resolve()
    check_results_dir(results_dir)
    # Read before this run writes anything: the baseline may be the results dir's last run.
    baseline = None
    if opt.baseline:
        baseline = load_baseline((config.invocation_params.dir / opt.baseline).resolve())
    mutant = activate_mutant(getattr(opt, "mutant", None), profile)
    if token_env := profile.kueue_suite.metrics_token_env:
        redact.remember(os.environ.get(token_env))  # masked before any test may print it
    run_id = new_run_id()
    state = RunState(
        profile=profile,
        run_id=run_id,
        results_dir=results_dir,
        kubeconfig=opt.kubeconfig,
        context=opt.context,
        keep_cluster=opt.keep_cluster,
        verdicts=VerdictLog(results_dir / VERDICTS_FILE, run_id=run_id),
        tables=TableLog(results_dir / TABLES_FILE),
        plots=PlotLog(results_dir / PLOTS_DIR),
    )
    state.aic_session = aic_checklist.AicSession.from_options(
        getattr(opt, "aic_report", None),
        getattr(opt, "aic_requirements", None),
        config.invocation_params.dir,
    )
    if not opt.collectonly and not opt.help:
        state.report = RunReport(
            results_dir=results_dir,
            run_id=run_id,
            env=environment(profile, config.rootpath, command_line()),
            verdicts=state.verdicts,
            tables=state.tables,
            plots=state.plots,
            baseline=baseline,
            profile=profile,
            mutant=mutants.describe_active() if mutant is not None else None,
        )
    return state


def activate_mutant(spec: str | None, profile: Profile) -> mutants.Mutant | None:
    """Make ``--mutant`` the session's active mutant, before any cluster starts. A mutant
    that changes the control plane needs a local cluster started with exactly it: never one
    that is kept running from another run (with another mutant or none)."""
    mutants.activate(None)  # also clears a previous in-process session's mutant
    if not spec:
        mutant = None
    else:
        mutant, path = mutants.load(spec)
        if mutant.control_plane() and profile.provider != "local":
            raise K8saiError(
                f"--mutant={spec} changes {', '.join(mutant.control_plane())}, which only the "
                f"local tier starts; profile '{profile.name}' (provider {profile.provider}) "
                "attaches to a cluster whose control plane it cannot change."
            )
        mutants.activate(mutant, path)
    if profile.provider == "local":
        _check_running_cluster(profile.local.cluster_name, mutant)
    return mutant


def _check_running_cluster(name: str, mutant: mutants.Mutant | None) -> None:
    running = local_state.load(name)
    if running is None or not running.ready or running.dead():
        return  # none, or a stale one the provider removes before starting anew
    had = controlplane.started_with(running.run_dir)
    want = mutants.control_plane_fingerprint(mutant)
    if had == want:
        return
    now = f"with --mutant={mutant.name}" if want and mutant is not None else "without a mutant"
    before = f"with mutant {had.split(':')[0]}" if had else "without a mutant"
    raise K8saiError(
        f"The local cluster '{name}' is running, started {before}, and this run is "
        f"{now}; its Kueue manager and kube-scheduler configuration differ, so it cannot be "
        f"reused. Name another cluster for this run with ${LOCAL_CLUSTER_ENV}=<name>, or stop "
        f"it with '{LOCAL_CLUSTER_ENV}={name} k8sai local down'."
    )


def new_run_id() -> str:
    """UTC timestamp plus a short random suffix; also a valid Kubernetes label value."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def check_results_dir(
    path: Path, flag: str = "--results-dir", min_free: int = MIN_FREE_BYTES
) -> None:
    """Fail early (without creating anything) if results could not be written under ``path``:
    not a directory, not writable, or less than ``min_free`` bytes free on its filesystem."""
    try:
        found = path.exists()
    except OSError as exc:  # e.g. a name longer than the filesystem allows
        raise K8saiError(f"{flag}={path}: {exc.strerror or exc}.") from None
    if found:
        if not path.is_dir():
            raise K8saiError(f"{flag}={path}: exists but is not a directory.")
        target = path
    else:
        target = path.parent
        while not target.exists():
            target = target.parent
        if not target.is_dir():
            raise K8saiError(
                f"{flag}={path}: cannot create it because {target} is a file, not a directory."
            )
    if not os.access(target, os.W_OK | os.X_OK):
        raise K8saiError(
            f"{flag}={path}: {target} is not writable; choose another directory with {flag}."
        )
    free = shutil.disk_usage(target).free
    if free < min_free:
        raise K8saiError(
            f"{flag}={path}: only {free / 2**20:.1f} MiB free on the filesystem of {target}; a "
            f"run needs at least {min_free / 2**20:.0f} MiB for its results, plots and logs. "
            f"Free some space or choose another directory with {flag}."
        )
