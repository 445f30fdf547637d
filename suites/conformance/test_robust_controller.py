"""AI conformance, robust_controller: a complex AI operator with CRDs runs reliably.

The operator here is Kueue (the upstream check, kubernetes-sigs/ai-conformance
TestRobustController, uses Kubeflow Trainer the same way): its core CRDs are Established, its
ValidatingWebhookConfigurations exist and carry a caBundle, its admission webhook (not only the
CRD schema) denies an invalid ClusterQueue, a valid ClusterQueue is reconciled to Active, and
its controller is healthy (the kueue-controller-manager pods are Ready). On the local tier
the manager runs as a local process, not as pods: there its health is what it does (the
webhook answered, the controller reconciled, the metrics endpoint answers), and the evidence is
partial.
"""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters.objects import ObjectTracker
from pytest_k8sai.clusters.preflight.facts import KUEUE_DEPLOYMENT, KUEUE_NAMESPACES
from pytest_k8sai.core.apis import KUEUE_GROUP
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.kueue import controller as kc
from pytest_k8sai.kueue import objects as kueue
from pytest_k8sai.measure import prometheus
from pytest_k8sai.workloads.devicecheck import is_kwok_node

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.aic("robust_controller"),
    pytest.mark.requires("kueue"),
]

# A ClusterQueue whose flavor exists turns Active at the controller's first reconcile (well
# under a second here); 30 s leaves room for a busy manager on a shared cluster.
ACTIVE_TIMEOUT_S = 30.0
POLL_S = 0.05


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.body or exc.reason)


def _check_crds(cluster) -> list[str]:
    ext = client.ApiextensionsV1Api(cluster.api_client)
    problems = []
    for name in kc.crd_names():
        try:
            crd = cluster.api_client.sanitize_for_serialization(
                ext.read_custom_resource_definition(name)
            )
        except ApiException as exc:
            problems.append(f"{name}: HTTP {exc.status} {exc.reason}")
            continue
        for cond in ("Established", "NamesAccepted"):
            if (state := kc.crd_condition(crd, cond)) != "True":
                problems.append(f"{name}: {cond}={state or 'absent'}")
    return problems


def _controller_pods(cluster) -> tuple[str, list[dict]] | None:
    """(namespace, pods) of the kueue-controller-manager Deployment, or None without one."""
    apps = client.AppsV1Api(cluster.api_client)
    to_dict = cluster.api_client.sanitize_for_serialization
    for ns in KUEUE_NAMESPACES:
        try:
            dep = apps.read_namespaced_deployment(KUEUE_DEPLOYMENT, ns)
        except ApiException as exc:
            if exc.status in (403, 404):
                continue
            raise
        labels = dep.spec.selector.match_labels or {}
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        pods = cluster.core.list_namespaced_pod(ns, label_selector=selector).items
        return ns, [to_dict(p) for p in pods]
    return None


def test_kueue_operator_crds_webhooks_and_controller(
    cluster, k8s_namespace, k8sai_run_id, slo, aic
):  # fmt: skip
    # --- CRDs: served and Established.
    crd_problems = _check_crds(cluster)
    assert not crd_problems, f"Kueue's CRDs are not all Established: {'; '.join(crd_problems)}"

    # --- Webhook configurations: present for Kueue's group, each with a caBundle.
    adm = client.AdmissionregistrationV1Api(cluster.api_client)
    to_dict = cluster.api_client.sanitize_for_serialization
    validating = kc.kueue_webhooks(
        [to_dict(c) for c in adm.list_validating_webhook_configuration().items]
    )
    mutating = kc.kueue_webhooks(
        [to_dict(c) for c in adm.list_mutating_webhook_configuration().items]
    )
    assert validating, (
        f"no ValidatingWebhookConfiguration has a webhook for API group {KUEUE_GROUP}: Kueue's "
        "objects would be stored unchecked"
    )
    no_ca = kc.without_ca_bundle(validating + mutating)
    assert not no_ca, f"Kueue webhooks without a caBundle (every call would fail TLS): {no_ca}"
    cq_hooks = [h["name"] for _, h in validating if kc.covers(h, "clusterqueues")]
    assert cq_hooks, f"no Kueue validating webhook covers CREATE of clusterqueues.{KUEUE_GROUP}"
    targets = sorted({kc.target(h) for _, h in validating if kc.covers(h, "clusterqueues")})

    # --- Controller health: operator pods Ready, or (local tier) the local process's own signs.
    found = _controller_pods(cluster)
    if found is not None:
        ns, pods = found
        assert pods, f"Deployment {ns}/{KUEUE_DEPLOYMENT} has no pods"
        unready = kc.not_ready(pods)
        assert not unready, f"{ns}/{KUEUE_DEPLOYMENT} pods not Ready: {', '.join(unready)}"
        nodes = {p["spec"].get("nodeName") for p in pods}
        on_kwok = [n for n in nodes if n and is_kwok_node(to_dict(cluster.core.read_node(n)))]
        health = f"{len(pods)} {KUEUE_DEPLOYMENT} pod(s) Ready in {ns}"
    elif cluster.provider == "local":
        on_kwok = []
        url = cluster.endpoints.get("kueue_metrics")
        if url:
            try:
                text = prometheus.scrape(
                    url,
                    token=cluster.endpoints.get("kueue_metrics_token"),
                    ca_file=cluster.endpoints.get("ca_file"),
                )
            except ClusterError as exc:
                pytest.fail(f"the local Kueue manager does not answer: {exc}", pytrace=False)
            assert "controller_runtime_reconcile_total" in text, (
                f"the local Kueue manager's metrics ({url}) show no controller reconciles"
            )
        aic.partial(
            "Kueue's manager runs as a local process, not operator pods: no Deployment "
            "rollout or pod readiness to check; its health is shown by its webhook answering, "
            "its controller reconciling and its metrics endpoint"
        )
        health = "local manager process: metrics endpoint answered" if url else "local process"
    else:
        pytest.fail(
            f"no Deployment {KUEUE_DEPLOYMENT} in {', '.join(KUEUE_NAMESPACES)} (or no right to "
            "read it), though Kueue's CRDs are installed: cannot tell whether its controller "
            "runs",
            pytrace=False,
        )

    with ObjectTracker(cluster.api_client, k8sai_run_id, cluster.kueue_version) as objs:
        flavor = f"{k8s_namespace}-flavor"
        objs.create(kueue.resource_flavor(flavor), "resourceflavors")

        # --- An object only the webhook can refuse.
        bad = kc.mismatched_cluster_queue(f"{k8s_namespace}-bad", flavor, cluster.gpu_resource)
        denied_at = time.monotonic()
        try:
            objs.create(bad, "clusterqueues")
        except ApiException as exc:
            message = _api_message(exc)
            denied_ms = (time.monotonic() - denied_at) * 1000
            assert 400 <= exc.status < 500, f"HTTP {exc.status} for an invalid ClusterQueue"
            problem = kc.denial_problem(message, cq_hooks)
            assert problem is None, problem
        else:
            pytest.fail(
                f"Kueue accepted ClusterQueue {bad['metadata']['name']} whose flavor quotas "
                f"{kc.other_resource(cluster.gpu_resource)} for covered resource "
                f"{cluster.gpu_resource}; its validating webhook should deny it",
                pytrace=False,
            )

        # --- A valid object: admitted (mutated), then reconciled to Active.
        good = kueue.ClusterQueueSpec(
            name=f"{k8s_namespace}-cq",
            flavor=flavor,
            quotas=[kueue.Quota(name=cluster.gpu_resource, nominal="1")],
            namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": k8s_namespace}},
        )
        created_at = time.monotonic()
        made = objs.create(good.body(), "clusterqueues")
        finalizers = made["metadata"].get("finalizers") or []
        assert kc.RESOURCE_IN_USE_FINALIZER in finalizers, (
            f"ClusterQueue {good.name} came back without Kueue's finalizer "
            f"{kc.RESOURCE_IN_USE_FINALIZER} (finalizers: {finalizers}): its mutating webhook "
            "did not run"
        )
        deadline = created_at + ACTIVE_TIMEOUT_S
        while not kueue.cluster_queues_active(
            cluster.api_client, [good.name], cluster.kueue_version
        ):
            if time.monotonic() > deadline:
                cq = client.CustomObjectsApi(cluster.api_client).get_cluster_custom_object(
                    KUEUE_GROUP, cluster.kueue_version, "clusterqueues", good.name
                )
                pytest.fail(
                    f"ClusterQueue {good.name} not Active within {ACTIVE_TIMEOUT_S:g}s: "
                    f"conditions {cq.get('status', {}).get('conditions')}",
                    pytrace=False,
                )
            time.sleep(POLL_S)
        active_ms = (time.monotonic() - created_at) * 1000

    runtime = found is not None and not on_kwok
    kueue_name = " ".join(["Kueue", cluster.versions.get("kueue", "")]).strip()
    aic.tier(
        "runtime" if runtime else "api",
        f"{kueue_name}: CRDs Established, webhooks with caBundle "
        f"denied an invalid ClusterQueue, controller reconciled a valid one to Active; {health}"
        + ("" if runtime else " (no operator pods on a kubelet)"),
    )
    aic.note(
        f"CRDs {', '.join(kc.crd_names())} Established; {len(validating)} validating + "
        f"{len(mutating)} mutating Kueue webhooks, all with caBundle, clusterqueues served at "
        f"{', '.join(targets)}; invalid ClusterQueue denied in {denied_ms:.0f} ms: {message}; "
        f"valid ClusterQueue Active after {active_ms:.0f} ms; {health}"
    )
    slo.info(
        "Kueue webhook denial latency",
        denied_ms,
        unit="ms",
        n=1,
        source="create of an invalid ClusterQueue -> API error naming Kueue's webhook",
    )
    slo.info(
        "ClusterQueue reconcile to Active",
        active_ms,
        unit="ms",
        n=1,
        source=f"create -> condition Active=True, polled every {POLL_S * 1000:.0f} ms",
    )
