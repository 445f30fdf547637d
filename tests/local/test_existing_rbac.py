"""The suites' RBAC role, proven against the session's local cluster attached as
``provider: existing`` through a ServiceAccount token bound only to the shipped manifest
(pytest_k8sai/manifests/rbac/): preflight reads the cluster and finds every verb the smoke and
Kueue suites need, a call outside the role is refused, and the smoke suite passes that way."""

from __future__ import annotations

import base64
import contextlib
import json
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
from pytest_k8sai.das import slices as das
from pytest_k8sai.das.runs import experiments, slice_plan
from pytest_k8sai.workloads.whisper import load_trace

ROOT = Path(__file__).resolve().parents[2]  # the checkout: suites/ is run by path
TIMEOUT_S = 600


def _labelled(doc: dict, run_id: str) -> dict:
    doc = {**doc, "metadata": {**doc["metadata"]}}
    doc["metadata"]["labels"] = {
        **(doc["metadata"].get("labels") or {}),
        **ownership_labels(run_id),
    }
    return doc


def _token_kubeconfig(cluster, service_account: str, path: Path) -> Path:
    """A kubeconfig for the session cluster holding only a 1-hour token of ServiceAccount
    ``k8sai-system/<service_account>``."""
    token = cluster.core.create_namespaced_service_account_token(
        service_account,
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
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": server["server"], "certificate-authority-data": ca},
                    }
                ],
                "users": [{"name": service_account, "user": {"token": token}}],
                "contexts": [
                    {"name": "runner", "context": {"cluster": "c", "user": service_account}}
                ],
                "current-context": "runner",
            }
        )
    )
    return path


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
        kubeconfig = _token_kubeconfig(cluster, "k8sai-runner", tmp_path / "runner.kubeconfig")
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


def _existing_profile(
    tmp_path: Path,
    kubeconfig: Path,
    session_profile,
    namespaces: list[str] | None = None,
    *,
    mig: bool = False,
) -> Path:
    """``provider: existing`` with what the local session cluster has: its KWOK GPU node and
    Kueue; MIG only where a test laid out slice nodes first (``mig``); no DAS or gateway URLs
    exist there outside the suites' own runs."""
    gpus = session_profile.capabilities.gpu_nodes
    data = {
        "name": "local-as-existing",
        "provider": "existing",
        "reach": {"kubeconfig": str(kubeconfig), "namespaces": namespaces or []},
        "capabilities": {
            "gpu_nodes": gpus.model_dump(),
            "mig": {"enabled": mig, "strategy": "mixed"},
            "kueue": True,
            "das": False,
            "inference_gateway": False,
        },
        # Vanilla Kubernetes assigns no UID (no OpenShift SCC): the restricted pods name one.
        "workload": {"run_as_user": 65534},
        "time_compression": session_profile.time_compression,
        "slo": session_profile.slo.model_dump(),
        "das_suite": session_profile.das_suite.model_dump(),
    }
    path = tmp_path / "local-as-existing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.pr
def test_runner_role_allows_the_suites_and_nothing_else(
    runner_kubeconfig, tmp_path, k8sai_profile, k8sai_results_dir
):
    profile = load_profile(str(_existing_profile(tmp_path, runner_kubeconfig, k8sai_profile)))
    handle = ClusterHandle(profile, runner_kubeconfig, None, "existing")
    found = report.run(handle)
    # Kept with the run's results: what preflight saw through the role alone.
    (k8sai_results_dir / "preflight-local-as-existing.txt").write_text(report.render(found) + "\n")
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


def _suite_passes(
    profile: Path,
    out: Path,
    who: str,
    args: tuple[str, ...] = ("suites/smoke",),
    *,
    env: dict[str, str] | None = None,
    timeout_s: float = TIMEOUT_S,
) -> str:
    """The suites, run as a user would against ``profile`` (results and the run's output,
    ``run.log``, in ``out``), pass and leave nothing; returns the output."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / "run.log"
    cmd = [
        sys.executable, "-m", "pytest", f"--cluster={profile}", *args,
        "--results-dir", str(out), "-p", "no:cacheprovider",
    ]  # fmt: skip
    print(f"[k8sai] {who}: {' '.join(cmd)}; output: {log}", flush=True)
    with log.open("w") as sink:  # a file, not a pipe: long runs can be followed with tail -f
        proc = subprocess.run(
            cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=sink,
            stderr=subprocess.STDOUT, timeout=timeout_s, check=False,
        )  # fmt: skip
    text = log.read_text()
    tail = "\n".join(text.splitlines()[-30:])
    assert proc.returncode == 0, f"{' '.join(args)} {who} failed:\n{tail}"
    last = tail.splitlines()[-1]
    assert " passed" in last and " failed" not in last, tail
    # The run audits the cluster, which outlives it, for objects of its own left behind.
    assert "left behind by this run" not in text, tail
    return text


@pytest.mark.pr
def test_smoke_suite_passes_as_the_runner(runner_kubeconfig, tmp_path, k8sai_profile):
    profile = _existing_profile(tmp_path, runner_kubeconfig, k8sai_profile)
    _suite_passes(profile, tmp_path / "results", "as the runner ServiceAccount")


@pytest.fixture
def static_mig_layout(cluster, k8sai_run_id, runner_kubeconfig, tmp_path):
    """As a cluster admin with a static MIG configuration would have it: KWOK nodes exposing
    the planner's best layout for the full trace as mixed-strategy ``nvidia.com/mig-*``
    resources, created here as the admin (the runner may not create nodes) and deleted
    afterwards. Yields the ``provider: existing`` profile that claims MIG."""
    profile_path = _existing_profile(tmp_path, runner_kubeconfig, cluster.profile, mig=True)
    profile = load_profile(str(profile_path))
    plan = slice_plan(profile, experiments(profile, load_trace())["full"].jobs)
    with das.simulated_slice_nodes(cluster.api_client, profile, plan, k8sai_run_id):
        yield profile_path


@pytest.mark.pr
def test_gpu_slicing_suite_passes_as_the_runner(static_mig_layout, tmp_path):
    """The GPU slicing suite's PR checks through the role alone: its Jobs, LocalQueues,
    ClusterQueues and ResourceFlavors, on slices it did not make (so each figure is a verdict,
    not a model check); the real-DAS checks skip for want of DAS."""
    out = _suite_passes(
        static_mig_layout,
        tmp_path / "results",
        "as the runner ServiceAccount",
        ("suites/das", "-m", "pr", "-rA"),
    )
    for test in (
        "test_slicing_gain_on_full_trace",
        "test_kueue_admits_slices_within_quota",
        "test_kube_scheduler_places_sliced_pods_on_free_fitting_slices[full]",
    ):
        assert f"PASSED suites/das/test_gpu_slicing.py::{test}" in out, out[-3000:]
    verdicts = [
        json.loads(line)
        for line in (tmp_path / "results" / "verdicts.jsonl").read_text().splitlines()
        if line.strip()
    ]
    gain = [v for v in verdicts if v["key"] == "das_jct_gain_min"]
    # Off the suite's own slices the gain is measured, not fixed by its inputs: a verdict.
    assert gain and all(v["passed"] and not v["model_check"] for v in gain), gain


PRECREATED = ["k8sai-pre-a", "k8sai-pre-b"]
FOREIGN_JOB = "not-the-suites"


@pytest.fixture(scope="module")
def precreated_kubeconfig(cluster, runner_kubeconfig, k8sai_run_id, tmp_path_factory):
    """As an admin would for a user who may not create namespaces: two namespaces, one holding
    a Job that is not the suites', and a ServiceAccount bound to the suites' roles without
    k8sai-own-namespaces. Yields its kubeconfig; removes all of it afterwards."""
    labels = ownership_labels(k8sai_run_id)
    meta = client.V1ObjectMeta
    core, rbac_api = cluster.core, client.RbacAuthorizationV1Api(cluster.api_client)
    batch = client.BatchV1Api(cluster.api_client)
    try:
        for ns in PRECREATED:
            core.create_namespace(client.V1Namespace(metadata=meta(name=ns, labels=labels)))
        batch.create_namespaced_job(
            PRECREATED[0],
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": FOREIGN_JOB},  # no labels: not the suites'
                "spec": {
                    "suspend": True,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                        }
                    },
                },
            },
        )
        core.create_namespaced_service_account(
            "k8sai-system",
            client.V1ServiceAccount(metadata=meta(name="k8sai-nsrunner", labels=labels)),
        )
        for role in ("k8sai-common", "k8sai-smoke"):
            rbac_api.create_cluster_role_binding(
                client.V1ClusterRoleBinding(
                    metadata=meta(name=f"k8sai-nsrunner-{role}", labels=labels),
                    role_ref=client.V1RoleRef(
                        api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role
                    ),
                    subjects=[
                        client.RbacV1Subject(
                            kind="ServiceAccount", name="k8sai-nsrunner", namespace="k8sai-system"
                        )
                    ],
                )
            )
        path = tmp_path_factory.mktemp("nsrunner") / "nsrunner.kubeconfig"
        yield _token_kubeconfig(cluster, "k8sai-nsrunner", path)
    finally:
        for role in ("k8sai-common", "k8sai-smoke"):
            with contextlib.suppress(ApiException):
                rbac_api.delete_cluster_role_binding(f"k8sai-nsrunner-{role}")
        with contextlib.suppress(ApiException):
            core.delete_namespaced_service_account("k8sai-nsrunner", "k8sai-system")
        for ns in PRECREATED:
            with contextlib.suppress(ApiException):
                core.delete_namespace(ns)


@pytest.mark.pr
def test_smoke_suite_runs_in_precreated_namespaces_without_creating_any(
    precreated_kubeconfig, cluster, tmp_path, k8sai_profile
):
    profile = _existing_profile(tmp_path, precreated_kubeconfig, k8sai_profile, PRECREATED)
    preflight = load_profile(str(profile))
    found = report.run(ClusterHandle(preflight, precreated_kubeconfig, None, "existing"))
    smoke = {a.suite: a for a in found.access}["smoke"]
    assert smoke.ok, f"preflight: {smoke.missing or smoke.unknown}"
    api = report.api_client(ClusterHandle(preflight, precreated_kubeconfig, None, "existing"))
    try:  # the identity really cannot create a namespace
        outside = rbac.Permission("", "namespaces", "create")
        assert not rbac.review(Reader(api, 10), outside)
    finally:
        api.close()
    _suite_passes(profile, tmp_path / "results", "in pre-created namespaces")
    # The namespaces are as the admin left them: still there, the foreign Job untouched, none
    # of the suites' Jobs or pods left.
    batch = client.BatchV1Api(cluster.api_client)
    for ns in PRECREATED:
        assert cluster.core.read_namespace(ns).status.phase == "Active"
        jobs = [j.metadata.name for j in batch.list_namespaced_job(ns).items]
        assert jobs == ([FOREIGN_JOB] if ns == PRECREATED[0] else []), (ns, jobs)
        pods = cluster.core.list_namespaced_pod(ns, label_selector="k8sai.io/created-by").items
        assert pods == [], (ns, [p.metadata.name for p in pods])


# -- the real-node tier attached as provider: existing (make nodes-existing) -------------------

REAL_NODE_TIMEOUT_S = 3 * 3600
METRICS_TOKEN_ENV = "K8SAI_TEST_KUEUE_METRICS_TOKEN"


def _real_node_profile(tmp_path: Path, kubeconfig: Path, cluster) -> Path:
    """``provider: existing`` for the real-node tier as its admin would write it: the GPU node
    and MIG through DAS it has, Kueue's /metrics where this machine reaches it, and the node's
    own busybox (no registry here) run restricted as a fixed UID (no SCC assigns one)."""
    local = cluster.profile
    data = {
        "name": "local-nodes-as-existing",
        "provider": "existing",
        "reach": {"kubeconfig": str(kubeconfig)},
        "capabilities": {**local.capabilities.model_dump(), "inference_gateway": False},
        "workload": {
            **local.workload.model_dump(),
            "restricted": True,
            "run_as_user": 65534,
        },
        "time_compression": local.time_compression,
        "slo": local.slo.model_dump(),
        "das_suite": local.das_suite.model_dump(),
        "kueue_suite": {
            **local.kueue_suite.model_dump(exclude_none=True),
            "metrics_url": cluster.endpoints["kueue_metrics"],
            "metrics_token_env": METRICS_TOKEN_ENV,
            "metrics_ca_file": cluster.endpoints["ca_file"],
        },
    }
    path = tmp_path / "local-nodes-as-existing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.pr
def test_suites_run_as_existing_on_the_real_node(
    cluster, runner_kubeconfig, k8sai_results_dir, tmp_path
):
    """Issue 13's proof on pods that really start: the smoke, Kueue and GPU slicing suites'
    PR checks against the real-node tier (kubelet + containerd + runc, the real DAS) as
    ``provider: existing``, through the runner role alone; preflight's table and the run's
    results are kept in <results-dir>/as-existing."""
    if cluster.profile.local.gpu_nodes != "real":
        pytest.skip("needs the real-node tier: make nodes-existing (--cluster=local-nodes)")
    out = k8sai_results_dir / "as-existing"
    out.mkdir(parents=True, exist_ok=True)
    profile_path = _real_node_profile(tmp_path, runner_kubeconfig, cluster)
    (out / "profile.yaml").write_text(profile_path.read_text())
    handle = ClusterHandle(load_profile(str(profile_path)), runner_kubeconfig, None, "existing")
    found = report.run(handle)
    table = report.render(found)
    (out / "preflight.txt").write_text(table + "\n")
    print(table, flush=True)
    status = {s.suite: s.status for s in found.suites}
    for suite in ("smoke", "kueue", "das"):
        assert status[suite] == "will run", table
    assert not found.contradicted, table
    text = _suite_passes(
        profile_path,
        out,
        "real-node tier as provider: existing",
        ("suites/smoke", "suites/kueue", "suites/das", "-m", "pr", "-rA"),
        env={METRICS_TOKEN_ENV: cluster.endpoints["kueue_metrics_token"]},
        timeout_s=REAL_NODE_TIMEOUT_S,
    )
    for test in (
        "suites/smoke/test_kueue_chain.py::test_job_admitted_by_kueue_runs_on_gpu_node_and_completes",
        "suites/das/test_gpu_slicing.py::test_slicing_gain_on_full_trace",
        "suites/das/test_gpu_slicing.py::test_das_claims_follow_lifecycle_and_are_released",
    ):
        assert f"PASSED {test}" in text, text[-3000:]
    assert "PASSED suites/kueue/" in text, text[-3000:]
