"""Pure parts of the GPU slicing suite: concurrency from watch records, Kueue quota peaks,
DAS webhook and AllocationClaim checks, simulated slice nodes, the Table 5 slowdown fixture,
tables, JCT plots, and profile errors raised before anything is created."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.profiles import load_profile
from pytest_k8sai.das import plots as das_plots
from pytest_k8sai.das import slices as das
from pytest_k8sai.das.mig_catalogue import CatalogueError
from pytest_k8sai.das.runs import (
    KUEUE_SLICED,
    SLICED,
    WHOLE,
    ArmResult,
    experiments,
    peak_admitted,
    peak_concurrency,
    slice_plan,
)
from pytest_k8sai.das.slowdown import SLOWDOWN_PATH, load_slowdown
from pytest_k8sai.das.tables import LOCAL_NOTE, kueue_table, slicing_table
from pytest_k8sai.measure.joblatency import JobRecord, summarize
from pytest_k8sai.report.plots import PlotLog
from pytest_k8sai.workloads.jobs import whisper_job
from pytest_k8sai.workloads.whisper import load_trace


def _rec(name, model, running, finished, completed=None, created=0.0, admissions=()):
    return JobRecord(
        name=name,
        created=created,
        model=model,
        admissions=list(admissions),
        pod_running=running,
        pod_finished=finished,
        completed=completed if completed is not None else finished,
    )


def test_peak_concurrency_counts_ends_before_starts_at_one_instant():
    recs = {
        "a": _rec("a", "medium", 1.0, 5.0),
        "b": _rec("b", "medium", 2.0, 6.0),
        # Starts when a's pod ends: the slice was freed first, so never 3 at once.
        "c": _rec("c", "large", 5.0, 9.0, completed=9.5),
        "d": _rec("d", "large", None, None),  # never ran
    }
    assert peak_concurrency(recs) == 2


def test_peak_concurrency_uses_pod_end_not_job_completion():
    # The Job's Complete arrives after the next pod started on the freed GPU.
    recs = {"a": _rec("a", "m", 0.0, 1.0, completed=1.3), "b": _rec("b", "m", 1.1, 2.0)}
    assert peak_concurrency(recs) == 1


def test_peak_admitted_per_resource_with_eviction():
    res = {"medium": "nvidia.com/mig-1g.5gb", "large": "nvidia.com/mig-3g.20gb"}
    recs = {
        "a": _rec("a", "medium", 0, 4, admissions=[(0.0, None)]),
        "b": _rec("b", "medium", 0, 4, admissions=[(1.0, 2.0), (3.0, None)]),
        "c": _rec("c", "large", 0, 4, admissions=[(0.5, None)]),
    }
    assert peak_admitted(recs, res) == {res["medium"]: 2, res["large"]: 1}


def test_webhook_problems():
    good = {
        "metadata": {"name": "p"},
        "spec": {
            "schedulerName": "das-scheduler",
            "containers": [{"resources": {"limits": {"mig.das.com/1g.5gb": "1"}}}],
        },
    }
    assert das.webhook_problems(good, {"nvidia.com/mig-1g.5gb": 1}) == []
    bad = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"resources": {"limits": {"nvidia.com/mig-1g.5gb": "1"}}}]},
    }
    problems = das.webhook_problems(bad, {"nvidia.com/mig-1g.5gb": 1})
    assert len(problems) == 3 and "schedulerName" in problems[0]


def test_claim_watcher_records_states_and_release():
    w = das.ClaimWatcher(api=None, das_namespace="das-operator", namespace="ns1")  # type: ignore[arg-type]

    def claim(name, ns, state):
        return {
            "metadata": {"name": name},
            "spec": {"profile": "1g.5gb", "podRef": {"namespace": ns, "name": f"pod-{name}"}},
            "status": {"state": state},
        }

    assert w.observe([claim("c1", "ns1", "staged"), claim("x", "other", "inUse")], 1.0) == ["c1"]
    w.observe([claim("c1", "ns1", "inUse")], 2.0)
    w.observe([], 3.0)
    c1 = w.claims()["c1"]
    assert c1.pod == "pod-c1" and c1.states == {"staged": 1.0, "inUse": 2.0} and c1.gone == 3.0
    assert "x" not in w.claims()


def test_slice_nodes_expose_only_the_layout():
    profile = load_profile("local")
    plan = slice_plan(profile, load_trace().alternating(("medium", "large")))
    (node,) = das.slice_node_bodies(profile, plan, "run-1")
    alloc = node["status"]["allocatable"]
    assert "nvidia.com/gpu" not in alloc
    assert alloc["nvidia.com/mig-1g.5gb"] == "16" and alloc["nvidia.com/mig-3g.20gb"] == "12"
    assert node["metadata"]["labels"][das.MIG_CAPABLE_LABEL] == "true"
    assert node["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}


def test_whisper_job_asks_for_the_given_resource():
    body = whisper_job(
        load_profile("local"), "j", "ns", model="medium", run_s=1.0, audio_s=9.0,
        resource="nvidia.com/mig-1g.5gb",
    )  # fmt: skip
    res = body["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res["limits"] == {"nvidia.com/mig-1g.5gb": "1"} == res["requests"]


def test_experiments_follow_the_paper():
    exps = experiments(load_profile("local"), load_trace())
    assert [j.name for j in exps["limited"].jobs][:3] == ["medium-0", "large-0", "medium-1"]
    assert len(exps["limited"].jobs) == 8 and len(exps["full"].jobs) == 32
    assert exps["full"].arms == (WHOLE, SLICED)


def test_unknown_gpu_product_or_profile_is_an_error_before_anything_is_created():
    profile = load_profile("local")
    jobs = load_trace().jobs
    gpus = profile.capabilities.gpu_nodes.model_copy(update={"product": "NVIDIA-T4"})
    caps = profile.capabilities.model_copy(update={"gpu_nodes": gpus})
    with pytest.raises(CatalogueError, match="known products"):
        slice_plan(profile.model_copy(update={"capabilities": caps}), jobs)
    suite = profile.das_suite.model_copy(update={"slices": {"medium": "2g.20gb", "large": "x"}})
    with pytest.raises(CatalogueError, match="known profiles"):
        slice_plan(profile.model_copy(update={"das_suite": suite}), jobs)
    suite = profile.das_suite.model_copy(update={"slices": {"medium": "1g.5gb"}})
    with pytest.raises(K8saiError, match="das_suite.slices"):
        slice_plan(profile.model_copy(update={"das_suite": suite}), jobs)


def test_slowdown_fixture_is_what_its_generator_writes():
    path = Path(__file__).resolve().parents[2] / "fixtures" / "make_mig_slowdown.py"
    spec = importlib.util.spec_from_file_location("make_mig_slowdown", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert SLOWDOWN_PATH.read_text() == module.render()
    sd = load_slowdown()
    assert sd.factor("3g.20gb") < sd.factor("1g.5gb")
    for r in sd.ratios.values():  # within 2 % of each paper ratio
        assert abs(r["fit"] / r["paper"] - 1) < 0.02
    with pytest.raises(K8saiError, match="known: 1g.5gb, 3g.20gb"):
        sd.factor("7g.40gb")


def _arm(arm, peak, best, jcts, queue=0.0):
    recs = {
        f"j{i}": JobRecord(
            name=f"j{i}", created=0.0, model="medium", admissions=[(queue, None)],
            pod_running=queue, pod_finished=t, completed=t,
        )
        for i, t in enumerate(jcts)
    }  # fmt: skip
    return ArmResult(
        experiment="full", arm=arm, run=1, stats=summarize(recs), records=recs, written_s={},
        resource_of={}, best=best, layout="L", peak=peak, wall_s=1.0,
    )  # fmt: skip


def test_tables_are_in_paper_minutes_and_say_local_is_not_das():
    whole = [_arm(WHOLE, 8, 8, [28.0, 28.0])]
    sliced = [_arm(SLICED, 28, 28, [18.0, 18.0])]
    t = slicing_table("full", "Full", whole, sliced, 60.0, simulated=True)
    rows = {r[0]: r[1:] for r in t.rows}
    assert rows["Mean JCT, min"][:2] == ["28.0", "18.0"]  # 28 wall s x 60 / 60
    assert rows["Concurrent jobs (peak)"] == ["8", "28", "8", "25"]
    assert rows["Packing efficiency (peak/best)"] == ["1.00", "1.00", "1.00", "0.89"]
    assert LOCAL_NOTE in t.notes and "NOT DAS" in LOCAL_NOTE
    k = kueue_table({"whole": whole, "sliced": sliced}, {"whole": "W", "sliced": "S"}, 60.0)
    assert k.headers == ["Metric", "W", "S"]


def test_jct_cdfs_per_experiment_in_paper_minutes_with_kueue_on_the_full_trace(tmp_path):
    results = {
        ("limited", WHOLE.name): [_arm(WHOLE, 8, 8, [10.0, 14.0])],
        ("limited", SLICED.name): [_arm(SLICED, 8, 8, [13.0, 17.0])],
        ("full", WHOLE.name): [_arm(WHOLE, 8, 8, [28.0, 30.0]), _arm(WHOLE, 8, 8, [26.0])],
        ("full", SLICED.name): [],  # an arm that crashed before its first run: left out
        ("kueue", KUEUE_SLICED.name): [_arm(KUEUE_SLICED, 28, 28, [18.0, 20.0])],
    }
    full = das_plots.jct_series(results, "full", 120.0)
    assert full == {"Whole GPUs": [56.0, 60.0, 52.0], "MIG slices + Kueue": [36.0, 40.0]}
    log = PlotLog(tmp_path / "plots")
    drawn = das_plots.render(log, results, 120.0, simulated=True)
    assert [p.path.name for p in drawn] == ["das-limited-jct-cdf.png", "das-full-jct-cdf.png"]
    assert all(p.path.stat().st_size > 10_000 and p.suite == "das" for p in drawn)
    # Before any run finished there is nothing to draw (and no error).
    assert das_plots.render(PlotLog(tmp_path / "none"), {}, 120.0, simulated=True) == []
