"""Seeded regressions (core/mutants.py): the schema, the merge rule, the catalogue, and each
section's application where its component's configuration is made. Pure; no cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from pytest_k8sai import mutantrun, runstate
from pytest_k8sai.clusters.local import controlplane, kueue_manager
from pytest_k8sai.core import mutants
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.profiles import SimReplica, load_profile
from pytest_k8sai.das import slices
from pytest_k8sai.das.mig_catalogue import load_catalogue
from pytest_k8sai.das.planner import best_packing
from pytest_k8sai.gaie import epp, replicas
from pytest_k8sai.kueue import objects, setups

ROOT = Path(__file__).resolve().parents[2]  # the checkout, with suites/
pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _no_mutant() -> Iterator[None]:
    mutants.activate(None)
    yield
    mutants.activate(None)


def _mutant(**changes: object) -> mutants.Mutant:
    return mutants.Mutant(
        name="test-mutant",
        description="d",
        stands_for="s",
        suites=["smoke"],
        changes=mutants.Changes.model_validate(changes),
    )


def _activate(**changes: object) -> mutants.Mutant:
    m = _mutant(**changes)
    mutants.activate(m, Path("/tmp/test-mutant.yaml"))
    return m


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


GOOD = {
    "name": "x",
    "description": "d",
    "stands_for": "s",
    "suites": ["gaie"],
    "changes": {"sim": {"flags": {"enable-kvcache": False}}},
}


# -- schema --------------------------------------------------------------------------------


def test_a_good_file_loads(tmp_path):
    m = mutants.load_mutant(_write(tmp_path, GOOD))
    assert m.changes.sim is not None and m.changes.sim.flags == {"enable-kvcache": False}
    assert m.control_plane() == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"suites": ["kueue", "nightly"]}, "suites.1"),
        ({"changes": {"kueue_manger": {}}}, "changes.kueue_manger"),
        ({"changes": {}}, "changes"),
        ({"changes": {"sim": {"flags": {}}}}, "changes.sim.flags"),
        ({"name": "Bad_Name"}, "name"),
        ({"changes": {"slices": {"gpus": "1g.5gb"}}}, "changes.slices.gpus"),
    ],
)
def test_a_bad_file_gives_one_paragraph_naming_file_and_field(tmp_path, change, field):
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(mutants.MutantError) as err:
        mutants.load_mutant(path)
    msg = str(err.value)
    assert str(path) in msg and f"field '{field}'" in msg
    assert "\n" not in msg and "Traceback" not in msg


def test_a_file_that_is_no_mapping_or_no_yaml_is_named(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(mutants.MutantError, match=r"must be a YAML mapping with 'name'"):
        mutants.load_mutant(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(mutants.MutantError, match=r"is not valid YAML at line"):
        mutants.load_mutant(path)


def test_resolve_takes_a_catalogue_name_or_a_path_and_names_what_is_known(tmp_path):
    assert mutants.resolve("epp-prefix-weight-zero").name == "epp-prefix-weight-zero.yaml"
    path = _write(tmp_path, GOOD)
    assert mutants.resolve(str(path)) == path.resolve()
    with pytest.raises(mutants.MutantError, match="no mutant of that name.*epp-prefix"):
        mutants.resolve("no-such-mutant")


# -- the merge rule ------------------------------------------------------------------------


def test_deep_merge_mappings_recursively_and_null_deletes():
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    assert mutants.deep_merge(base, {"a": {"b": 9, "e": {"f": None, "g": 1}}, "d": None}) == {
        "a": {"b": 9, "c": 2, "e": {"g": 1}}
    }
    assert base == {"a": {"b": 1, "c": 2}, "d": 3}  # not changed


def test_deep_merge_lists_of_named_items_by_identity():
    base = {
        "plugins": [{"type": "queue-scorer"}, {"type": "prefix-cache-scorer"}],
        "profiles": [
            {"name": "default", "plugins": [{"pluginRef": "a", "weight": 2}, {"pluginRef": "b"}]}
        ],
    }
    overlay = {
        "plugins": [{"type": "random-picker"}, {"type": "queue-scorer", "$delete": True}],
        "profiles": [{"name": "default", "plugins": [{"pluginRef": "a", "weight": 0}]}],
    }
    assert mutants.deep_merge(base, overlay) == {
        "plugins": [{"type": "prefix-cache-scorer"}, {"type": "random-picker"}],
        "profiles": [
            {"name": "default", "plugins": [{"pluginRef": "a", "weight": 0}, {"pluginRef": "b"}]}
        ],
    }


def test_deep_merge_replaces_plain_lists_scalars_and_on_request():
    assert mutants.deep_merge({"l": [1, 2]}, {"l": [3]}) == {"l": [3]}
    assert mutants.deep_merge({"x": {"a": 1}}, {"x": 5}) == {"x": 5}
    named = {"l": [{"name": "a", "v": 1}, {"name": "b"}]}
    assert mutants.deep_merge(named, {"l": {"$replace": [{"name": "c"}]}}) == {"l": [{"name": "c"}]}
    assert mutants.deep_merge({"x": {"a": 1}}, {"x": {"$replace": {"b": 2}}}) == {"x": {"b": 2}}


# -- the catalogue -------------------------------------------------------------------------


def test_the_catalogue_spans_every_suite_with_at_least_12_mutants():
    catalogue = mutants.load_catalogue()
    assert len(catalogue) >= 12
    assert {"kueue", "das", "gaie"} <= {s for m in catalogue for s in m.suites}
    assert [m.name for m in catalogue] == mutants.catalogue_names()  # file name = name


@pytest.mark.parametrize("name", mutants.catalogue_names())
def test_each_catalogue_mutant_applies_to_the_shipped_configuration(name, tmp_path):
    mutant, path = mutants.load(name)
    assert path.name == f"{name}.yaml" and mutant.stands_for.strip()
    mutants.activate(mutant, path)
    profile = load_profile("local")
    # Every section a mutant sets must change what its component is given.
    c = mutant.changes
    if c.kueue_manager:
        assert kueue_manager.mutated_config(_kueue_config()) != _kueue_config()
    if c.kube_scheduler:
        assert controlplane.scheduler_config(tmp_path / "kc") != _scheduler_base(tmp_path)
    if c.kueue_setups:
        mutated = setups.load_setups()
        mutants.activate(None)
        assert mutated != setups.load_setups()
    if c.cluster_queues:
        assert _cq().body()["spec"] != _base_cq_body()["spec"]
    if c.epp:
        mutated_epp = epp.load_configs(epp.DEFAULT_CONFIGS)
        mutants.activate(None)
        assert mutated_epp != epp.load_configs(epp.DEFAULT_CONFIGS)
    if c.sim:
        assert replicas.sim_args("m", 1, SimReplica(), 64) != _base_sim_args()
    if c.slices:
        assert slices.mutated_layout(profile) is not None


def _kueue_config() -> dict:
    return {"clientConnection": {"qps": 1000, "burst": 2000}, "namespace": "kueue-system"}


def _scheduler_base(tmp_path: Path) -> dict:
    saved = mutants.active(), mutants.active_path()
    mutants.activate(None)
    try:
        return controlplane.scheduler_config(tmp_path / "kc")
    finally:
        mutants.activate(*saved)


def _cq() -> objects.ClusterQueueSpec:
    return objects.ClusterQueueSpec(
        name="cq", flavor="f", quotas=[objects.Quota(name="nvidia.com/gpu", nominal="8")]
    )


def _base_cq_body() -> dict:
    saved = mutants.active(), mutants.active_path()
    mutants.activate(None)
    try:
        return _cq().body()
    finally:
        mutants.activate(*saved)


def _base_sim_args() -> list[str]:
    saved = mutants.active(), mutants.active_path()
    mutants.activate(None)
    try:
        return replicas.sim_args("m", 1, SimReplica(), 64)
    finally:
        mutants.activate(*saved)


# -- each section where its configuration is made --------------------------------------------


def test_kueue_manager_section_overlays_the_configuration():
    assert kueue_manager.mutated_config(_kueue_config()) == _kueue_config()  # no mutant
    _activate(
        kueue_manager={
            "clientConnection": {"qps": 2, "burst": 2},
            "waitForPodsReady": {"timeout": "5m", "blockAdmission": True},
        }
    )
    assert kueue_manager.mutated_config(_kueue_config()) == {
        "clientConnection": {"qps": 2, "burst": 2},
        "namespace": "kueue-system",
        "waitForPodsReady": {"timeout": "5m", "blockAdmission": True},
    }


def test_kube_scheduler_section_writes_profiles_only_when_asked(tmp_path):
    base = controlplane.scheduler_config(tmp_path / "kc")
    assert "profiles" not in base and base["clientConnection"]["qps"] == 1000
    strategy = {"type": "MostAllocated", "resources": [{"name": "nvidia.com/gpu", "weight": 1}]}
    _activate(
        kube_scheduler={
            "podInitialBackoffSeconds": 10,
            "profiles": [
                {
                    "schedulerName": "default-scheduler",
                    "pluginConfig": [
                        {"name": "NodeResourcesFit", "args": {"scoringStrategy": strategy}}
                    ],
                }
            ],
        }
    )
    cfg = controlplane.scheduler_config(tmp_path / "kc")
    assert cfg["podInitialBackoffSeconds"] == 10
    assert cfg["profiles"][0]["pluginConfig"][0]["args"]["scoringStrategy"]["type"] == (
        "MostAllocated"
    )
    assert cfg["clientConnection"] == base["clientConnection"]


def test_control_plane_fingerprint_and_marker(tmp_path):
    assert mutants.control_plane_fingerprint(None) == ""
    assert mutants.control_plane_fingerprint(_mutant(sim={"flags": {"x": 1}})) == ""
    a = mutants.control_plane_fingerprint(_mutant(kueue_manager={"a": 1}))
    b = mutants.control_plane_fingerprint(_mutant(kueue_manager={"a": 2}))
    assert a.startswith("test-mutant:") and a != b
    assert controlplane.started_with(tmp_path) == ""  # a cluster from before mutants
    _activate(kube_scheduler={"podMaxBackoffSeconds": 60})
    controlplane.scheduler_args(tmp_path, controlplane.Ports.allocate(), tmp_path / "kc")
    assert controlplane.started_with(tmp_path) == mutants.control_plane_fingerprint(
        mutants.active()
    )
    assert yaml.safe_load((tmp_path / "scheduler.yaml").read_text())["podMaxBackoffSeconds"] == 60


def test_kueue_setups_section_overlays_named_setups_and_star():
    base = {s.name: s for s in setups.load_setups()}
    _activate(
        kueue_setups={
            "*": {"queueing_strategy": "StrictFIFO"},
            "priority": {"priorities": {"large": None, "medium": 1000}},
            "two-cqs-borrowing": {"cluster_queues": [{"name": "medium", "cohort": None}]},
        }
    )
    got = {s.name: s for s in setups.load_setups()}
    assert got["priority"].priorities == {"medium": 1000}
    assert base["priority"].priorities == {"large": 1000}
    cqs = {c.name: c for c in got["two-cqs-borrowing"].cluster_queues}
    assert cqs["medium"].cohort is None and cqs["large"].cohort == "whisper"
    assert {s.queueing_strategy for n, s in got.items() if s.kueue} == {"StrictFIFO"}
    assert got["pure-jobs"] == base["pure-jobs"]  # "*" is for setups that use Kueue


def test_kueue_setups_section_errors_name_the_mutant_and_field():
    _activate(kueue_setups={"best-effort-fifo": {"cluster_queues": [{"name": "gpus", "share": 2}]}})
    with pytest.raises(K8saiError) as err:
        setups.load_setups()
    msg = str(err.value)
    assert "mutant 'test-mutant'" in msg and "changes.kueue_setups" in msg and "share" in msg
    _activate(kueue_setups={"best-effort-fif0": {"title": "x"}})
    with pytest.raises(mutants.MutantError, match=r"'best-effort-fif0' is not among"):
        setups.load_setups()


def test_cluster_queues_section_reaches_every_cluster_queue_body():
    _activate(cluster_queues={"spec": {"queueingStrategy": "StrictFIFO"}})
    spec = _cq().body()["spec"]
    assert spec["queueingStrategy"] == "StrictFIFO"
    assert spec["resourceGroups"] == _base_cq_body()["spec"]["resourceGroups"]


def test_epp_section_merges_plugins_and_profiles_by_name():
    base = epp.load_configs(epp.DEFAULT_CONFIGS)
    _activate(
        epp={
            "prefix-aware": {
                "plugins": [{"type": "random-picker"}],
                "schedulingProfiles": [
                    {
                        "name": "default",
                        "plugins": [
                            {"pluginRef": "prefix-cache-scorer", "weight": 0},
                            {"pluginRef": "random-picker"},
                        ],
                    }
                ],
            }
        }
    )
    got = epp.load_configs(epp.DEFAULT_CONFIGS)
    assert got["random"] == base["random"]
    pa = got["prefix-aware"]
    assert [p["type"] for p in pa["plugins"]][-1] == "random-picker"
    refs = {p["pluginRef"]: p.get("weight") for p in pa["schedulingProfiles"][0]["plugins"]}
    assert refs == {
        "queue-scorer": 2,
        "kv-cache-utilization-scorer": 2,
        "prefix-cache-scorer": 0,
        "random-picker": None,
    }


def test_epp_section_refuses_an_unknown_configuration_name():
    _activate(epp={"prefix_aware": {"plugins": []}})
    with pytest.raises(mutants.MutantError, match=r"changes\.epp.*'prefix_aware' is not among"):
        epp.load_configs(epp.DEFAULT_CONFIGS)


def test_sim_section_replaces_appends_and_removes_flags():
    args = ["--model", "m", "--force-dummy-tokenizer", "--enable-kvcache", "--kv-cache-size", "8"]
    assert replicas.with_flags(args, {"enable-kvcache": False, "--seed": 7, "model": None}) == [
        "--force-dummy-tokenizer",
        "--kv-cache-size",
        "8",
        "--enable-kvcache=false",
        "--seed=7",
    ]
    assert replicas.with_flags(["--port=1"], {"port": 2}) == ["--port=2"]
    _activate(sim={"flags": {"enable-kvcache": False}})
    got = replicas.sim_args("m", 1, SimReplica(), 64)
    assert "--enable-kvcache=false" in got and "--enable-kvcache" not in got


def test_slices_section_replaces_the_planner_layout_on_the_slice_nodes():
    profile = load_profile("local")
    gpu = load_catalogue().gpu(profile.capabilities.gpu_nodes.product)
    plan = best_packing(gpu, profile.total_gpus, {"1g.5gb": 16, "3g.20gb": 16})
    assert slices.mutated_layout(profile) is None
    _activate(slices={"gpus": [["3g.20gb", "3g.20gb"], ["1g.5gb"] * 7]})
    assert slices.mutated_layout(profile) == [{"3g.20gb": 2, "1g.5gb": 7}]
    (body,) = slices.slice_node_bodies(profile, plan, "run")
    alloc = body["status"]["allocatable"]
    assert alloc["nvidia.com/mig-3g.20gb"] in (2, "2") and alloc["nvidia.com/mig-1g.5gb"] in (
        7,
        "7",
    )


@pytest.mark.parametrize(
    ("gpus", "says"),
    [
        ([["7g.40gb", "1g.5gb"]], "needs 9 memory"),
        ([["2g.99gb"]], "'2g.99gb' does not exist"),
        ([["1g.5gb"]] * 9, "9 GPUs listed"),
    ],
)
def test_slices_section_errors_name_the_field(gpus, says):
    _activate(slices={"gpus": gpus})
    with pytest.raises(mutants.MutantError, match=says) as err:
        slices.mutated_layout(load_profile("local"))
    assert "changes.slices.gpus" in str(err.value)


# -- activation ----------------------------------------------------------------------------


def test_activation_refuses_control_plane_mutants_on_existing_clusters():
    rosa = load_profile("rosa")
    with pytest.raises(K8saiError, match=r"kueue_manager.*only the local tier"):
        runstate.activate_mutant("kueue-api-throttled", rosa)
    assert runstate.activate_mutant("kueue-cohort-removed", rosa) is not None
    assert mutants.active() is not None and mutants.active().name == "kueue-cohort-removed"
    assert runstate.activate_mutant(None, rosa) is None and mutants.active() is None


def test_activation_refuses_a_running_cluster_started_with_another_control_plane(
    tmp_path, monkeypatch
):
    running = SimpleNamespace(ready=True, run_dir=tmp_path, dead=lambda: [])
    monkeypatch.setattr(runstate.local_state, "load", lambda name: running)
    local = load_profile("local")
    assert runstate.activate_mutant("epp-prefix-weight-zero", local) is not None  # no change
    with pytest.raises(K8saiError, match=r"started without a mutant.*--mutant=kueue-api-thr"):
        runstate.activate_mutant("kueue-api-throttled", local)
    (tmp_path / controlplane.MUTANT_MARKER).write_text(
        mutants.control_plane_fingerprint(mutants.load("kueue-api-throttled")[0])
    )
    assert runstate.activate_mutant("kueue-api-throttled", local) is not None  # same: reused
    with pytest.raises(K8saiError, match=r"started with mutant kueue-api-throttled.*without"):
        runstate.activate_mutant(None, local)


# -- the runner's bookkeeping --------------------------------------------------------------


def test_runner_reads_failed_verdicts_and_decides_caught(tmp_path):
    lines = [
        {
            "figure": "hit rate",
            "threshold": 0.5,
            "passed": False,
            "key": "gaie_prefix_hit_rate_min",
        },
        {"figure": "ttft", "threshold": None, "passed": True},
        {"figure": "itl", "threshold": 9, "passed": True},
        {"figure": "other", "threshold": 1, "passed": False},
    ]
    path = tmp_path / "verdicts.jsonl"
    path.write_text("\n".join(json.dumps(v) for v in lines) + "\nnot json\n")
    assert mutantrun.failed_verdicts(path) == ["gaie_prefix_hit_rate_min: hit rate", "other"]
    assert mutantrun.failed_verdicts(tmp_path / "missing") == []

    def result(status: int, verdicts: list[str]) -> mutantrun.MutantResult:
        return mutantrun.MutantResult("m", "what", ["gaie"], status, 75.0, verdicts)

    assert result(1, []).caught and result(0, ["x"]).caught and not result(0, []).caught
    assert result(3, []).caught_text() == "ERROR (exit 3: no cluster)"
    table = mutantrun.markdown([result(1, ["k: f"]), result(0, [])])
    assert "| m | what | yes: k: f | 1m 15s |" in table and "1/2 caught (50 %)" in table
    mutantrun.write_tables([result(1, ["k: f"])], tmp_path)
    assert json.loads((tmp_path / mutantrun.TABLE_JSON).read_text())["score"] == 1.0


def test_a_later_run_into_the_same_directory_keeps_the_earlier_mutants(tmp_path):
    def result(name: str, caught: bool) -> mutantrun.MutantResult:
        return mutantrun.MutantResult(name, "what", ["kueue"], 1 if caught else 0, 60.0)

    mutantrun.write_tables(
        [result("kueue-strict-fifo", True), result("epp-prefix-weight-zero", False)], tmp_path
    )
    earlier = mutantrun.earlier_results(tmp_path)
    assert [r.name for r in earlier] == ["kueue-strict-fifo", "epp-prefix-weight-zero"]
    # Re-running one of them replaces it; the other is kept; catalogue order.
    both = mutantrun.merged(earlier, [result("epp-prefix-weight-zero", True)])
    assert [(r.name, r.caught) for r in both] == [
        ("epp-prefix-weight-zero", True),
        ("kueue-strict-fifo", True),
    ]
    assert mutantrun.earlier_results(tmp_path / "none") == []


def test_runner_command_uses_checkout_paths_or_the_installed_suites(tmp_path):
    cmd = mutantrun.pytest_command("m", ["gaie"], tmp_path / "out", ROOT)
    assert cmd[1:] == [
        "-m", "pytest", "--cluster=local", "-m", "pr", "--mutant", "m", "suites/gaie",
        "--results-dir", str(tmp_path / "out"), "-p", "no:cacheprovider",
    ]  # fmt: skip
    assert mutantrun.suite_args(["kueue", "das"], tmp_path) == [
        "--pyargs",
        "k8sai_suites.kueue",
        "k8sai_suites.das",
    ]


# -- the option, end to end through an inner session (no cluster) ----------------------------


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("K8SAI_LOCAL_CLUSTER", "mutants-unit-none")  # no such cluster runs
    pytester.makepyfile(test_inner="def test_nothing():\n    pass\n")

    def _run(*args: str) -> pytest.RunResult:
        return pytester.runpytest("-p", "pytest_k8sai.plugin", "-p", "no:cacheprovider", *args)

    return _run


def test_mutant_option_names_the_mutant_in_results_and_summary(inner, pytester):
    res = inner("--cluster=local", "--mutant", "epp-prefix-weight-zero", "--results-dir", "r")
    res.assert_outcomes(passed=1)
    env = json.loads((pytester.path / "r" / "results.json").read_text())["environment"]
    assert env["versions"]["mutant"].startswith("epp-prefix-weight-zero (")
    assert "mutant epp-prefix-weight-zero" in (pytester.path / "r" / "summary.md").read_text()


def test_a_bad_mutant_is_a_usage_error_in_one_paragraph(inner, pytester):
    (pytester.path / "bad.yaml").write_text("name: x\ncolour: red\n")
    res = inner("--cluster=local", "--mutant", "bad.yaml")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    err = res.stderr.str()
    assert "Mutant file" in err and "field 'colour'" in err and "Traceback" not in err
