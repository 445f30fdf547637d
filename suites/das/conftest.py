"""The GPU slicing experiments of the paper (sections 3.3.2 and 4.2): one session-wide set of
runs per experiment arm, shared by the tests that check it, and the paper-shaped tables."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.core.apis import KUEUE_CRD
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.progress import progress
from pytest_k8sai.core.session_runs import SessionRuns
from pytest_k8sai.das import plots as das_plots
from pytest_k8sai.das import slices as das
from pytest_k8sai.das.provenance import own_slices
from pytest_k8sai.das.runs import (
    DAS_SLICED,
    KUEUE_SLICED,
    SLICED,
    WHOLE,
    ArmResult,
    Experiment,
    experiments,
    run_arm,
    slice_plan,
)
from pytest_k8sai.das.slowdown import load_slowdown
from pytest_k8sai.das.tables import kueue_table, slicing_table
from pytest_k8sai.workloads.whisper import load_trace

EXPERIMENTS_KEY = pytest.StashKey[dict[str, Experiment]]()


def _check_profile(config: pytest.Config) -> dict[str, Experiment]:
    """Validate the profile's slicing settings against the catalogue before any cluster
    exists: an unknown GPU product or MIG profile is a usage error listing the known ones."""
    from pytest_k8sai.runstate import get_state

    profile = get_state(config).profile
    exps = experiments(profile, load_trace())
    wanted = profile.das_suite.experiments
    if wanted is not None and (unknown := sorted(set(wanted) - set(exps))):
        raise pytest.UsageError(
            f"Profile field 'das_suite.experiments' names unknown experiments {unknown}; "
            f"known: {sorted(exps)}."
        )
    if profile.capabilities.mig.enabled:
        try:
            for exp in exps.values():
                slice_plan(profile, exp.jobs)
            if own_slices(profile):  # the suite's own slices need a fitted slowdown per profile
                sd = load_slowdown()
                for mig_profile in profile.das_suite.slices.values():
                    sd.factor(mig_profile)
        except K8saiError as exc:
            raise pytest.UsageError(str(exc)) from None
    return {n: e for n, e in exps.items() if wanted is None or n in wanted}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(item.path.parent.name == "das" for item in items):
        config.stash[EXPERIMENTS_KEY] = _check_profile(config)


class DasExperiments(SessionRuns[tuple[str, str], ArmResult]):
    """Runs of each (experiment, arm), made on first request and kept for the session."""

    def __init__(
        self, cluster, exps: dict[str, Experiment], run_id: str, runs: int, plots=None
    ) -> None:
        super().__init__()
        self.cluster = cluster
        self.exps = exps
        self.run_id = run_id
        self.runs = runs
        self.plots = plots  # PlotLog: redrawn after each new run, so a crash keeps them

    def draw(self) -> None:
        if self.plots is not None:
            profile = self.cluster.profile
            das_plots.render(self.plots, self.results, profile.time_compression, profile.simulated)

    def get(self, exp_name: str, arm_name: str) -> list[ArmResult]:
        if exp_name not in self.exps:
            pytest.skip(f"experiment '{exp_name}' is not in profile field das_suite.experiments")
        exp = self.exps[exp_name]
        arm = next(a for a in exp.arms if a.name == arm_name)

        def run(number: int) -> ArmResult:
            return run_arm(self.cluster, exp, arm, run=number, run_id=self.run_id, log=progress)

        return self.runs_of((exp_name, arm_name), self.runs, f"{exp_name}/{arm_name}", run)


def _live_missing(cluster) -> dict[str, str]:
    """On an existing cluster, what the profile claims but the cluster lacks."""
    profile = cluster.profile
    missing: dict[str, str] = {}
    if profile.simulated:
        return missing  # the suite simulates MIG itself on KWOK nodes
    if profile.capabilities.mig.enabled and not das.mig_capable_nodes(cluster.core):
        missing["mig"] = f"no node is labelled {das.MIG_CAPABLE_LABEL}=true"
    if profile.capabilities.das and (why := das.das_missing(cluster.api_client)):
        missing["das"] = why
    return missing


@pytest.fixture(scope="session")
def das_experiments(cluster, k8sai_run_id, k8sai_report, k8sai_plots, pytestconfig):
    profile = cluster.profile
    if not profile.simulated and not profile.whisper.image and not profile.workload.sleep:
        pytest.skip(
            f"profile '{profile.name}' names no Whisper job image (whisper.image) and its "
            "workload does not hold the GPU with sleep (workload.sleep), so its Jobs would "
            "never end"
        )
    cluster.missing.update(_live_missing(cluster))
    runs = pytestconfig.getoption("runs") or profile.das_suite.runs
    exps = pytestconfig.stash.get(EXPERIMENTS_KEY, None) or _check_profile(pytestconfig)
    exp = DasExperiments(cluster, exps, k8sai_run_id, runs, plots=k8sai_plots)
    yield exp
    tc = profile.time_compression
    for name in ("limited", "full"):
        whole = exp.results.get((name, WHOLE.name))
        sliced = exp.results.get((name, SLICED.name))
        if whole and sliced:
            k8sai_report.add(
                slicing_table(
                    name,
                    exps[name].title,
                    whole,
                    sliced,
                    tc,
                    profile.simulated,
                    das=exp.results.get((name, DAS_SLICED.name)) or (),
                )
            )
    kq = exp.results.get(("kueue", KUEUE_SLICED.name))
    if kq:
        arms = {
            a.name: exp.results[("full", a.name)]
            for a in (WHOLE, SLICED)
            if exp.results.get(("full", a.name))
        }
        arms[KUEUE_SLICED.name] = kq
        titles = {a.name: a.title for a in (WHOLE, SLICED, KUEUE_SLICED)}
        k8sai_report.add(kueue_table(arms, titles, tc))


@pytest.fixture(scope="session")
def kueue_installed(cluster):
    try:
        client.ApiextensionsV1Api(cluster.api_client).read_custom_resource_definition(KUEUE_CRD)
    except ApiException as exc:
        pytest.skip(f"Kueue is not installed on this cluster: CRD {KUEUE_CRD} -> HTTP {exc.status}")
