"""The Kueue experiment of the paper (sections 3.3.1 and 4.1): one session-wide set of runs per
setup, shared by the tests that check it, and the paper-shaped tables at the end."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.core.apis import KUEUE_CRD
from pytest_k8sai.core.progress import progress
from pytest_k8sai.core.session_runs import SessionRuns
from pytest_k8sai.kueue import plots as kueue_plots
from pytest_k8sai.kueue.runs import RunResult, admission_source, run_once
from pytest_k8sai.kueue.setups import Setup, load_setups
from pytest_k8sai.kueue.tables import table3, table4
from pytest_k8sai.workloads.whisper import WhisperTrace, load_trace


def selected_setups(config: pytest.Config) -> list[Setup]:
    from pytest_k8sai.runstate import get_state

    suite = get_state(config).profile.kueue_suite
    setups = load_setups()
    known = {s.name for s in setups}
    for field, names in (("setups", suite.setups or []), ("pr_setups", suite.pr_setups)):
        unknown = sorted(set(names) - known)
        if unknown:
            raise pytest.UsageError(
                f"Profile field 'kueue_suite.{field}' names unknown setups {unknown}; known: "
                f"{sorted(known)} (kueue/setups.yaml)."
            )
    if suite.setups is None:
        return setups
    return [s for s in setups if s.name in suite.setups]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "setup" in metafunc.fixturenames:
        from pytest_k8sai.runstate import get_state

        pr = set(get_state(metafunc.config).profile.kueue_suite.pr_setups)
        params = [
            pytest.param(s, id=s.name, marks=[pytest.mark.pr] if s.name in pr else [])
            for s in selected_setups(metafunc.config)
        ]
        metafunc.parametrize("setup", params)


class KueueExperiment(SessionRuns[str, RunResult]):
    """Runs of each setup, made on first request and kept for the session."""

    def __init__(self, cluster, trace: WhisperTrace, run_id: str, runs: int, plots=None) -> None:
        super().__init__()
        self.cluster = cluster
        self.trace = trace
        self.run_id = run_id
        self.runs = runs
        self.setups = {s.name: s for s in load_setups()}
        self.plots = plots  # PlotLog: redrawn after each new run, so every test sees them
        # Why admission attempts cannot be read on this cluster ("" when they can).
        self.admission_unavailable = ""

    def draw(self) -> None:
        if self.plots is not None:
            titles = {n: s.title for n, s in self.setups.items()}
            kueue_plots.render(
                self.plots, self.ordered_results(), titles, self.cluster.profile.time_compression
            )

    def get(self, name: str, at_least: int | None = None) -> list[RunResult]:
        def run(number: int) -> RunResult:
            return run_once(
                self.cluster,
                self.setups[name],
                self.trace,
                run=number,
                run_id=self.run_id,
                log=progress,
            )

        return self.runs_of(name, at_least or self.runs, f"setup '{name}'", run)

    def ordered_results(self) -> dict[str, list[RunResult]]:
        return {n: self.results[n] for n in self.setups if self.results.get(n)}


@pytest.fixture(scope="session")
def kueue_experiment(cluster, k8sai_run_id, k8sai_report, k8sai_plots, pytestconfig):
    profile = cluster.profile
    try:
        client.ApiextensionsV1Api(cluster.api_client).read_custom_resource_definition(KUEUE_CRD)
    except ApiException as exc:
        pytest.skip(f"Kueue is not installed on this cluster: CRD {KUEUE_CRD} -> HTTP {exc.status}")
    if not profile.simulated and not profile.whisper.image and not profile.workload.sleep:
        pytest.skip(
            f"profile '{profile.name}' names no Whisper job image (whisper.image) and its "
            "workload does not hold the GPU with sleep (workload.sleep), so its Jobs would "
            "never end"
        )
    runs = pytestconfig.getoption("runs") or profile.kueue_suite.runs
    exp = KueueExperiment(cluster, load_trace(), k8sai_run_id, runs, plots=k8sai_plots)
    exp.admission_unavailable = admission_source(cluster)
    if exp.admission_unavailable:
        progress(f"[k8sai] kueue: admission verdicts left out: {exp.admission_unavailable}")
    yield exp
    results = exp.ordered_results()
    if results:
        titles = {n: s.title for n, s in exp.setups.items()}
        k8sai_report.add(table3(results, titles, profile.time_compression))
        k8sai_report.add(table4(results, titles))
