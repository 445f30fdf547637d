"""The runner's pure parts: budget, due queue and finisher, pacer stop, node bodies, the
result record and its summary, and the local tier's pids from its state file."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from pytest_k8sai.clusters.local.state import STATE_FILE, live_pids
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.scale import nodes
from pytest_k8sai.scale.budget import Budget
from pytest_k8sai.scale.finisher import DueQueue, Finisher
from pytest_k8sai.scale.procstats import ProcFigures
from pytest_k8sai.scale.record import Recorder
from pytest_k8sai.scale.results import ScaleResult, write
from pytest_k8sai.scale.scenario import Nodes, Submit
from pytest_k8sai.scale.submit import Pacer
from pytest_k8sai.scale.summary import fill_workload_figures, proc_results, submit_figures


class Clock:
    def __init__(self, now=50.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, dt):
        self.now += dt


def test_the_budget_is_target_times_factor_and_names_the_phase_it_ran_out_in():
    clock = Clock()
    b = Budget(100, 1.5, clock=clock)
    assert b.limit_s == 150
    b.enter("nodes")
    clock.now += 100
    assert not b.expired() and b.remaining() == 50
    b.enter("submit")
    clock.now += 50
    assert b.expired() and b.expired_in == "submit"
    b.enter("drain")
    assert b.expired() and b.expired_in == "submit"  # the first phase it ran out in
    assert b.remaining() == 0
    with pytest.raises(K8saiError):
        Budget(0)


def test_due_queue_orders_by_time_then_insertion():
    q: DueQueue[str] = DueQueue()
    q.push(5.0, "late")
    q.push(1.0, "a")
    q.push(1.0, "b")
    assert q.next_due() == 1.0 and len(q) == 3
    assert q.pop_due(0.5) is None
    assert [q.pop_due(1.0), q.pop_due(1.0), q.pop_due(1.0)] == ["a", "b", None]
    assert q.pop_due(9.0) == "late" and q.next_due() is None


def test_the_finisher_runs_due_items_and_counts_failures():
    seen, done = [], threading.Event()

    def handle(item):
        seen.append(item)
        if item == "bad":
            raise ValueError("HTTP 500")
        if len(seen) == 3:
            done.set()

    f = Finisher(handle, workers=1)
    f.submit(0.0, "a")
    f.submit(0.0, "bad")
    f.submit(0.0, "c")
    f.submit(1e12, "never")  # not due before stop()
    assert done.wait(5)
    f.stop()
    assert sorted(seen) == ["a", "bad", "c"]
    assert (f.done, f.failed) == (2, 1) and f.errors == ["ValueError: HTTP 500"]
    assert f.pending() == 1


def test_the_pacer_stops_when_asked_and_says_so():
    clock = Clock()
    sent = []
    rep = Pacer(100, 1, clock=clock, sleep=clock.sleep, cpu_clock=lambda: 0.0).run(
        [0.0, 1.0, 2.0, 3.0], sent.append, stop=lambda: clock.now >= 52.0
    )
    assert sent == [0, 1] and not rep.complete and len(rep.sent) == 2
    fig = submit_figures(rep, Submit(qps=100, burst=1), planned=4)
    assert (fig.sent, fig.planned, fig.complete) == (2, 4, False)
    assert fig.lag_max_ms == 0


def test_node_bodies_carry_the_run_labels_and_gpus():
    bodies = nodes.node_bodies(Nodes(count=3, gpus_per_node=8), "k1", "scale-abc")
    assert [b["metadata"]["name"] for b in bodies] == ["k1-node-0", "k1-node-1", "k1-node-2"]
    labels = bodies[0]["metadata"]["labels"]
    assert labels["k8sai.io/run-id"] == "scale-abc"
    assert labels["k8sai.io/created-by"] == "pytest-k8sai"
    assert labels["type"] == "kwok-scale"  # not the profile nodes' "kwok"
    assert bodies[0]["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert nodes.ready_count([ready, {"status": {}}, ready]) == 2


def test_the_result_record_summarises_and_writes(tmp_path):
    rec = Recorder({"a": ("small", 1.0), "b": ("small", 1.0)})
    rec.on_submitted("a", 10.0)
    rec.on_submitted("b", 10.0)
    adm = [{"type": "QuotaReserved", "status": "True"}, {"type": "Admitted", "status": "True"}]
    fin = [*adm, {"type": "Finished", "status": "True"}]
    rec.on_event("MODIFIED", {"metadata": {"name": "a"}, "status": {"conditions": adm}}, 11.0)
    rec.on_event("MODIFIED", {"metadata": {"name": "a"}, "status": {"conditions": fin}}, 12.0)
    rec.sample_depth(12.0)
    res = ScaleResult(
        scenario="scale-tiny", run_id="r", provider="local", started_utc="t", budget_s=180
    )
    res.plan = {"workloads": 2}
    fill_workload_figures(res, rec, queues_start=9.0, submit_start=10.0)
    assert not res.complete and res.wall_s is None  # b never finished
    assert res.pending_depth == [(2.0, 1, 0, 1)] and res.max_pending == 1
    assert res.rates.admissions == 1
    res.stopped = "budget of 180 s spent in phase drain"
    assert res.how_far() == (
        "no nodes; 0/2 submitted, 1 admitted, 1 finished "
        "(stopped: budget of 180 s spent in phase drain)"
    )
    res.processes = proc_results(
        {
            "etcd": ProcFigures("etcd", 7, 1.234, 3 * 1024 * 1024, ""),
            "kueue": ProcFigures("kueue", 8, None, None, "gone"),
        }
    )
    path = write(res, tmp_path / "out" / "scale.json")
    back = json.loads(path.read_text())
    assert back["classes"][0]["avg_to_admission_ms"] == 1000.0
    assert back["processes"][0] == {
        "name": "etcd",
        "pid": 7,
        "cpu_s": 1.23,
        "peak_rss_mib": 3.0,
        "note": "",
    }
    assert ScaleResult.model_validate(back) == res


def test_local_pids_come_from_the_saved_state(tmp_path):
    assert live_pids(tmp_path) == {}
    me = os.getpid()
    exe = Path(f"/proc/{me}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    state = {
        "name": "c",
        "run_dir": str(tmp_path),
        "kubeconfig": str(tmp_path / "k"),
        "ports": json.loads(_ports_json()),
        "processes": [
            {"name": "kueue", "pid": me, "exe": exe, "log": "x"},
            {"name": "etcd", "pid": me, "exe": "/not/this", "log": "x"},  # pid reused
        ],
    }
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    assert live_pids(tmp_path) == {"kueue": me}


def _ports_json() -> str:
    from pytest_k8sai.clusters.local.controlplane import Ports

    fields = Ports.model_fields
    return json.dumps({name: 10000 + i for i, name in enumerate(fields)})


def test_why_a_run_is_incomplete():
    from pytest_k8sai.scale.run import _why_incomplete

    clock = Clock()
    b = Budget(10, 1.0, clock=clock)
    res = ScaleResult(scenario="s", run_id="r", provider="local", started_utc="t", budget_s=10)
    b.enter("drain")
    assert _why_incomplete(b, res) == "ended in phase drain with workloads unfinished; see notes"
    b.enter("nodes")
    clock.now += 11
    assert b.expired()
    assert _why_incomplete(b, res) == "budget of 10 s spent in phase nodes"


class FakeWorkloads:
    """delete_collection answers from ``answers`` (an ApiException or None) and deletes
    ``per_call`` Workloads each time; list returns what is left (limit 1 + remainingItemCount)."""

    def __init__(self, left, per_call, answers):
        self.left, self.per_call, self.answers, self.deletes = left, per_call, list(answers), 0

    def delete_collection_namespaced_custom_object(self, *a, **kw):
        self.deletes += 1
        self.left = max(0, self.left - self.per_call)
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer

    def list_namespaced_custom_object(self, *a, **kw):
        assert kw["limit"] == 1 and kw["label_selector"] == "k8sai.io/run-id=r"
        if not self.left:
            return {"items": [], "metadata": {}}
        return {"items": [{}], "metadata": {"remainingItemCount": self.left - 1}}


def test_workload_deletion_calls_again_after_the_servers_timeout(monkeypatch):
    from kubernetes.client.rest import ApiException

    from pytest_k8sai.scale import run

    monkeypatch.setattr(run.time, "sleep", lambda s: None)
    # 15,000 Workloads, 6,000 deleted per 60 s call before the API server answers 504.
    fake = FakeWorkloads(15_000, 6_000, [ApiException(504, "Gateway Timeout")] * 2)
    assert run._delete_workloads(fake, "v1beta2", "ns", "k8sai.io/run-id=r") is None
    assert fake.deletes == 3 and fake.left == 0


def test_workload_deletion_reports_what_is_left(monkeypatch):
    from kubernetes.client.rest import ApiException

    from pytest_k8sai.scale import run

    monkeypatch.setattr(run.time, "sleep", lambda s: None)
    refused = FakeWorkloads(10, 0, [ApiException(403, "Forbidden")])
    err = run._delete_workloads(refused, "v1beta2", "ns", "k8sai.io/run-id=r")
    assert err == "workloads in ns (k8sai.io/run-id=r): HTTP 403 Forbidden"
    monkeypatch.setattr(run, "WORKLOAD_DELETE_S", 0.0)
    stuck = FakeWorkloads(10, 0, [ApiException(504, "Gateway Timeout")])
    err = run._delete_workloads(stuck, "v1beta2", "ns", "k8sai.io/run-id=r")
    assert err is not None and "10 left after 0 s" in err and "HTTP 504" in err


def test_the_run_client_keeps_one_connection_per_caller():
    from kubernetes import client

    from pytest_k8sai.clusters.apiclient import BoundedApiClient, with_pool_size

    cfg = client.Configuration()
    cfg.host = "https://127.0.0.1:6443"
    base = BoundedApiClient(cfg, 5.0, "/tmp/kubeconfig", "ctx")
    wide = with_pool_size(base, 44)
    assert isinstance(wide, BoundedApiClient)
    assert wide.configuration.connection_pool_maxsize == 44
    assert base.configuration.connection_pool_maxsize != 44  # the suite's client unchanged
    assert wide.configuration.host == cfg.host and wide.default_timeout == base.default_timeout
    assert wide.rest_client.pool_manager.connection_pool_kw["maxsize"] == 44


def test_workload_deletion_says_some_when_the_server_gives_no_count(monkeypatch):
    from kubernetes.client.rest import ApiException

    from pytest_k8sai.scale import run

    class Uncounted(FakeWorkloads):
        def list_namespaced_custom_object(self, *a, **kw):
            return {"items": [{}] if self.left else [], "metadata": {}}

    monkeypatch.setattr(run.time, "sleep", lambda s: None)
    monkeypatch.setattr(run, "WORKLOAD_DELETE_S", 0.0)
    stuck = Uncounted(10, 0, [ApiException(504, "Gateway Timeout")])
    err = run._delete_workloads(stuck, "v1beta2", "ns", "k8sai.io/run-id=r")
    assert err is not None and "some left after 0 s" in err
