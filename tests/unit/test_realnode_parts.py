"""The real node's configs and its host bookkeeping (no kubelet, no containerd, no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_k8sai.clusters.local.realnode import containerd, hoststate, kubelet
from pytest_k8sai.core.errors import ProfileError
from pytest_k8sai.core.profiles import load_profile, parse_profile


def test_kubelet_config_keeps_the_host_as_it_was(tmp_path):
    cfg = kubelet.config(
        run_dir=tmp_path,
        port=10250,
        healthz_port=10248,
        containerd_socket=tmp_path / "c.sock",
        cgroup_root="/k8sai-x",
    )
    # No iptables chains on the host, loopback only, its own cgroup subtree, v1 accepted.
    assert cfg["makeIPTablesUtilChains"] is False
    assert cfg["address"] == cfg["healthzBindAddress"] == "127.0.0.1"
    assert cfg["readOnlyPort"] == 0 and cfg["cgroupRoot"] == "/k8sai-x"
    assert cfg["failCgroupV1"] is False and cfg["cgroupDriver"] == "cgroupfs"
    assert cfg["containerRuntimeEndpoint"] == f"unix://{tmp_path / 'c.sock'}"
    args = kubelet.args(
        config_file=tmp_path / "k.yaml",
        kubeconfig=tmp_path / "kc",
        run_dir=tmp_path,
        node="real-gpu-0",
        labels=kubelet.node_labels("NVIDIA-A100-SXM4-40GB", 8),
    )
    assert "--node-ip=127.0.0.1" in args and "--hostname-override=real-gpu-0" in args
    labels = next(a for a in args if a.startswith("--node-labels="))
    assert "nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB" in labels and "type=real" in labels


def test_containerd_is_private_and_runs_without_cap_sys_resource(tmp_path):
    paths = containerd.write_config(tmp_path, "registry.k8s.io/pause:3.10.2", Path("/usr/lib/cni"))
    toml = paths.config.read_text()
    assert f'address = "{tmp_path / "containerd" / "containerd.sock"}"' in toml
    assert "restrict_oom_score_adj = true" in toml and "SystemdCgroup = false" in toml
    assert "/var/lib/containerd" not in toml
    conflist = (paths.cni_conf / "10-loopback.conflist").read_text()
    assert '"type": "loopback"' in conflist and "bridge" not in conflist


def test_undo_restores_sysctls_and_removes_only_what_the_node_created(tmp_path, monkeypatch):
    sysctl = tmp_path / "proc" / "kernel_panic"
    sysctl.parent.mkdir()
    sysctl.write_text("10\n")  # what a kubelet leaves
    monkeypatch.setattr(hoststate, "_sysctl_path", lambda name: sysctl)
    monkeypatch.setattr(hoststate, "CGROUP_V1", tmp_path / "no-cgroups")
    created = tmp_path / "var-lib-kubelet"
    (created / "device-plugins").mkdir(parents=True)
    (created / "device-plugins" / "kubelet.sock").write_text("")
    kept = tmp_path / "was-there"
    kept.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    hoststate.HostRecord(run_dir=run, sysctls={"kernel.panic": "1"}, created_dirs=[created]).save()
    assert hoststate.undo(run) == []
    assert sysctl.read_text() == "1"
    assert not created.exists() and kept.exists()
    assert hoststate.load(run) is None  # the record goes once undone
    assert hoststate.undo(run) == []  # and a second teardown has nothing to do


def test_local_nodes_profile_extends_local_and_allows_one_real_node():
    local, nodes = load_profile("local"), load_profile("local-nodes")
    assert nodes.real_nodes and not local.real_nodes
    # Two thresholds differ: the KWOK duration tolerance (a real kubelet starts containers in
    # ~1 s, which the simulated tier never sees) and Kueue's admission P99, calibrated on this
    # tier with its evidence beside it (docs/real-nodes.md).
    changed = {k for k, v in nodes.slo.model_dump().items() if v != getattr(local.slo, k)}
    assert changed == {"kwok_duration_tolerance_ms", "kueue_admission_attempt_p99_ms"}
    assert nodes.slo.kwok_duration_tolerance_ms > local.slo.kwok_duration_tolerance_ms
    evidence = nodes.calibration["kueue_admission_attempt_p99_ms"]
    assert (
        evidence.trials >= 5
        and evidence.date != local.calibration["kueue_admission_attempt_p99_ms"].date
    )
    # worst + margin, rounded outward to 3 significant digits (k8sai calibrate)
    proposed = evidence.worst * (1 + evidence.margin)
    assert proposed <= nodes.slo.kueue_admission_attempt_p99_ms <= proposed * 1.01
    assert nodes.local.cluster_name != local.local.cluster_name  # never shares a cluster
    assert nodes.workload.sleep and nodes.workload.host_network
    data = {
        "name": "x",
        "provider": "local",
        "local": {"gpu_nodes": "real"},
        "capabilities": {"gpu_nodes": {"count": 2}},
    }
    with pytest.raises(ProfileError, match="count must be 1"):
        parse_profile(data, "x.yaml")


def test_extends_names_a_missing_base_in_one_paragraph(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("extends: nowhere\nname: p\nprovider: local\n")
    with pytest.raises(ProfileError, match="field 'extends': 'nowhere' no such profile"):
        load_profile(str(f))
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\nname: l\nprovider: local\n")
    with pytest.raises(ProfileError, match="chain"):
        load_profile(str(loop))
