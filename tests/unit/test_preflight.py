"""Preflight's pure logic: the RBAC manifest it checks, and what it concludes from facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_k8sai.clusters.apireader import ReadError
from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.clusters.preflight import facts, outlook, rbac, report
from pytest_k8sai.core.profiles import load_profile

# Cluster-scoped kinds the suites may write (the least-privilege rule): their own
# namespaces and Kueue's cluster-scoped queue objects. Everything else cluster-scoped is read.
CLUSTER_WRITES = {"namespaces", "resourceflavors", "clusterqueues", "workloadpriorityclasses"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
# Namespaced kinds the suites write in their own namespaces (and DAS's claims of their pods).
NAMESPACED_WRITES = {"jobs", "localqueues", "allocationclaims"}
# The AI Conformance checks' probe pods, and the Gateway, HTTPRoute and backend Services of
# ai_inference, all in the run's own namespace.
NAMESPACED_WRITES |= {"pods", "services", "gateways", "httproutes"}
# Reviews are writes by verb but read nothing and change nothing.
REVIEWS = {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}


def test_manifest_has_a_role_per_suite_and_an_aggregate() -> None:
    perms = rbac.suite_permissions()
    # gaie creates no API objects
    assert set(perms) == {"common", "own-namespaces", "smoke", "kueue", "das", "conformance"}
    kinds = [d["kind"] for d in rbac.manifest_docs()]
    assert kinds.count("ClusterRole") == 7
    agg = [d for d in rbac.manifest_docs() if "aggregationRule" in d]
    assert [d["metadata"]["name"] for d in agg] == ["k8sai-suites"]


def test_manifest_grants_least_privilege() -> None:
    for suite, perms in rbac.suite_permissions().items():
        for p in perms:
            assert "*" not in (p.group, p.resource, p.verb), f"{suite}: wildcard {p}"
            assert p.resource not in {"secrets", "configmaps", "roles", "rolebindings"}, p
            if p.verb in WRITE_VERBS and p.resource not in REVIEWS:
                assert p.resource in CLUSTER_WRITES | NAMESPACED_WRITES, f"{suite}: writes {p}"


def test_needed_by_adds_the_common_role() -> None:
    needs = rbac.needed_by(["gaie", "kueue"])
    perms = rbac.suite_permissions()
    common = set(perms["common"]) | set(perms["own-namespaces"])
    assert set(needs["gaie"]) == common
    assert rbac.Permission("kueue.x-k8s.io", "workloadpriorityclasses", "create") in needs["kueue"]
    assert str(rbac.Permission("", "namespaces", "create")) == "create namespaces"


class NamespacedReader:
    """SSARs allowed cluster-wide only for ``cluster``, and in namespace ``ns`` for the rest."""

    def __init__(self, ns: str, cluster: set[str]) -> None:
        self.ns, self.cluster, self.reviews = ns, cluster, []

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        ra = body["spec"]["resourceAttributes"]
        self.reviews.append((ra["verb"], ra["resource"], ra.get("namespace")))
        key = f"{ra['verb']} {ra['resource']}"
        ok = key in self.cluster if "namespace" not in ra else ra["namespace"] == self.ns
        return {"status": {"allowed": ok}}


def test_precreated_namespaces_need_no_namespace_lifecycle_and_are_reviewed_there() -> None:
    cluster_wide = {
        f"{p.verb} {p.resource.partition('/')[0]}"
        for p in rbac.needed_by(["smoke"], precreated=True)["smoke"]
        if p.resource not in rbac.IN_TEST_NAMESPACE
    }
    reader = NamespacedReader("team-a", cluster_wide)
    (smoke,) = rbac.check(reader, ["smoke"], ["team-a"])  # type: ignore[arg-type]
    assert smoke.ok, smoke.missing
    assert ("create", "jobs", "team-a") in reader.reviews
    assert not any(r == "namespaces" and v in ("create", "delete") for v, r, _ in reader.reviews)
    # The same identity, checked as one that creates its own namespaces, lacks those verbs.
    (own,) = rbac.check(NamespacedReader("team-a", cluster_wide), ["smoke"])  # type: ignore[arg-type]
    assert {str(p) for p in own.missing} >= {"create namespaces", "delete namespaces"}
    assert "create jobs.batch" in {str(p) for p in own.missing}


class FakeReader:
    """Answers preflight's GETs from a dict of path -> JSON; SSARs from ``allowed``."""

    def __init__(self, answers: dict[str, Any], allowed: set[str] | None = None) -> None:
        self.answers = answers
        self.allowed = allowed
        self.calls = 0

    def get(self, path: str) -> dict[str, Any]:
        self.calls += 1
        if path not in self.answers:
            raise ReadError(path, "the server answered HTTP 404 Not Found", 404)
        ans = self.answers[path]
        if isinstance(ans, ReadError):
            raise ans
        return ans

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        ra = body["spec"]["resourceAttributes"]
        key = f"{ra['verb']} {ra['resource']}"
        return {"status": {"allowed": self.allowed is None or key in self.allowed}}


def _node(name: str, product: str, gpus: int, **alloc: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {facts.PRODUCT_LABEL: product} if product else {}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"cpu": "96", facts.GPU: str(gpus), **alloc},
        },
    }


def _cluster(nodes: list[dict[str, Any]], groups: dict[str, list[str]]) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "/version": {"gitVersion": "v1.36.3"},
        "/api/v1/nodes": {"items": nodes},
        "/apis": {
            "groups": [
                {
                    "name": g,
                    "versions": [{"version": v} for v in vs],
                    "preferredVersion": {"version": vs[0]},
                }
                for g, vs in groups.items()
            ]
        },
    }
    resources = {
        "kueue.x-k8s.io": ["clusterqueues", "localqueues", "workloads"],
        "inference.redhat.com": ["allocationclaims"],
        "inference.networking.k8s.io": ["inferencepools"],
    }
    for g, vs in groups.items():
        answers[f"/apis/{g}/{vs[0]}"] = {"resources": [{"name": r} for r in resources.get(g, [])]}
    return answers


def test_gather_reads_gpus_kueue_and_an_unreadable_part() -> None:
    answers = _cluster(
        [
            _node("gpu-1", "NVIDIA-A100-SXM4-40GB", 0, **{"mig.das.com/1g.5gb": "7"}),
            _node("cpu", "", 0),
        ],
        {"kueue.x-k8s.io": ["v1beta1"], "inference.redhat.com": ["v1alpha1"]},
    )
    answers["/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"] = ReadError(
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        "the server answered HTTP 403 Forbidden (forbidden)",
        403,
    )
    answers["/api/v1/namespaces/kueue-system/configmaps/kueue-manager-config"] = {
        "data": {
            "controller_manager_config.yaml": "managedJobsNamespaceSelector:\n"
            "  matchLabels:\n    kueue.openshift.io/managed: 'true'\n"
        }
    }
    cf = facts.gather(FakeReader(answers))  # type: ignore[arg-type]
    assert cf.version == "v1.36.3" and cf.nodes == 2
    assert [n.name for n in cf.gpu_nodes] == ["gpu-1"]
    assert cf.gpu_nodes[0].mig == {"mig.das.com/1g.5gb": 7}
    assert cf.serves("kueue.x-k8s.io", "clusterqueues") is True
    assert cf.serves("gateway.networking.k8s.io") is False
    assert cf.kueue_namespace_labels == {"kueue.openshift.io/managed": "true"}
    webhook = next(f for f in cf.facts if f.area == "DAS" and f.item == "webhook")
    assert webhook.status == "unknown" and "not allowed to read" in webhook.detail


def test_das_webhook_selector_becomes_the_sliced_namespaces_labels() -> None:
    """A DAS webhook that selects namespaces by label (the local tier's) makes the sliced
    arms' namespaces carry it; upstream's (system namespaces excluded) asks for none."""
    answers = _cluster([], {"inference.redhat.com": ["v1alpha1"]})
    hooks = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"

    def hook(selector: dict[str, Any]) -> dict[str, Any]:
        return {
            "items": [
                {"metadata": {"name": "other"}, "webhooks": [{"name": "x.example.com"}]},
                {
                    "metadata": {"name": "das-mutating-webhook-configuration"},
                    "webhooks": [{"name": "das.example.com", "namespaceSelector": selector}],
                },
            ]
        }

    upstream = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                      "values": ["kube-system"]}]}  # fmt: skip
    answers[hooks] = hook(upstream)
    cf = facts.gather(FakeReader(answers))  # type: ignore[arg-type]
    assert cf.das_namespace_labels == {}
    answers[hooks] = hook({**upstream, "matchLabels": {"k8sai.io/das": "true"}})
    cf = facts.gather(FakeReader(answers))  # type: ignore[arg-type]
    assert cf.das_namespace_labels == {"k8sai.io/das": "true"}
    fact = next(f for f in cf.facts if f.item == "namespaces it rewrites")
    assert fact.value == "namespaces with k8sai.io/das=true"
    assert cf.as_dict()["das_namespace_labels"] == {"k8sai.io/das": "true"}


def test_namespace_selector_default_and_expressions() -> None:
    assert facts.namespace_selector("apiVersion: x\n") == ({}, facts.DEFAULT_SELECTOR)
    labels, words = facts.namespace_selector(
        "managedJobsNamespaceSelector:\n  matchExpressions:\n"
        "  - {key: team, operator: In, values: [ml]}\n"
    )
    assert labels == {} and words == "namespaces with team In ml"


def _preflight(profile_name: str, answers: dict[str, Any], allowed: set[str] | None = None):
    profile = load_profile(profile_name)
    reader = FakeReader(answers, allowed)
    cf = facts.gather(reader)  # type: ignore[arg-type]
    access = rbac.check(reader, list(outlook.SUITE_NEEDS))  # type: ignore[arg-type]
    return profile, cf, access


def test_rosa_profile_on_a_4_gpu_cluster_without_das_says_what_contradicts() -> None:
    answers = _cluster([_node("g", "NVIDIA-A100-SXM4-40GB", 4)], {"kueue.x-k8s.io": ["v1beta1"]})
    profile, cf, access = _preflight("rosa", answers, allowed={"create namespaces"})
    said = outlook.contradictions(profile, cf)
    assert any("capabilities.das claims das" in s for s in said)
    assert any("gpus_per_node is 8" in s and "have 4" in s for s in said)
    assert any("capabilities.mig.enabled" in s for s in said)
    suites = {s.suite: s for s in outlook.outlook(profile, cf, access)}
    assert suites["das"].status == "will skip"  # no MIG on the cluster
    assert suites["kueue"].status == "will fail"  # permissions missing
    assert "create clusterqueues.kueue.x-k8s.io" in suites["kueue"].reasons[-1]
    assert suites["gaie"].status == "will skip"  # no URL in gaie_suite.existing


def test_render_names_missing_permissions_and_the_manifest(tmp_path: Path) -> None:
    answers = _cluster([_node("g", "NVIDIA-A100-SXM4-40GB", 8)], {"kueue.x-k8s.io": ["v1beta2"]})
    profile, cf, access = _preflight("local", answers, allowed=set())
    found = report.Preflight(
        cluster="local",
        server="https://127.0.0.1:1",
        facts=cf,
        access=access,
        suites=outlook.outlook(profile, cf, access),
        contradicted=outlook.contradictions(profile, cf),
        took_s=0.1,
        calls=3,
    )
    text = report.render(found)
    assert "MISSING" in text and "k8sai-suites.yaml" in text
    assert not found.ok
    assert found.as_dict()["access"][0]["missing"]


def test_local_handle_reads_nothing_it_cannot_reach(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text("not: a kubeconfig\n")
    handle = ClusterHandle(load_profile("local"), kubeconfig, None, "local")
    with pytest.raises(Exception, match="Preflight cannot use kubeconfig"):
        report.run(handle, timeout_s=1)


def test_gpu_resource_follows_what_nodes_advertise() -> None:
    rosa = load_profile("rosa")
    plain = _cluster([_node("g", "NVIDIA-A100-SXM4-40GB", 8)], {})
    das = _cluster(
        [_node("g", "NVIDIA-A100-SXM4-40GB", 0, **{"mig.das.com/7g.40gb": "8"})],
        {"inference.redhat.com": ["v1alpha1"]},
    )
    assert outlook.gpu_resource(rosa, facts.gather(FakeReader(plain))) == "nvidia.com/gpu"  # type: ignore[arg-type]
    got = outlook.gpu_resource(rosa, facts.gather(FakeReader(das)))  # type: ignore[arg-type]
    assert got == rosa.das_suite.whole_gpu_resource == "nvidia.com/mig-7g.40gb"


def test_restricted_without_a_uid_off_openshift_is_a_contradiction() -> None:
    rosa = load_profile("rosa")
    vanilla = facts.gather(FakeReader(_cluster([], {"kueue.x-k8s.io": ["v1beta2"]})))  # type: ignore[arg-type]
    said = [c for c in outlook.contradictions(rosa, vanilla) if "run_as_user" in c]
    assert len(said) == 1 and "security.openshift.io not served" in said[0]
    openshift = facts.gather(FakeReader(_cluster([], {"security.openshift.io": ["v1"]})))  # type: ignore[arg-type]
    assert not [c for c in outlook.contradictions(rosa, openshift) if "run_as_user" in c]
    uid = rosa.model_copy(
        update={"workload": rosa.workload.model_copy(update={"run_as_user": 65534})}
    )
    assert not [c for c in outlook.contradictions(uid, vanilla) if "run_as_user" in c]


# Kinds the suites make that are cluster-scoped (Kubernetes and Kueue API scope), and
# namespaced kinds they touch outside a test's namespace (DAS's claims, in DAS's namespace).
CLUSTER_SCOPED = {
    "namespaces", "clusterqueues", "resourceflavors", "workloadpriorityclasses",
    "selfsubjectaccessreviews", "selfsubjectrulesreviews",
}  # fmt: skip
OUTSIDE_TEST_NAMESPACE = {"allocationclaims"}


def test_in_test_namespace_list_follows_the_manifest() -> None:
    """IN_TEST_NAMESPACE is what pre-created namespaces must grant. Every namespaced kind the
    manifest lets a suite create or delete is made in a test's namespace, so it must be
    listed (else preflight would review it cluster-wide and ask an admin for too much);
    every listed kind must be one the manifest grants."""
    perms = [p for ps in rbac.suite_permissions().values() for p in ps]
    writes = {
        p.resource.partition("/")[0]
        for p in perms
        if p.verb in ("create", "delete", "patch", "update")
    }
    namespaced = writes - CLUSTER_SCOPED - OUTSIDE_TEST_NAMESPACE
    listed = {r.partition("/")[0] for r in rbac.IN_TEST_NAMESPACE}
    assert namespaced <= listed, f"not in IN_TEST_NAMESPACE: {sorted(namespaced - listed)}"
    granted = {p.resource for p in perms}
    assert granted >= rbac.IN_TEST_NAMESPACE, sorted(rbac.IN_TEST_NAMESPACE - granted)
