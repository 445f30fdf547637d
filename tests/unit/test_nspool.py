"""Pre-created namespaces (reach.namespaces): lent one at a time, checked, and left as found
except for what the run made there. The API is a fake here; tests/local/test_existing_rbac.py
runs the smoke suite in pre-created namespaces on the local cluster."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters import nspool
from pytest_k8sai.clusters.base import RUN_ID_LABEL
from pytest_k8sai.core.errors import ClusterError


def _obj(name: str) -> Any:
    return SimpleNamespace(metadata=SimpleNamespace(name=name))


class FakeApi:
    """Namespaces with labels, and Jobs and pods carrying run ids."""

    def __init__(self, labels: dict[str, dict[str, str]], readable: bool = True) -> None:
        self.labels, self.readable = labels, readable
        self.jobs: dict[str, list[tuple[str, str]]] = {n: [] for n in labels}  # (name, run)
        self.deleted: list[str] = []

    # CoreV1Api
    def read_namespaced_service_account(self, name: str, ns: str, **_: Any) -> Any:
        if ns not in self.labels:
            raise ApiException(status=404, reason="Not Found")
        return _obj(name)

    def read_namespace(self, ns: str, **_: Any) -> Any:
        if not self.readable:
            raise ApiException(status=403, reason="Forbidden")
        return SimpleNamespace(metadata=SimpleNamespace(labels=self.labels[ns]))

    def list_namespaced_pod(self, ns: str, label_selector: str, **_: Any) -> Any:
        return SimpleNamespace(items=[])  # the Jobs' pods went with them

    # BatchV1Api
    def list_namespaced_job(self, ns: str, label_selector: str, **_: Any) -> Any:
        run = label_selector.split("=", 1)[1]
        assert label_selector.startswith(f"{RUN_ID_LABEL}=")
        return SimpleNamespace(items=[_obj(n) for n, r in self.jobs[ns] if r == run])

    def delete_namespaced_job(self, name: str, ns: str, propagation_policy: str, **_: Any) -> None:
        assert propagation_policy == "Background"  # the pods and Workloads go too
        self.jobs[ns] = [(n, r) for n, r in self.jobs[ns] if n != name]
        self.deleted.append(f"{ns}/{name}")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi({"team-a": {"kueue.openshift.io/managed": "true"}, "team-b": {}})
    monkeypatch.setattr(nspool.client, "CoreV1Api", lambda _api: fake)
    monkeypatch.setattr(nspool.client, "BatchV1Api", lambda _api: fake)
    return fake


def test_lends_each_namespace_once_and_says_when_all_are_in_use(api: FakeApi) -> None:
    pool = nspool.NamespacePool(["team-a", "team-b"])
    with pool.lease(None, "r1") as first, pool.lease(None, "r1") as second:  # type: ignore[arg-type]
        assert {first, second} == {"team-a", "team-b"}
        with (
            pytest.raises(ClusterError, match=r"kq-priority needs a namespace.*all 2"),
            pool.lease(None, "r1", "kq-priority"),  # type: ignore[arg-type]
        ):
            pass
    with pool.lease(None, "r1") as again:  # type: ignore[arg-type]
        assert again in {"team-a", "team-b"}  # given back after use


def test_only_the_runs_own_jobs_are_deleted_also_after_a_failure(api: FakeApi) -> None:
    pool = nspool.NamespacePool(["team-a"])
    api.jobs["team-a"] = [("theirs", "other-run"), ("untagged", "")]
    with pytest.raises(RuntimeError), pool.lease(None, "r1") as ns:  # type: ignore[arg-type]
        api.jobs[ns] += [("smoke", "r1"), ("gang-a", "r1")]
        raise RuntimeError("a failing test")
    assert sorted(api.deleted) == ["team-a/gang-a", "team-a/smoke"]
    assert api.jobs["team-a"] == [("theirs", "other-run"), ("untagged", "")]


def test_missing_namespace_or_label_is_named(api: FakeApi) -> None:
    with (
        pytest.raises(ClusterError, match=r"lists namespace 'gone'.*HTTP 404"),
        nspool.NamespacePool(["gone"]).lease(None, "r1"),  # type: ignore[arg-type]
    ):
        pass
    want = {"kueue.openshift.io/managed": "true"}
    with (
        pytest.raises(ClusterError, match=r"'team-b'.*kueue.openshift.io/managed=true.*label"),
        nspool.NamespacePool(["team-b"]).lease(None, "r1", labels=want),  # type: ignore[arg-type]
    ):
        pass
    with nspool.NamespacePool(["team-a"]).lease(None, "r1", labels=want) as ns:  # type: ignore[arg-type]
        assert ns == "team-a"
    api.readable = False  # labels the identity cannot read are taken on trust
    with nspool.NamespacePool(["team-b"]).lease(None, "r1", labels=want) as ns:  # type: ignore[arg-type]
        assert ns == "team-b"
