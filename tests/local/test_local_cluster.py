"""Integration tests of the local provider against its real components.

The session's `cluster` is checked for what the profile promised; separate, short-lived clusters
(other names, so the session's is untouched) prove cleanup after teardown, after a component
that dies during start, and after Ctrl-C during start.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from pytest_k8sai.clusters.local import controlplane, state
from pytest_k8sai.clusters.local.processes import pid_alive
from pytest_k8sai.clusters.local.provider import LocalProvider
from pytest_k8sai.clusters.objects import ObjectTracker
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.core.profiles import load_profile
from pytest_k8sai.kueue import objects as kueue
from pytest_k8sai.workloads.jobs import gpu_job


@pytest.fixture(autouse=True)
def _local_tier_only(k8sai_profile):
    # These start extra local clusters; on an existing cluster's run they are out of place.
    if k8sai_profile.provider != "local":
        pytest.skip(f"local-tier test; profile '{k8sai_profile.name}' is {k8sai_profile.provider}")


@pytest.fixture(autouse=True)
def _profile_files_name_their_cluster(monkeypatch):
    # The session's cluster is already up under $K8SAI_LOCAL_CLUSTER, if set; the extra
    # clusters below are named by their profile files, which that variable would override.
    monkeypatch.delenv("K8SAI_LOCAL_CLUSTER", raising=False)


def _profile_file(tmp_path: Path, cluster_name: str) -> Path:
    data = yaml.safe_load(load_profile("local").model_dump_json())
    data["local"]["cluster_name"] = cluster_name
    path = tmp_path / f"{cluster_name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _assert_gone(name: str, records) -> None:
    assert not state.run_dir(name).exists(), f"run dir of {name} left behind"
    alive = [r.name for r in records if pid_alive(r)]
    assert not alive, f"processes left running: {alive}"


@pytest.mark.requires("gpu")
def test_session_cluster_has_the_profiles_gpu_nodes(cluster):
    spec = cluster.profile.capabilities.gpu_nodes
    nodes = cluster.core.list_node(label_selector="nvidia.com/gpu.product").items
    assert len(nodes) == spec.count
    for node in nodes:
        assert node.status.allocatable["nvidia.com/gpu"] == str(spec.gpus_per_node)
        assert node.metadata.labels["nvidia.com/gpu.product"] == spec.product
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        assert ready == "True", f"node {node.metadata.name} not Ready"


def test_session_cluster_serves_kueue_api(cluster):
    if cluster.provider != "local":
        pytest.skip("checks the local tier's own Kueue install")
    groups = {g.name for g in client.ApisApi(cluster.api_client).get_api_versions().groups}
    assert "kueue.x-k8s.io" in groups
    assert cluster.versions["kueue"] and cluster.versions["kubernetes"]


@pytest.fixture
def own_cluster_name(request):
    # A fixed name per test: a crashed run's leftovers are removed by the next run's cleanup.
    name = "itest-" + request.node.name.removeprefix("test_")[:20].replace("_", "-").strip("-")
    yield name
    # Whatever the test did, leave nothing of this cluster behind.
    state.remove(name, state.load(name))


def _first_admission(handle, run_id: str) -> None:
    """Submit one queued Job to a fresh cluster and wait until Kueue admits it."""
    ns = "first-admission"
    handle.core.create_namespace({"metadata": {"name": ns}})
    kueue.create_gpu_queue(ObjectTracker(handle.api_client, run_id), ns, gpus=8)
    handle.batch.create_namespaced_job(ns, gpu_job("first", ns, run_seconds=1, queue="lq"))
    deadline = time.monotonic() + 60
    while not kueue.is_admitted(kueue.workload_for_job(handle.api_client, ns, "first")):
        assert time.monotonic() < deadline, "Kueue did not admit the first Job within 60 s"
        time.sleep(0.02)


def test_start_admit_and_destroy_leave_nothing_behind(
    tmp_path, own_cluster_name, slo, k8sai_run_id
):
    provider = LocalProvider(
        load_profile(str(_profile_file(tmp_path, own_cluster_name))), log=lambda m: None
    )
    started = time.monotonic()
    handle = provider.create()
    ready_s = time.monotonic() - started
    _first_admission(handle, k8sai_run_id)
    admitted_s = time.monotonic() - started
    handle.close()
    st = state.load(own_cluster_name)
    assert st is not None and st.ready and not st.dead()
    assert {p.name for p in st.processes} == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "kueue",
    }
    assert handle.kubeconfig.exists()
    started = time.monotonic()
    provider.destroy()
    stop_s = time.monotonic() - started
    _assert_gone(own_cluster_name, st.processes)
    # Figures for the results file, not assertions: the plugin's own tests stay untimed.
    slo.info(
        "local cluster start, cached binaries",
        ready_s,
        unit="s",
        n=1,
        source="LocalProvider.create() wall time, until nodes Ready",
    )
    slo.info(
        "local start to first Kueue admission",
        admitted_s,
        unit="s",
        n=1,
        source="create() + queue objects + Job, until Workload Admitted",
    )
    slo.info(
        "local cluster teardown",
        stop_s,
        unit="s",
        n=1,
        source="LocalProvider.destroy() wall time, processes gone and dir removed",
    )


def test_component_dying_during_start_names_it_and_its_log(tmp_path, own_cluster_name, monkeypatch):
    # Occupy the port etcd is told to use, so etcd exits during start.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    real = controlplane.Ports.allocate

    def with_taken_etcd_port() -> controlplane.Ports:
        return real().model_copy(update={"etcd": taken})

    monkeypatch.setattr(controlplane.Ports, "allocate", staticmethod(with_taken_etcd_port))
    provider = LocalProvider(
        load_profile(str(_profile_file(tmp_path, own_cluster_name))), log=lambda m: None
    )
    try:
        with pytest.raises(ClusterError) as err:
            provider.create()
    finally:
        blocker.close()
    msg = str(err.value)
    assert "'etcd'" in msg and "address already in use" in msg
    log = Path(msg.rsplit("full log: ", 1)[1].strip())
    assert log.exists(), "the log named in the error must survive the cleanup"
    _assert_gone(own_cluster_name, [])


def test_ctrl_c_during_start_stops_everything(tmp_path, own_cluster_name):
    profile = _profile_file(tmp_path, own_cluster_name)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_k8sai.cli", "local", "--cluster", str(profile), "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A shell's background jobs inherit SIGINT as ignored; Ctrl-C must reach this one.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    records = []
    while time.monotonic() < deadline:  # interrupt once the apiserver process exists
        st = state.load(own_cluster_name)
        if st and any(p.name == "kube-apiserver" for p in st.processes):
            records = st.processes
            break
        time.sleep(0.02)
    assert records, "the cluster never got as far as starting kube-apiserver"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "Traceback" not in out, out
    _assert_gone(own_cluster_name, records)


def test_second_provider_reuses_a_kept_cluster(tmp_path, own_cluster_name):
    profile = load_profile(str(_profile_file(tmp_path, own_cluster_name)))
    first = LocalProvider(profile, keep=True, log=lambda m: None)
    first.create()
    first.destroy()  # keep=True: still running
    st = state.load(own_cluster_name)
    assert st is not None and not st.dead()
    second = LocalProvider(profile, log=lambda m: None)
    handle = second.create()
    assert not second.created, "a reused cluster belongs to whoever started it"
    assert handle.kubeconfig == st.kubeconfig
    second.destroy()
    assert not state.load(own_cluster_name).dead(), "destroy() must leave a reused cluster alone"


def test_unknown_cluster_profile_in_cli_is_one_paragraph(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pytest_k8sai.cli", "local", "--cluster", "nope", "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert "no built-in profile" in out.stderr and "Traceback" not in out.stderr
