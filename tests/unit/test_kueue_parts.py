"""Unit tests of the Kueue suite's pure parts: setups as data, log parsing, histogram windows,
tables."""

from __future__ import annotations

import json
import math

import pytest

from pytest_k8sai.core.errors import K8saiError, ProfileError
from pytest_k8sai.kueue.log import KueueLog, parse_attempts
from pytest_k8sai.kueue.setups import Setup, load_setups, plan
from pytest_k8sai.measure.prometheus import Histogram
from pytest_k8sai.report.tables import Table, TableLog


def _line(msg, cycle, **kv):
    return json.dumps(
        {
            "level": "Level(-2)",
            "ts": f"t{cycle}",
            "logger": "scheduler",
            "msg": msg,
            "schedulingCycle": cycle,
            **kv,
        }
    )


def test_five_paper_setups_load_in_order():
    names = [s.name for s in load_setups()]
    assert names == ["pure-jobs", "best-effort-fifo", "priority", "preemption", "two-cqs-borrowing"]


def test_plan_splits_gpus_and_prefixes_names():
    two = next(s for s in load_setups() if s.name == "two-cqs-borrowing")
    p = plan(two, "ns", 8)
    cqs = [b for b, plural in p.cluster_objects if plural == "clusterqueues"]
    assert [c["metadata"]["name"] for c in cqs] == ["ns-medium", "ns-large"]
    quotas = [
        c["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"] for c in cqs
    ]
    assert quotas == ["4", "4"]
    assert {c["spec"]["cohortName"] for c in cqs} == {"ns-whisper"}
    assert p.queue_of == {"medium": "medium", "large": "large"}


def test_plan_priority_classes_and_preemption():
    pre = next(s for s in load_setups() if s.name == "preemption")
    p = plan(pre, "ns", 8)
    kinds = {b["kind"]: b for b, _ in p.cluster_objects}
    assert kinds["WorkloadPriorityClass"]["value"] == 1000
    assert kinds["ClusterQueue"]["spec"]["preemption"] == {"withinClusterQueue": "LowerPriority"}
    assert p.priority_class_of == {"large": "ns-large"}


def test_setup_that_cannot_fit_fails_before_creating_anything():
    two = next(s for s in load_setups() if s.name == "two-cqs-borrowing")
    with pytest.raises(K8saiError, match="not a whole number of GPUs"):
        plan(two, "ns", 3)
    with pytest.raises(K8saiError, match="needs GPUs"):
        plan(two, "ns", 0)


def test_setup_validation_names_the_problem(tmp_path):
    with pytest.raises(ValueError, match="undeclared ClusterQueues"):
        Setup(
            name="x",
            title="x",
            cluster_queues=[{"name": "a", "share": 1}],
            local_queues={"medium": "a", "large": "b"},
        )
    bad = tmp_path / "setups.yaml"
    bad.write_text("setups:\n  - name: x\n    title: x\n    bogus: 1\n")
    with pytest.raises(ProfileError, match=r"setups\.0\.bogus"):
        load_setups(bad)


def test_parse_attempts_subtracts_wait_and_pairs_cycles():
    lines = [
        _line("Scheduling cycle starts", 1),
        _line("Obtained heads", 1, headCount=2, waitDuration=1.5),
        "not json at all",
        _line("Scheduling cycle complete", 1, duration=1.5042),
        _line("Obtained heads", 2, headCount=1, waitDuration=0.25),
        _line("Scheduling cycle complete", 2, duration=0.2501),
        _line("Scheduling cycle complete", 3, duration=9.0),  # no heads: shutdown, not an attempt
    ]
    attempts = parse_attempts(lines)
    assert [a.cycle for a in attempts] == [1, 2]
    assert attempts[0].duration_s == pytest.approx(0.0042)
    assert attempts[1].heads == 1


def test_kueue_log_reads_only_after_mark(tmp_path):
    log = tmp_path / "kueue.log"
    log.write_text(
        _line("Obtained heads", 1, waitDuration=0)
        + "\n"
        + _line("Scheduling cycle complete", 1, duration=0.001)
        + "\n"
    )
    k = KueueLog(log)
    mark = k.mark()
    with log.open("a") as fh:
        fh.write(_line("Obtained heads", 2, waitDuration=0) + "\n")
        fh.write(_line("Scheduling cycle complete", 2, duration=0.003) + "\n")
    assert [a.cycle for a in k.attempts_since(mark)] == [2]
    assert KueueLog(tmp_path / "absent.log").mark() == 0


def test_histogram_windows_subtract_and_add():
    before = Histogram("h", ((0.005, 2.0), (math.inf, 3.0)), 3, 0.01)
    after = Histogram("h", ((0.005, 5.0), (math.inf, 7.0)), 7, 0.03)
    window = after.minus(before)
    assert window.buckets == ((0.005, 3.0), (math.inf, 4.0)) and window.count == 4
    both = window.plus(window)
    assert both.count == 8 and both.buckets[0] == (0.005, 6.0)


def test_table_text_and_markdown(tmp_path):
    t = Table("Title", ["Setup", "n"], [["a", "1"], ["long name", "22"]], ["a note"])
    title, header, rule, *rows, note = t.text()
    assert title == "Title" and header.split() == ["Setup", "n"] and note == "a note"
    assert rows[0].endswith(" 1") and len(rows[0]) == len(rows[1])
    log = TableLog(tmp_path / "tables.md")
    log.add(t)
    assert "| long name | 22 |" in (tmp_path / "tables.md").read_text()


def _run_result(records, kueue=True):
    from pytest_k8sai.kueue.runs import RunResult
    from pytest_k8sai.measure.joblatency import summarize

    recs = {r.name: r for r in records}
    return RunResult(
        setup="s",
        run=1,
        kueue=kueue,
        stats=summarize(recs),
        records=recs,
        admission_order=[],
        written_s={},
        attempts_ms=None,
        histogram=None,
    )


def test_latencies_split_start_from_the_wait_after_a_gpu_frees():
    from pytest_k8sai.measure.joblatency import JobRecord

    first = JobRecord(
        name="a", created=0.0, admissions=[(0.1, None)], pod_running=0.15, completed=5.0
    )
    queued = JobRecord(
        name="b", created=0.2, admissions=[(5.4, None)], pod_running=5.46, completed=9.0
    )
    retry, start = _run_result([first, queued]).latencies_ms()
    assert start == pytest.approx([50.0, 60.0])
    # a: capacity there at creation -> 100 ms; b: GPU freed at 5.0, admitted at 5.4 -> 400 ms.
    assert retry == pytest.approx([100.0, 400.0])


def test_latencies_without_kueue_use_pod_start():
    from pytest_k8sai.measure.joblatency import JobRecord

    first = JobRecord(
        name="a", created=0.0, admissions=[(0.0, None)], pod_running=0.03, completed=5.0
    )
    pending = JobRecord(
        name="b", created=0.1, admissions=[(0.1, None)], pod_running=6.5, completed=9.0
    )
    retry, start = _run_result([first, pending], kueue=False).latencies_ms()
    assert start == pytest.approx([30.0])  # only pods that found a free GPU at creation
    assert retry == pytest.approx([1500.0])  # freed at 5.0, Running at 6.5: scheduler backoff


def test_without_kueue_the_gpu_frees_when_the_pod_ends_not_when_the_job_completes():
    from pytest_k8sai.measure.joblatency import JobRecord

    # a's pod ends at 5.0, kube-scheduler binds b's pod at 5.05, the node starts it at 6.2;
    # the Job controller marks a Complete only at 5.3, after b was bound.
    first = JobRecord(
        name="a", created=0.0, admissions=[(0.0, None)], pod_bound=0.01, pod_running=0.03,
        pod_finished=5.0, completed=5.3,
    )  # fmt: skip
    pending = JobRecord(
        name="b", created=0.1, admissions=[(0.1, None)], pod_bound=5.05, pod_running=6.2,
        pod_finished=9.0, completed=9.3,
    )  # fmt: skip
    retry, start = _run_result([first, pending], kueue=False).latencies_ms()
    assert retry == pytest.approx([50.0])  # not 6.2 - (no completion before) or an older one
    assert start == pytest.approx([30.0])


def test_recorder_sees_the_pod_bound_before_running():
    from pytest_k8sai.measure.joblatency import JobLatencyRecorder

    rec = JobLatencyRecorder(None, "ns", kueue=False)  # type: ignore[arg-type]
    pod = {"metadata": {"name": "p", "labels": {"job-name": "j"}}, "spec": {}, "status": {}}
    rec.on_event("Pod", "ADDED", pod, 1.0)
    rec.on_event("Pod", "MODIFIED", {**pod, "spec": {"nodeName": "n"}}, 2.0)
    running = {**pod, "spec": {"nodeName": "n"}, "status": {"phase": "Running"}}
    rec.on_event("Pod", "MODIFIED", running, 3.0)
    r = rec.records()["j"]
    assert (r.pod_created, r.pod_bound, r.pod_running) == (1.0, 2.0, 3.0)


def test_parse_admissions_keeps_decision_order_for_one_namespace():
    from pytest_k8sai.kueue.log import parse_admissions

    def assumed(ns, name):
        return json.dumps(
            {
                "msg": "Workload assumed in the cache",
                "schedulingCycle": 1,
                "workload": {"name": name, "namespace": ns},
            }
        )

    lines = [
        assumed("a", "w2"),
        assumed("b", "x"),
        "garbage Workload assumed in the cache",
        assumed("a", "w1"),
    ]
    assert parse_admissions(lines, "a") == ["w2", "w1"]


def test_parse_attempts_of_one_namespace_keeps_the_cycles_that_took_its_workloads():
    def head(msg, cycle, ns):
        return _line(msg, cycle, workload={"name": f"w-{ns}", "namespace": ns})

    lines = [
        _line("Obtained heads", 1, headCount=2, waitDuration=0),
        head("Attempting to schedule workload", 1, "a"),
        head("Workload re-queued", 1, "b"),
        _line("Scheduling cycle complete", 1, duration=0.004),
        _line("Obtained heads", 2, headCount=1, waitDuration=0),
        head("Workload re-queued", 2, "b"),  # inadmissible at nomination: only this line
        _line("Scheduling cycle complete", 2, duration=0.002),
        _line("Obtained heads", 3, headCount=1, waitDuration=0),
        head("Attempting to schedule workload", 3, "a"),
        _line("Scheduling cycle complete", 3, duration=0.003),
        _line("Obtained heads", 4, headCount=1, waitDuration=0),
        # Some lines print the Workload as text: namespace/name.
        _line("Workload couldn't be admitted.", 4, workload="b/w-b"),
        _line("Scheduling cycle complete", 4, duration=0.003),
    ]
    assert [a.cycle for a in parse_attempts(lines, "a")] == [1, 3]
    assert [a.cycle for a in parse_attempts(lines, "b")] == [1, 2, 4]
    assert [a.cycle for a in parse_attempts(lines)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("per_node", "nodes"), [(2, 1), (4, 1), (6, 1), (8, 1), (2, 2), (4, 2), (8, 2)]
)
def test_every_setup_plans_whole_gpu_quotas_at_each_cluster_size(per_node, nodes):
    """The quotas are shares of the GPUs found: each setup fits 2, 4, 6 and 8 GPUs per node on
    one node or two, and its ClusterQueues' quotas add up to the GPUs there are."""
    total = per_node * nodes
    for setup in load_setups():
        p = plan(setup, "ns", total)
        quotas = [
            int(c["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"])
            for c, plural in p.cluster_objects
            if plural == "clusterqueues"
        ]
        assert sum(quotas) == (total if setup.kueue else 0), setup.name
