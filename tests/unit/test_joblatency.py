"""JobLatencyRecorder fed with synthetic watch events; the watch loop against a fake API."""

from __future__ import annotations

import json
import math
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.measure import joblatency
from pytest_k8sai.measure.joblatency import (
    MODEL_LABEL,
    JobFailedError,
    JobLatencyRecorder,
    summarize,
)

NS = "ns"


def job(name: str, *, model: str | None = None, suspend: bool = True, cond: str | None = None):
    labels = {MODEL_LABEL: model} if model else {}
    status = {"conditions": [{"type": cond, "status": "True"}]} if cond else {}
    return {
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"suspend": suspend},
        "status": status,
    }


def workload(job_name: str, **conds: str | tuple[str, str]) -> dict[str, Any]:
    """conds: type=status or type=(status, reason)."""
    out = []
    for ctype, val in conds.items():
        status, reason = val if isinstance(val, tuple) else (val, ctype)
        out.append({"type": ctype, "status": status, "reason": reason})
    return {
        "metadata": {
            "name": f"job-{job_name}-abcde",
            "ownerReferences": [{"kind": "Job", "name": job_name, "apiVersion": "batch/v1"}],
        },
        "status": {"conditions": out},
    }


ADMITTED = {"QuotaReserved": "True", "Admitted": "True"}


def pod(job_name: str, phase: str, *, via: str = "job-name", name: str | None = None):
    meta: dict[str, Any] = {"name": name or f"{job_name}-xyz"}
    if via == "owner":
        meta["ownerReferences"] = [{"kind": "Job", "name": job_name}]
    else:
        meta["labels"] = {via: job_name}
    return {"metadata": meta, "status": {"phase": phase}}


def recorder(kueue: bool = True, cqs: list[str] | None = None) -> JobLatencyRecorder:
    return JobLatencyRecorder(client.ApiClient(), NS, kueue=kueue, cluster_queues=cqs)


def feed(rec: JobLatencyRecorder, events: list[tuple[float, str, str, dict[str, Any]]]) -> None:
    for t, kind, etype, obj in events:
        rec.on_event(kind, etype, obj, t)


def kueue_job_events(name: str, t0: float, q: float, run: float, model: str | None = None):
    return [
        (t0, "Job", "ADDED", job(name, model=model)),
        (t0 + 0.01, "Workload", "ADDED", workload(name)),
        (t0 + q, "Workload", "MODIFIED", workload(name, **ADMITTED)),
        (t0 + q + 0.05, "Job", "MODIFIED", job(name, model=model, suspend=False)),
        (t0 + q + 0.1, "Pod", "ADDED", pod(name, "Pending")),
        (t0 + q + 0.3, "Pod", "MODIFIED", pod(name, "Running")),
        (t0 + q + run, "Job", "MODIFIED", job(name, model=model, suspend=False, cond="Complete")),
    ]


def test_normal_kueue_job():
    rec = recorder()
    feed(rec, kueue_job_events("a", 10.0, q=2.0, run=8.0, model="medium"))
    r = rec.records()["a"]
    assert r.model == "medium" and r.workload == "job-a-abcde"
    assert r.created == 10.0 and r.admissions == [(12.0, None)]
    assert r.unsuspended == pytest.approx(12.05) and r.pod_running == pytest.approx(12.3)
    assert r.completed == 20.0 and not r.failed and r.preemptions == 0
    assert r.queue_s == pytest.approx(2.0) and r.exec_s == pytest.approx(8.0)
    assert r.jct_s == pytest.approx(10.0)
    assert r.first_admitted == r.last_admitted == 12.0


def test_creation_timestamps_of_job_and_workload_are_kept_first_seen():
    rec = recorder()
    j = job("a")
    j["metadata"]["creationTimestamp"] = "2026-11-27T10:00:00Z"
    wl = workload("a")
    wl["metadata"]["creationTimestamp"] = "2026-11-27T10:00:01Z"  # Kueue's FIFO key
    later = workload("a", **ADMITTED)
    later["metadata"]["creationTimestamp"] = "2026-11-27T10:00:09Z"
    feed(rec, [(1.0, "Job", "ADDED", j), (1.2, "Workload", "ADDED", wl)])
    feed(rec, [(2.0, "Workload", "MODIFIED", later)])
    r = rec.records()["a"]
    assert r.creation_timestamp == "2026-11-27T10:00:00Z"
    assert r.workload_creation_timestamp == "2026-11-27T10:00:01Z"


def test_incomplete_job_has_no_latencies():
    rec = recorder()
    feed(rec, kueue_job_events("a", 0.0, q=1.0, run=5.0)[:-1])
    r = rec.records()["a"]
    assert r.jct_s is None and r.queue_s is None and r.exec_s is None
    assert r.admitted_now


def test_pure_job_is_admitted_at_creation_and_ignores_workloads():
    rec = recorder(kueue=False)
    feed(
        rec,
        [
            (1.0, "Job", "ADDED", job("p", suspend=False)),
            (1.2, "Workload", "ADDED", workload("p", **ADMITTED)),  # not Kueue's: ignored
            (1.5, "Pod", "MODIFIED", pod("p", "Running")),
            (5.0, "Job", "MODIFIED", job("p", suspend=False, cond="Complete")),
        ],
    )
    r = rec.records()["p"]
    assert r.admissions == [(1.0, None)] and r.workload is None
    assert r.queue_s == 0.0 and r.exec_s == pytest.approx(4.0) and r.jct_s == pytest.approx(4.0)
    assert rec.admission_order() == ["p"]


def test_preempted_and_readmitted_job():
    rec = recorder()
    evicted = {**ADMITTED, "Evicted": ("True", "Preempted"), "Preempted": ("True", "InCQ")}
    released = {
        "QuotaReserved": ("False", "Pending"),
        "Admitted": ("False", "NoReservation"),
        "Evicted": ("True", "Preempted"),
    }
    readmitted = {**ADMITTED, "Evicted": ("False", "QuotaReserved")}
    feed(
        rec,
        [
            (0.0, "Job", "ADDED", job("a")),
            (1.0, "Workload", "MODIFIED", workload("a", **ADMITTED)),
            (3.0, "Workload", "MODIFIED", workload("a", **evicted)),  # admission ends here
            (3.5, "Workload", "MODIFIED", workload("a", **released)),  # same eviction
            (6.0, "Workload", "MODIFIED", workload("a", **readmitted)),
            # Evicted again, this time shown only by Admitted going False.
            (7.0, "Workload", "MODIFIED", workload("a", QuotaReserved="True", Admitted="False")),
            (7.5, "Workload", "MODIFIED", workload("a", **readmitted)),
            (10.0, "Job", "MODIFIED", job("a", suspend=False, cond="Complete")),
        ],
    )
    r = rec.records()["a"]
    assert r.admissions == [(1.0, 3.0), (6.0, 7.0), (7.5, None)]
    assert r.preemptions == 2 and r.eviction_reasons == ["Preempted", "Admitted"]
    assert r.first_admitted == 1.0 and r.last_admitted == 7.5
    # Waits: 0->1, 3->6, 7->7.5; admitted: 1->3, 6->7, 7.5->10.
    assert r.queue_s == pytest.approx(4.5) and r.exec_s == pytest.approx(5.5)
    assert r.jct_s == pytest.approx(10.0) == r.queue_s + r.exec_s


def test_quota_release_at_finish_is_not_a_preemption():
    rec = recorder()
    finished = {"QuotaReserved": "False", "Admitted": "False", "Finished": "True"}
    feed(
        rec,
        [
            (0.0, "Job", "ADDED", job("a")),
            (1.0, "Workload", "MODIFIED", workload("a", **ADMITTED)),
            # The Workload stream reports Finished before the Job stream reports Complete.
            (4.0, "Workload", "MODIFIED", workload("a", **finished)),
            (4.2, "Job", "MODIFIED", job("a", suspend=False, cond="Complete")),
            (5.0, "Workload", "MODIFIED", workload("a", QuotaReserved="False", Admitted="False")),
        ],
    )
    r = rec.records()["a"]
    assert r.preemptions == 0 and r.admissions == [(1.0, None)]
    assert r.exec_s == pytest.approx(3.2) and r.queue_s == pytest.approx(1.0)


@pytest.mark.parametrize("via", ["job-name", "batch.kubernetes.io/job-name", "owner"])
def test_pods_map_to_jobs(via):
    rec = recorder()
    feed(
        rec,
        [
            (0.0, "Job", "ADDED", job("a")),
            (1.0, "Pod", "ADDED", pod("a", "Pending", via=via)),
            (2.0, "Pod", "MODIFIED", pod("a", "Running", via=via)),
            (3.0, "Pod", "MODIFIED", pod("a", "Running", via=via, name="a-second")),
            (4.0, "Pod", "ADDED", {"metadata": {"name": "loose"}, "status": {"phase": "Running"}}),
        ],
    )
    assert set(rec.records()) == {"a"}
    assert rec.records()["a"].pod_running == 2.0


def test_out_of_order_and_duplicate_events():
    rec = recorder()
    feed(
        rec,
        [
            # The Workload stream delivers before the Job stream: creation is its arrival.
            (1.0, "Workload", "ADDED", workload("a")),
            (2.0, "Workload", "MODIFIED", workload("a", **ADMITTED)),
            (2.1, "Job", "ADDED", job("a", model="large")),
            (2.2, "Job", "ADDED", job("a", model="large")),  # relist replay
            (2.3, "Workload", "ADDED", workload("a", **ADMITTED)),  # relist replay
            (3.0, "Pod", "MODIFIED", pod("a", "Running")),
            (5.0, "Job", "MODIFIED", job("a", suspend=False, cond="Complete")),
            (6.0, "Job", "MODIFIED", job("a", suspend=False, cond="Complete")),
            (6.5, "Workload", "MODIFIED", workload("a", **ADMITTED)),
            (7.0, "Job", "DELETED", job("a", suspend=False, cond="Complete")),
        ],
    )
    r = rec.records()["a"]
    assert r.created == 1.0 and r.model == "large"
    assert r.admissions == [(2.0, None)] and r.completed == 5.0
    assert r.queue_s == pytest.approx(1.0) and r.exec_s == pytest.approx(3.0)
    # A job seen only through a deletion is not recorded.
    rec.on_event("Job", "DELETED", job("gone"), 8.0)
    assert "gone" not in rec.records()


def test_admission_seen_only_after_completion_is_ignored():
    rec = recorder()
    feed(
        rec,
        [
            (0.0, "Job", "ADDED", job("a")),
            (4.0, "Job", "MODIFIED", job("a", suspend=False, cond="Complete")),
            (9.0, "Workload", "MODIFIED", workload("a", **ADMITTED)),  # lagging stream
        ],
    )
    r = rec.records()["a"]
    assert r.admissions == [] and r.jct_s == 4.0 and r.queue_s is None and r.exec_s is None
    s = summarize(rec.records())
    assert (s.complete, s.complete_unadmitted) == (1, 1)
    assert math.isnan(s.groups["all"].queue_median_ms) and s.groups["all"].jct_mean_ms == 4000


def test_admission_order_ties_broken_by_name():
    rec = recorder()
    for name, t in [("c", 5.0), ("b", 3.0), ("a", 3.0), ("d", 1.0)]:
        rec.on_event("Job", "ADDED", job(name), 0.0)
        rec.on_event("Workload", "MODIFIED", workload(name, **ADMITTED), t)
    rec.on_event("Job", "ADDED", job("never"), 0.0)
    assert rec.admission_order() == ["d", "a", "b", "c"]


def test_records_are_snapshots():
    rec = recorder()
    feed(rec, kueue_job_events("a", 0.0, q=1.0, run=2.0))
    snap = rec.records()
    snap["a"].admissions.append((9.0, None))
    assert rec.records()["a"].admissions == [(1.0, None)]


def test_wait_complete_timeout_lists_incomplete_jobs():
    rec = recorder()
    feed(rec, kueue_job_events("done", 0.0, q=0.1, run=0.2))
    feed(rec, kueue_job_events("running", 0.0, q=0.1, run=0.2)[:-1])
    rec.on_event("Job", "ADDED", job("queued"), 0.0)
    with pytest.raises(TimeoutError) as err:
        rec.wait_complete({"done", "running", "queued", "ghost"}, timeout_s=0.05)
    msg = str(err.value)
    assert "3 of 4 Jobs in ns not complete" in msg
    assert "ghost: never seen" in msg
    assert "queued: " in msg and "never admitted" in msg
    assert "running: " in msg and "pod running" in msg and "unsuspended" in msg
    assert "done:" not in msg


def test_wait_complete_returns_when_jobs_complete_later():
    rec = recorder(kueue=False)
    rec.on_event("Job", "ADDED", job("a", suspend=False), 0.0)
    rec.on_event("Job", "ADDED", job("b", suspend=False, cond="Complete"), 0.0)

    def finish() -> None:
        time.sleep(0.05)
        rec.on_event("Job", "MODIFIED", job("a", suspend=False, cond="Complete"), 1.0)

    th = threading.Thread(target=finish)
    th.start()
    rec.wait_complete(["a", "b"], timeout_s=5)
    th.join()
    assert rec.records()["a"].completed == 1.0


def test_wait_complete_fails_fast_on_failed_job():
    rec = recorder(kueue=False)
    rec.on_event("Job", "ADDED", job("a", suspend=False, cond="Failed"), 0.0)
    with pytest.raises(JobFailedError, match="ns/a failed"):
        rec.wait_complete({"a"}, timeout_s=5)


def cq(name: str, key: str = "flavorsReservation", **by_flavor: dict[str, Any]):
    flavors = [
        {"name": f, "resources": [{"name": r, "total": "8", "borrowed": b} for r, b in res.items()]}
        for f, res in by_flavor.items()
    ]
    return {"metadata": {"name": name}, "status": {key: flavors}}


def test_borrowed_max_per_cluster_queue_and_resource():
    rec = recorder(cqs=["team-a", "team-b"])
    gpu = "nvidia.com/gpu"
    feed(
        rec,
        [
            (0.0, "ClusterQueue", "ADDED", cq("team-a", f1={gpu: "0"})),
            (1.0, "ClusterQueue", "MODIFIED", cq("team-a", f1={gpu: "2"})),
            (2.0, "ClusterQueue", "MODIFIED", cq("team-a", f1={gpu: 4, "cpu": "500m"})),
            (3.0, "ClusterQueue", "MODIFIED", cq("team-a", f1={gpu: "1"})),
            # Two flavors at once: borrowed adds up per resource.
            (4.0, "ClusterQueue", "MODIFIED", cq("team-b", f1={"gpu": "1"}, f2={"gpu": "2"})),
            (5.0, "ClusterQueue", "MODIFIED", cq("other", f1={"gpu": "9"})),
        ],
    )
    assert rec.borrowed_max() == {
        "team-a": {"nvidia.com/gpu": 4.0, "cpu": 0.5},
        "team-b": {"gpu": 3.0},
    }


def test_borrowed_falls_back_to_flavors_usage():
    rec = recorder(cqs=["q"])
    rec.on_event("ClusterQueue", "ADDED", cq("q", key="flavorsUsage", f={"gpu": "3"}), 0.0)
    assert rec.borrowed_max() == {"q": {"gpu": 3.0}}
    rec = recorder()  # no cluster queues asked for: nothing recorded
    rec.on_event("ClusterQueue", "ADDED", cq("q", f={"gpu": "3"}), 0.0)
    assert rec.borrowed_max() == {}


def test_summarize_groups_and_makespan():
    rec = recorder()
    feed(rec, kueue_job_events("m1", 0.0, q=1.0, run=3.0, model="medium"))
    feed(rec, kueue_job_events("m2", 0.5, q=2.0, run=3.0, model="medium"))
    feed(rec, kueue_job_events("l1", 1.0, q=4.0, run=10.0, model="large"))
    feed(rec, kueue_job_events("x", 1.0, q=1.0, run=5.0)[:-1])  # incomplete, no model
    s = summarize(rec.records())
    assert s.makespan_s == pytest.approx(15.0)  # created at 0, last complete at 1 + 4 + 10
    assert (s.complete, s.incomplete, s.failed, s.complete_unadmitted) == (3, 1, 0, 0)
    assert s.admission_order == ["m1", "x", "m2", "l1"]
    assert [j.name for j in s.jobs] == ["m1", "m2", "l1", "x"]
    assert s.jobs[3].jct_ms is None
    med = s.groups["medium"]
    assert (med.n, med.complete) == (2, 2)
    assert med.queue_median_ms == pytest.approx(1500.0)
    assert med.exec_median_ms == pytest.approx(3000.0)
    assert med.jct_mean_ms == pytest.approx(4500.0) and med.jct_median_ms == pytest.approx(4500)
    # Two values: t(0.975, 1) * s / sqrt(2) with s = 1000 / sqrt(2).
    assert med.jct_ci95_ms == pytest.approx(12.706204736 * 500.0)
    assert s.groups["large"].jct_p95_ms == pytest.approx(14000.0)
    assert (s.groups["all"].n, s.groups["all"].complete) == (4, 3)
    assert s.groups["all"].jct_p95_ms == pytest.approx(13100.0)  # linear: 5000,5000,14000


def test_summarize_empty_is_nan():
    s = summarize({})
    assert math.isnan(s.makespan_s) and s.complete == 0
    assert math.isnan(s.groups["large"].jct_median_ms)
    with pytest.raises(ValueError, match="all"):
        summarize({}, models=("all",))


def test_lag_measures_delivery_processing():
    rec = recorder()
    assert rec.lag().events == 0 and math.isnan(rec.lag().p50_ms)
    for i in range(50):
        rec._deliver("Job", "ADDED", job(f"j{i}"), time.monotonic())
    lag = rec.lag()
    assert lag.events == 50 and 0 <= lag.p50_ms <= lag.p99_ms <= lag.max_ms < 1000


# -- the watch loop, against a fake API ---------------------------------------------------------


class FakeApi:
    """Lists and scripted watch streams for each kind, keyed by the list function's name."""

    def __init__(self, lists: dict[str, list], streams: dict[str, list], fail: str = "") -> None:
        self.lists = lists  # fn name -> successive list bodies (the last one repeats)
        # fn name -> successive scripts of events, exceptions to raise, or "gate" to wait for
        self.streams = streams
        self.fail = fail
        self.watch_rvs: dict[str, list[str]] = {}
        self.gate = threading.Event()

    def _list(self, fn: str, **kw: Any) -> SimpleNamespace:
        assert kw["_preload_content"] is False
        if fn == self.fail:
            raise ApiException(status=404, reason="Not Found")
        bodies = self.lists[fn]
        body = bodies.pop(0) if len(bodies) > 1 else bodies[0]
        return SimpleNamespace(data=json.dumps(body).encode())

    def list_namespaced_job(self, ns: str, **kw: Any) -> SimpleNamespace:
        return self._list("list_namespaced_job", **kw)

    def list_namespaced_pod(self, ns: str, **kw: Any) -> SimpleNamespace:
        return self._list("list_namespaced_pod", **kw)

    def list_namespaced_custom_object(self, g, v, ns, plural, **kw: Any) -> SimpleNamespace:
        return self._list("list_namespaced_custom_object", **kw)


def body(rv: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv}, "items": list(items)}


def with_rv(obj: dict[str, Any], rv: str) -> dict[str, Any]:
    obj["metadata"]["resourceVersion"] = rv
    return obj


@pytest.fixture
def fake_api(monkeypatch):
    api = FakeApi(
        lists={
            "list_namespaced_job": [body("10", job("a")), body("20", job("a", cond="Complete"))],
            "list_namespaced_pod": [body("1")],
            "list_namespaced_custom_object": [body("1", workload("a", **ADMITTED))],
        },
        streams={
            "list_namespaced_job": [
                [
                    "gate",  # until start() returned: every initial list was delivered
                    {"type": "MODIFIED", "raw_object": with_rv(job("a", suspend=False), "11")},
                    {"type": "BOOKMARK", "raw_object": {"metadata": {"resourceVersion": "15"}}},
                    ApiException(status=410, reason="Gone"),
                ]
            ],
        },
    )

    class FakeWatch:
        def __init__(self, return_type: str | None = None) -> None:
            assert return_type == "object"
            self._stop = False

        def stop(self) -> None:
            self._stop = True

        def stream(self, fn, *args, **kw):
            api.watch_rvs.setdefault(fn.__name__, []).append(kw["resource_version"])
            scripts = api.streams.get(fn.__name__)
            for ev in scripts.pop(0) if scripts else []:
                if isinstance(ev, Exception):
                    raise ev
                if ev == "gate":
                    api.gate.wait(5)
                    continue
                yield ev
            # Then an idle stream until its (short) timeout, like the API server's.
            deadline = time.monotonic() + 0.05
            while not self._stop and time.monotonic() < deadline:
                time.sleep(0.005)

    for name in ("BatchV1Api", "CoreV1Api", "CustomObjectsApi"):
        monkeypatch.setattr(joblatency.client, name, lambda _api: api)
    monkeypatch.setattr(joblatency.watch, "Watch", FakeWatch)
    return api


def test_watch_loop_lists_watches_reconnects_and_stops(fake_api):
    rec = recorder().start(ready_timeout_s=5)
    fake_api.gate.set()
    try:
        rec.wait_complete({"a"}, timeout_s=5)
    finally:
        t0 = time.monotonic()
        rec.stop()
        assert time.monotonic() - t0 < 2
    r = rec.records()["a"]
    assert r.admissions and r.unsuspended is not None and r.completed is not None
    jobs_rvs = fake_api.watch_rvs["list_namespaced_job"]
    # Watched from the list's version, then relisted after 410 Gone and watched from there.
    assert jobs_rvs[:2] == ["10", "20"]
    assert fake_api.watch_rvs["list_namespaced_pod"][0] == "1"
    assert rec.lag().events >= 4
    assert not any(th.is_alive() for th in rec._threads)
    # The 410 is an outage of the Job watch, counted: job "a" changed (rv 11 -> the relisted
    # version) without an event, so one object's changes were missed.
    (gap,) = rec.gaps()
    assert gap.kind == "Job" and gap.relisted and gap.missed == 1 and gap.end is not None
    assert "relisted, 1 objects changed unseen" in gap.describe()


def test_connection_loss_is_a_gap_and_the_watch_resumes_from_its_version(fake_api):
    fake_api.streams["list_namespaced_pod"] = [
        [ConnectionResetError("peer reset")],  # the API server went away mid-stream
    ]
    fake_api.streams["list_namespaced_job"] = [["gate"]]
    fake_api.lists["list_namespaced_job"] = [body("10", job("a", cond="Complete"))]
    rec = recorder().start(ready_timeout_s=5)
    fake_api.gate.set()
    try:
        rec.wait_complete({"a"}, timeout_s=5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (rec.gaps() and rec.gaps()[0].end):
            time.sleep(0.02)
    finally:
        rec.stop()
    (gap,) = rec.gaps()
    assert gap.kind == "Pod" and gap.end is not None and not gap.relisted and gap.missed == 0
    assert gap.failures == 1 and "ConnectionResetError" in gap.cause
    # No relist: the watch went on from the version it had ("1"), after the probe list.
    assert fake_api.watch_rvs["list_namespaced_pod"][:2] == ["1", "1"]
    assert gap.overlaps(gap.start - 1, gap.start) and not gap.overlaps(0, gap.start - 1)


def test_start_fails_when_a_kind_cannot_be_listed(fake_api):
    fake_api.fail = "list_namespaced_custom_object"
    fake_api.gate.set()
    with pytest.raises(ClusterError, match="Workload: listing failed with HTTP 404"):
        recorder().start(ready_timeout_s=5)
