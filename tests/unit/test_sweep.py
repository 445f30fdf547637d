"""``k8sai sweep``'s pure logic: which objects are leftovers, in which order they go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pytest_k8sai.clusters import sweep
from pytest_k8sai.clusters.apireader import ReadError

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_parse_age() -> None:
    assert sweep.parse_age("90s") == timedelta(seconds=90)
    assert sweep.parse_age("2d") == timedelta(days=2)
    with pytest.raises(sweep.SweepError, match="--older-than '2 weeks'"):
        sweep.parse_age("2 weeks")


def test_selector_never_matches_the_local_tiers_own_objects() -> None:
    assert sweep.selector(None) == "k8sai.io/created-by=pytest-k8sai,k8sai.io/run-id"
    assert sweep.selector("r1").endswith("k8sai.io/run-id=r1")


class FakeApi:
    """Discovery and labelled lists of a small cluster."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.queries: list[tuple[str, Any]] = []

    def get(self, path: str, query: Any = None) -> dict[str, Any]:
        self.queries.append((path, query))
        if path == "/apis":
            return {
                "groups": [
                    {"name": "kueue.x-k8s.io", "preferredVersion": {"version": "v1beta2"}},
                    {"name": "metrics.k8s.io", "preferredVersion": {"version": "v1beta1"}},
                ]
            }
        if path == "/api/v1":
            return {
                "resources": [
                    {"name": "namespaces", "namespaced": False, "verbs": ["list", "delete"]},
                    {"name": "pods", "namespaced": True, "verbs": ["list", "delete"]},
                    {"name": "pods/log", "namespaced": True, "verbs": ["get"]},
                    {"name": "events", "namespaced": True, "verbs": ["list", "delete"]},
                ]
            }
        if path == "/apis/kueue.x-k8s.io/v1beta2":
            return {
                "resources": [
                    {"name": "resourceflavors", "namespaced": False, "verbs": ["list", "delete"]},
                    {"name": "clusterqueues", "namespaced": False, "verbs": ["list", "delete"]},
                    {"name": "localqueues", "namespaced": True, "verbs": ["list", "delete"]},
                ]
            }
        if path == "/apis/metrics.k8s.io/v1beta1":
            raise ReadError(path, "the server answered HTTP 503", 503)
        plural = path.rsplit("/", 1)[-1]
        return {"items": self.objects.get(plural, [])}


def _obj(name: str, ns: str = "", age_h: float = 1, run: str = "r1", gone: bool = False):
    meta: dict[str, Any] = {
        "name": name,
        "labels": {"k8sai.io/run-id": run},
        "creationTimestamp": (NOW - timedelta(hours=age_h)).isoformat().replace("+00:00", "Z"),
    }
    if ns:
        meta["namespace"] = ns
    if gone:
        meta["deletionTimestamp"] = NOW.isoformat()
    return {"metadata": meta}


def test_find_orders_namespaced_then_namespaces_then_queues_first() -> None:
    api = FakeApi(
        {
            "namespaces": [_obj("k8sai-a"), _obj("k8sai-b", gone=True)],
            "pods": [_obj("inside", ns="k8sai-a"), _obj("outside", ns="default")],
            "resourceflavors": [_obj("rf")],
            "clusterqueues": [_obj("cq")],
            "localqueues": [_obj("lq", ns="k8sai-a")],
        }
    )
    found, unreadable = sweep.find(api, None, None, NOW)  # type: ignore[arg-type]
    assert [str(f) for f in found] == [
        "pods default/outside",
        "namespaces k8sai-a",
        "namespaces k8sai-b (terminating)",
        "clusterqueues.kueue.x-k8s.io cq",
        "resourceflavors.kueue.x-k8s.io rf",
    ]
    assert unreadable == []  # the unavailable metrics API is skipped, not an error
    labelled = [q for p, q in api.queries if q]
    assert all(q == [("labelSelector", sweep.selector(None))] for q in labelled)
    assert not any(p.endswith("/events") for p, _ in api.queries)
    assert found[0].path == "/api/v1/namespaces/default/pods/outside"
    assert found[3].path == "/apis/kueue.x-k8s.io/v1beta2/clusterqueues/cq"


def test_older_than_keeps_young_objects() -> None:
    api = FakeApi({"namespaces": [_obj("old", age_h=30), _obj("young", age_h=1)]})
    found, _ = sweep.find(api, "r1", timedelta(hours=12), NOW)  # type: ignore[arg-type]
    assert [f.name for f in found] == ["old"]
    assert found[0].age(NOW) == "1d"
