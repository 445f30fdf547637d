"""Every wait has a bound, and a wait that gives up says what it waited for and what it last
saw, while the session goes on.

- A pytest session of its own (tests/reliability/stuck_suite.py) on the session's cluster, with a
  profile whose ``kueue_suite.job_timeout_s`` is a few seconds: a Job Kueue never admits, a
  Job whose pod no node can take and a wave of pods that never ends each fail their own test
  within the bound, naming the Job and its Workload's or pod's last state; the ordinary Job
  after them still completes.
- An inference replica that never becomes ready: its Pod (bound to a node that does not exist)
  and its process (never answering /health) each fail the start with their state.

Runtime: ~50 s (three stuck tests of JOB_TIMEOUT_S each, plus a session start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pytest_k8sai.clusters.local.processes import Supervisor, free_port
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.core.profiles import load_profile
from pytest_k8sai.gaie import pool
from pytest_k8sai.gaie.replicas import ready

ROOT = Path(__file__).resolve().parents[2]
SUITE = "tests/reliability/stuck_suite.py"
JOB_TIMEOUT_S = 6.0
SESSION_TIMEOUT_S = 300
REPLICA_TIMEOUT_S = 3.0


@pytest.fixture(autouse=True)
def _local_tier_only(k8sai_profile):
    if k8sai_profile.provider != "local":
        pytest.skip(f"local-tier test; profile '{k8sai_profile.name}' is {k8sai_profile.provider}")


def _profile_with_short_job_timeout(tmp_path: Path, cluster_name: str) -> Path:
    data = yaml.safe_load(load_profile("local").model_dump_json())
    data["local"]["cluster_name"] = cluster_name
    data["kueue_suite"]["job_timeout_s"] = JOB_TIMEOUT_S
    path = tmp_path / "short-timeouts.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_stuck_jobs_fail_their_own_tests_and_the_session_goes_on(cluster, tmp_path):
    # Attach to the session's cluster: the inner session neither starts nor stops one.
    name = cluster.profile.local.cluster_name
    results = tmp_path / "results"
    cmd = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
        "--cluster", str(_profile_with_short_job_timeout(tmp_path, name)), SUITE,
        "--results-dir", str(results),
    ]  # fmt: skip
    env = {
        **os.environ,
        "K8SAI_LOCAL_CLUSTER": name,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SESSION_TIMEOUT_S,
        check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    tail = "\n".join(out.splitlines()[-40:])
    assert proc.returncode == 1, f"expected failed tests (exit 1), got {proc.returncode}:\n{tail}"
    tests = {
        t["nodeid"].rsplit("::", 1)[1]: t
        for t in json.loads((results / "results.json").read_text())["tests"]
    }
    outcomes = {n: t["outcome"] for n, t in tests.items()}
    assert outcomes == {
        "test_1_job_kueue_never_admits": "failed",
        "test_2_job_whose_pod_no_node_takes": "failed",
        "test_3_pod_wave_that_never_ends": "failed",
        "test_4_ordinary_job_still_completes": "passed",
    }, f"{outcomes}\n{tail}"
    for stuck in ("test_1", "test_2", "test_3"):
        test = next(t for n, t in tests.items() if n.startswith(stuck))
        # Bounded by the profile: the wait, the namespace's setup and teardown, no more.
        assert JOB_TIMEOUT_S <= test["duration_s"] < JOB_TIMEOUT_S + 30, test

    never_admitted = tests["test_1_job_kueue_never_admits"]["message"]
    for part in (
        "1 of 1 Jobs in k8sai-", "not complete after 6s", "Complete condition", "too-big: ",
        "never admitted", "suspended", "QuotaReserved=False", "nvidia.com/gpu", "no pod",
    ):  # fmt: skip
        assert part in never_admitted, f"{part!r} not in: {never_admitted}"
    unschedulable = tests["test_2_job_whose_pod_no_node_takes"]["message"]
    for part in (
        "not complete after 6s", "no-node: ", "no pod seen running", "Pending",
        "PodScheduled=False (Unschedulable", "Insufficient nvidia.com/gpu",
    ):  # fmt: skip
        assert part in unschedulable, f"{part!r} not in: {unschedulable}"
    wave = tests["test_3_pod_wave_that_never_ends"]["message"]
    for part in (
        "0 of 1 pods wave-* in", "ended (Succeeded or Failed) within 6s", "phases Pending",
        "Unschedulable", "Insufficient nvidia.com/gpu",
    ):  # fmt: skip
        assert part in wave, f"{part!r} not in: {wave}"


def test_replica_pod_that_never_becomes_ready_names_its_state(cluster, k8s_namespace):
    body = pool.replica_pod("stuck", 0, 8000, "m", "itest", node="kwok-inference-absent")
    cluster.core.create_namespaced_pod(k8s_namespace, body)
    with pytest.raises(ClusterError) as err:
        pool.wait_pod_ips(cluster.core, k8s_namespace, ["stuck-0"], REPLICA_TIMEOUT_S)
    msg = str(err.value)
    for part in (
        "not Ready with an IP within 3s (gaie_suite.start_timeout_s)", "stuck-0: ",
        "phase Pending", "node kwok-inference-absent", "no IP",
    ):  # fmt: skip
        assert part in msg, f"{part!r} not in: {msg}"


def test_replica_process_that_never_answers_names_what_was_awaited(tmp_path):
    sup = Supervisor(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sup.start("sim-0-stuck", Path("/bin/sleep"), ["60"])
    try:
        with pytest.raises(ClusterError) as err:
            sup.wait("sim-0-stuck", lambda: ready(url), REPLICA_TIMEOUT_S, f"GET {url}/health")
    finally:
        sup.stop_matching("sim-")
    msg = str(err.value)
    assert f"'sim-0-stuck' did not become ready (GET {url}/health) within 3s" in msg, msg
    assert "full log:" in msg
