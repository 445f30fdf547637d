"""Scale scenarios: built-ins, errors that name the file and field, Kueue's generator config."""

from __future__ import annotations

import textwrap

import pytest

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.scale import kueueperf
from pytest_k8sai.scale.scenario import KUEUE_PERF, builtin_names, load_scenario

GOOD = """
name: mine
target_wall_s: 60
nodes: {count: 2}
submit: {qps: 10, burst: 5}
cohorts:
  - class_name: co
    count: 1
    queue_sets:
      - class_name: cq
        count: 2
        nominal_quota: 8
        workload_sets:
          - count: 3
            creation_interval_ms: 100
            workloads:
              - {class_name: small, runtime_ms: 1000, request: 1}
"""


def _write(tmp_path, text, name="scenario.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_builtins_load_and_fill_the_nodes_exactly():
    names = builtin_names()
    assert {"scale-tiny", "scale-small", "scale-5k", "scale-1k", KUEUE_PERF} <= set(names)
    expected_nodes = {"scale-tiny": 10, "scale-small": 100, "scale-5k": 500, "scale-1k": 1000}
    for name, nodes in expected_nodes.items():
        s = load_scenario(name)
        assert s.name == name
        assert s.nodes.count == nodes and s.nodes.gpus_per_node == 8
        assert s.quota_gpus == s.nodes.gpus  # quotas sum to the GPUs the nodes have
    assert load_scenario("scale-1k").target_wall_s == 1800


def test_a_user_file_loads_with_defaults(tmp_path):
    s = load_scenario(str(_write(tmp_path, GOOD)))
    assert s.nodes.gpus_per_node == 8
    qs = s.cohorts[0].queue_sets[0]
    assert qs.borrowing_limit is None and qs.reclaim_within_cohort == "Never"
    assert qs.workload_sets[0].workloads[0].priority == 0


def test_a_bad_field_names_the_file_and_the_field(tmp_path):
    path = _write(tmp_path, GOOD.replace("nodes: {count: 2}", "nodes: {count: 2, gpus: 4}"))
    with pytest.raises(K8saiError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert str(path) in msg and "field 'nodes.gpus'" in msg and "\n" not in msg

    path = _write(tmp_path, GOOD.replace("request: 1", "request: 0"), "zero.yaml")
    with pytest.raises(K8saiError, match=r"zero\.yaml.*workload_sets\.0\.workloads\.0\.request"):
        load_scenario(path)

    path = _write(tmp_path, GOOD.replace("count: 2\n        nominal", "count: 2\n  nominal"))
    with pytest.raises(K8saiError, match="not valid YAML at line"):
        load_scenario(path)


def test_quota_beyond_the_nodes_and_oversized_requests_are_refused(tmp_path):
    path = _write(tmp_path, GOOD.replace("nominal_quota: 8", "nominal_quota: 9"))
    with pytest.raises(K8saiError, match="sum to 18 GPUs, more than the 16 GPUs"):
        load_scenario(path)
    text = GOOD.replace("nominal_quota: 8", "nominal_quota: 8\n        borrowing_limit: 2")
    path = _write(tmp_path, text.replace("request: 1", "request: 11"), "big.yaml")
    with pytest.raises(K8saiError, match=r"cohorts\.0\.queue_sets\.0'.*class 'small'.* 11 GPUs"):
        load_scenario(path)
    # Without a borrowing limit the cohort's 16 GPUs bound a workload.
    path = _write(tmp_path, GOOD.replace("request: 1", "request: 17"), "huge.yaml")
    with pytest.raises(K8saiError, match=r"field 'cohorts\.0'.*17 GPUs.*16 GPUs"):
        load_scenario(path)


def test_unknown_names_and_non_mappings(tmp_path):
    with pytest.raises(K8saiError, match=r"no built-in scenario.*scale-tiny"):
        load_scenario("scale-huge")
    path = _write(tmp_path, "- 1\n")
    with pytest.raises(K8saiError, match="must be a YAML mapping with 'name'"):
        load_scenario(path)
    dup = GOOD + GOOD[GOOD.index("  - class_name: co") :]
    with pytest.raises(K8saiError, match=r"repeat class_name \['co'\]"):
        load_scenario(_write(tmp_path, dup, "dup.yaml"))


KUEUE_STYLE = """
cohorts:
  - className: cohort
    count: 2
    queuesSets:
    - className: cq
      count: 3
      nominalQuota: 20
      borrowingLimit: 100
      reclaimWithinCohort: Any
      withinClusterQueue: LowerPriority
      workloadsSets:
      - count: 4
        creationIntervalMs: 100
        workloads:
        - {className: small, runtimeMs: 200, priority: 50, request: "1"}
"""


def test_kueue_generator_converts_with_the_budget_from_its_rangespec(tmp_path):
    gen = _write(tmp_path, KUEUE_STYLE, "generator.yaml")
    _write(tmp_path, "cmd:\n  maxWallMs: 425_000\n", "rangespec.yaml")
    s = kueueperf.from_kueue_generator(gen)
    assert s.name == KUEUE_PERF and s.target_wall_s == 425
    assert s.nodes.count == 15  # 2 x 3 x 20 = 120 GPUs on 8-GPU nodes
    qs = s.cohorts[0].queue_sets[0]
    assert (qs.nominal_quota, qs.borrowing_limit, qs.reclaim_within_cohort) == (20, 100, "Any")
    assert qs.workload_sets[0].workloads[0].request == 1
    assert s.submit == kueueperf.KUEUE_PERF_SUBMIT


def test_kueue_generator_errors_use_kueues_spelling(tmp_path):
    gen = _write(
        tmp_path, KUEUE_STYLE.replace("request:", "podCount: 2, request:"), "generator.yaml"
    )
    with pytest.raises(K8saiError) as err:
        kueueperf.from_kueue_generator(gen, target_wall_s=10)
    assert "field 'cohorts.0.queuesSets.0.workloadsSets.0.workloads.0.podCount'" in str(err.value)
    assert str(gen) in str(err.value)
    tas = _write(tmp_path, "topology: {}\n" + KUEUE_STYLE, "tas.yaml")
    with pytest.raises(K8saiError, match="Topology-Aware Scheduling config"):
        kueueperf.from_kueue_generator(tas, target_wall_s=10)
    with pytest.raises(K8saiError, match="no rangespec.yaml beside it"):
        kueueperf.from_kueue_generator(_write(tmp_path, KUEUE_STYLE, "g2.yaml"))
    milli = _write(tmp_path, KUEUE_STYLE.replace("nominalQuota: 20", "nominalQuota: 500m"))
    with pytest.raises(K8saiError, match=r"queuesSets\.0\.nominalQuota"):
        kueueperf.from_kueue_generator(milli, target_wall_s=10)


def test_module_path_escaping_and_a_missing_module(tmp_path, monkeypatch):
    assert kueueperf.escaped_module_path("github.com/BurntSushi/toml") == (
        "github.com/!burnt!sushi/toml"
    )
    monkeypatch.setattr(kueueperf, "go_module_cache", lambda: tmp_path)
    with pytest.raises(K8saiError) as err:
        load_scenario(KUEUE_PERF)
    msg = str(err.value)
    assert str(tmp_path) in msg and "go mod download sigs.k8s.io/kueue@v" in msg


def _kueue_baseline():
    try:
        return kueueperf.kueue_generator_path()
    except K8saiError as exc:
        pytest.skip(f"Kueue's module is not downloaded: {exc}")


def test_kueues_baseline_is_read_from_the_module():
    _kueue_baseline()
    s = load_scenario(KUEUE_PERF)
    assert [(c.class_name, c.count) for c in s.cohorts] == [("cohort", 5)]
    (qs,) = s.cohorts[0].queue_sets
    assert qs.count == 6 and qs.nominal_quota == 20 and qs.borrowing_limit == 100
    assert [ws.count for ws in qs.workload_sets] == [350, 100, 50]
    assert s.nodes.count == 75  # 600 GPUs of quota / 8
    spec = kueueperf.load_rangespec(kueueperf.kueue_rangespec_path())
    assert spec.cmd.max_wall_ms == 425_000 == s.target_wall_s * 1000
    assert set(spec.wl_classes_max_avg_time_to_admission_ms) == {"small", "medium", "large"}
    assert "cq" in spec.cluster_queue_classes_min_usage
