"""The suites' RBAC role, proven against the session's local cluster attached as
``provider: existing`` through a ServiceAccount token bound only to the shipped manifest
(pytest_k8sai/manifests/rbac/): preflight reads the cluster and finds every verb the smoke and
Kueue suites need, a call outside the role is refused, and the smoke suite passes that way."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client.exceptions import ApiException

from pytest_k8sai.clusters.apireader import Reader
from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.clusters.objects import ownership_labels
from pytest_k8sai.clusters.preflight import rbac, report
from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.profiles import load_profile

ROOT = Path(__file__).resolve().parents[2]  # the checkout: suites/ is run by path
TIMEOUT_S = 600


def _labelled(doc: dict, run_id: str) -> dict:
    doc = {**doc, "metadata": {**doc["metadata"]}}
    doc["metadata"]["labels"] = {
        **(doc["metadata"].get("labels") or {}),
        **ownership_labels(run_id),
    }
    return doc


@pytest.fixture(scope="module")
def runner_kubeconfig(cluster, k8sai_run_id, tmp_path_factory):
    """Apply the manifest's roles and the runner ServiceAccount as the admin (once for this
    module's tests), yield a kubeconfig holding only that ServiceAccount's token, then delete
    what was applied and wait until its namespace is gone."""
    tmp_path = tmp_path_factory.mktemp("runner")
    if cluster.provider != "local":
        pytest.skip("applies cluster roles: only on the local tier's own cluster")
    docs = [
        _labelled(d, k8sai_run_id)
        for name in ("k8sai-suites.yaml", "k8sai-runner.yaml")
        for d in yaml.safe_load_all(data_file("manifests", "rbac", name).read_text())
        if d
    ]
    rbac_api = client.RbacAuthorizationV1Api(cluster.api_client)
    core = cluster.core
    made: list[dict] = []  # only what this test created is deleted
    try:
        for doc in docs:
            try:
                utils.create_from_dict(cluster.api_client, doc)
                made.append(doc)
            except utils.FailToCreateError as err:
                pytest.fail(
                    f"cannot apply {doc['kind']} {doc['metadata']['name']}: "
                    f"{[e.status for e in err.api_exceptions]}; a leftover of an earlier run? "
                    "(k8sai sweep --dry-run lists them)",
                    pytrace=False,
                )
        # kube-controller-manager fills the aggregated role's rules from the labelled roles.
        deadline = time.monotonic() + 30
        while not rbac_api.read_cluster_role("k8sai-suites").rules:
            assert time.monotonic() < deadline, "k8sai-suites got no aggregated rules in 30 s"
            time.sleep(0.2)
        token = core.create_namespaced_service_account_token(
            "k8sai-runner",
            "k8sai-system",
            client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
            ),
        ).status.token
        admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
        server = admin["clusters"][0]["cluster"]
        ca = (
            server.get("certificate-authority-data")
            or base64.b64encode(Path(server["certificate-authority"]).read_bytes()).decode()
        )
        kubeconfig = tmp_path / "runner.kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "c",
                            "cluster": {
                                "server": server["server"],
                                "certificate-authority-data": ca,
                            },
                        }
                    ],
                    "users": [{"name": "runner", "user": {"token": token}}],
                    "contexts": [{"name": "runner", "context": {"cluster": "c", "user": "runner"}}],
                    "current-context": "runner",
                }
            )
        )
        yield kubeconfig
    finally:
        for doc in reversed(made):
            name = doc["metadata"]["name"]
            try:
                if doc["kind"] == "ClusterRole":
                    rbac_api.delete_cluster_role(name)
                elif doc["kind"] == "ClusterRoleBinding":
                    rbac_api.delete_cluster_role_binding(name)
                elif doc["kind"] == "Namespace":
                    core.delete_namespace(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        # A namespace is deleted in the background: wait, so a later apply does not meet it.
        deadline = time.monotonic() + 60
        for doc in made:
            if doc["kind"] != "Namespace":
                continue
            while time.monotonic() < deadline:
                try:
                    core.read_namespace(doc["metadata"]["name"])
                except ApiException as exc:
                    if exc.status == 404:
                        break
                    raise
                time.sleep(0.5)


def _existing_profile(tmp_path: Path, kubeconfig: Path, session_profile) -> Path:
    """``provider: existing`` with what the local session cluster has: its KWOK GPU node and
    Kueue; no MIG slices, DAS or gateway URLs exist there outside the suites' own runs."""
    gpus = session_profile.capabilities.gpu_nodes
    data = {
        "name": "local-as-existing",
        "provider": "existing",
        "reach": {"kubeconfig": str(kubeconfig)},
        "capabilities": {
            "gpu_nodes": gpus.model_dump(),
            "mig": {"enabled": False},
            "kueue": True,
            "das": False,
            "inference_gateway": False,
        },
        "time_compression": session_profile.time_compression,
        "slo": session_profile.slo.model_dump(),
    }
    path = tmp_path / "local-as-existing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.pr
def test_runner_role_allows_the_suites_and_nothing_else(runner_kubeconfig, tmp_path, k8sai_profile):
    profile = load_profile(str(_existing_profile(tmp_path, runner_kubeconfig, k8sai_profile)))
    handle = ClusterHandle(profile, runner_kubeconfig, None, "existing")
    found = report.run(handle)
    access = {a.suite: a for a in found.access}
    for suite in ("smoke", "kueue", "das"):
        assert access[suite].ok, f"{suite}: {access[suite].missing or access[suite].unknown}"
    assert {s.suite: s.status for s in found.suites}["smoke"] == "will run", report.render(found)
    # Outside the role: reading Secrets, and a ClusterRole of one's own, are refused.
    api = report.api_client(handle)
    try:
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(api).list_secret_for_all_namespaces()
        assert refused.value.status == 403
        outside = rbac.Permission("rbac.authorization.k8s.io", "clusterroles", "create")
        assert not rbac.review(Reader(api, 10), outside)
    finally:
        api.close()


@pytest.mark.pr
def test_smoke_suite_passes_as_the_runner(runner_kubeconfig, tmp_path, k8sai_profile):
    profile = _existing_profile(tmp_path, runner_kubeconfig, k8sai_profile)
    results = tmp_path / "results"
    cmd = [
        sys.executable, "-m", "pytest", f"--cluster={profile}", "suites/smoke",
        "--results-dir", str(results), "-p", "no:cacheprovider",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
        timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
    assert proc.returncode == 0, f"smoke as the runner ServiceAccount failed:\n{tail}"
    assert " passed" in tail.splitlines()[-1] and " failed" not in tail.splitlines()[-1], tail
    # The run audits the cluster, which outlives it, for objects of its own left behind.
    assert "left behind by this run" not in proc.stdout + proc.stderr, tail
