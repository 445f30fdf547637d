"""The scale run's recorder: admissions, evictions, finishes, the actions it asks for, and the
figures (per class, rates, wall time, pending depth), fed plain dicts."""

from __future__ import annotations

import pytest

from pytest_k8sai.scale.record import (
    Recorder,
    class_figures,
    peak_in_window,
    rate_figures,
    wall_time_s,
)


def _wl(name, **conds):
    return {
        "metadata": {"name": name, "generation": 1, "resourceVersion": "1"},
        "status": {
            "conditions": [{"type": k, "status": v} for k, v in conds.items()],
            **(
                {"admission": {"clusterQueue": "cq"}}
                if conds.get("QuotaReserved") == "True"
                else {}
            ),
        },
    }


ADMITTED = {"QuotaReserved": "True", "Admitted": "True"}


def test_one_workloads_life_with_an_eviction():
    rec = Recorder({"a": ("small", 2.0), "b": ("large", 5.0)})
    rec.on_submitted("a", 10.0)
    assert rec.on_event("ADDED", _wl("a"), 10.01) == []
    assert rec.on_event("MODIFIED", _wl("a", QuotaReserved="True"), 10.5) == []
    (fin,) = rec.on_event("MODIFIED", _wl("a", **ADMITTED), 10.6)
    assert (fin.kind, fin.name, fin.due, fin.epoch) == ("finish", "a", pytest.approx(12.6), 1)
    assert rec.still_admitted("a", 1)
    # Preempted: Kueue sets Evicted and waits for the owner (us) to give the quota back.
    acts = rec.on_event("MODIFIED", _wl("a", **ADMITTED, Evicted="True"), 11.0)
    assert [a.kind for a in acts] == ["unreserve"] and acts[0].obj is not None
    assert not rec.still_admitted("a", 1)  # the pending finish task is void now
    assert rec.on_event("MODIFIED", _wl("a", QuotaReserved="False", Evicted="True"), 11.1) == []
    (fin2,) = rec.on_event("MODIFIED", _wl("a", **ADMITTED, Evicted="False"), 13.0)
    assert (fin2.epoch, fin2.due) == (2, pytest.approx(15.0))
    assert not rec.still_admitted("a", 1) and rec.still_admitted("a", 2)
    rec.on_event("MODIFIED", _wl("a", **ADMITTED, Finished="True"), 15.1)
    assert rec.finished == 1 and rec.submitted == 1
    (r,) = [x for x in rec.records() if x.name == "a"]
    assert r.created == 10.0 and r.quota_reserved == 10.5
    assert r.to_admission_s == pytest.approx(0.6)  # the first admission counts
    assert (r.admissions, r.evictions, r.finished) == (2, 1, 15.1)
    assert rec.admission_times() == [10.6, 13.0]


def test_foreign_and_deleted_workloads_change_nothing():
    rec = Recorder({"a": ("small", 1.0)})
    assert rec.on_event("ADDED", _wl("other", **ADMITTED), 1.0) == []
    assert rec.foreign == 1
    assert rec.on_event("DELETED", _wl("a", **ADMITTED), 1.0) == []
    assert rec.records()[0].created is None


def test_a_watch_event_before_the_create_returned_sets_creation():
    rec = Recorder({"a": ("small", 1.0)})
    rec.on_event("ADDED", _wl("a"), 5.0)
    rec.on_submitted("a", 5.2)
    assert rec.records()[0].created == 5.0


def test_pending_depth():
    rec = Recorder({n: ("small", 1.0) for n in "abc"})
    for n in "abc":
        rec.on_submitted(n, 0.0)
    rec.on_event("MODIFIED", _wl("a", **ADMITTED), 0.5)
    rec.on_event("MODIFIED", _wl("b", **ADMITTED), 0.5)
    rec.on_event("MODIFIED", _wl("b", **ADMITTED, Finished="True"), 1.5)
    s = rec.sample_depth(2.0)
    assert (s.pending, s.admitted, s.finished) == (1, 1, 1)
    assert rec.depth == [s]


def test_class_figures_average_like_kueues_checker():
    rec = Recorder({"s1": ("small", 1.0), "s2": ("small", 1.0), "l1": ("large", 1.0)})
    for n in ("s1", "s2", "l1"):
        rec.on_submitted(n, 0.0)
    rec.on_event("MODIFIED", _wl("s1", **ADMITTED), 1.0)
    rec.on_event("MODIFIED", _wl("s2", **ADMITTED), 3.0)
    by = {c.class_name: c for c in class_figures(rec.records())}
    assert by["small"].avg_to_admission_ms == 2000.0
    assert by["small"].p50_to_admission_ms == 2000.0
    assert by["small"].max_to_admission_ms == 3000.0
    assert (by["small"].planned, by["small"].admitted, by["small"].finished) == (2, 2, 0)
    assert by["large"].admitted == 0 and by["large"].avg_to_admission_ms is None


def test_rates_and_wall_time():
    assert peak_in_window([0.0, 0.2, 0.9, 1.0, 1.05, 3.0]) == 4  # 0.2 .. 1.05
    assert peak_in_window([]) == 0
    r = rate_figures([0.0, 0.5, 1.0, 2.0])
    # Windows are (t - 1 s, t]: 0.0 and 1.0 are a whole second apart, never together.
    assert (r.admissions, r.peak_per_s, r.sustained_per_s) == (4, 2, 2.0)
    assert rate_figures([1.0]).sustained_per_s is None
    rec = Recorder({"a": ("small", 1.0)})
    assert wall_time_s(rec.records(), 0.0) is None  # not all finished
    rec.on_event("MODIFIED", _wl("a", **ADMITTED, Finished="True"), 7.5)
    assert wall_time_s(rec.records(), 2.5) == 5.0
