"""Unit tests of the real DAS on the local tier: source checks, objects, command lines.

Pure: no cluster, no Go. A small synthetic source tree stands in for instaslice-operator (the
shapes of its files, not their content); checks against the real tree run when a copy is
unpacked in the cache.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import yaml

from pytest_k8sai.clusters.local.pki import Pki
from pytest_k8sai.clusters.local.realdas import build, objects, run, source
from pytest_k8sai.core.errors import BuildError

OTHER_COMMIT = "0" * 40
LABEL = ("k8sai.io/das", "true")

WEBHOOK = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "MutatingWebhookConfiguration",
    "metadata": {
        "name": "das-mutating-webhook-configuration",
        "annotations": {"cert-manager.io/inject-ca-from": "NS/NAME"},
        "labels": {"app.kubernetes.io/managed-by": "kustomize"},
    },
    "webhooks": [
        {
            "name": "instaslice.redhat.com",
            "clientConfig": {
                "service": {"name": "svc", "namespace": "das-operator", "path": "/mutate-pod"}
            },
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["x"]}
                ]
            },
            "failurePolicy": "Fail",
        }
    ],
}
SCHED_CONFIG = """apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: true
clientConnection:
  contentType: application/json
profiles:
- schedulerName: das-scheduler
  plugins:
    multiPoint:
      enabled:
      - name: MigAccelerator
  pluginConfig:
  - name: MigAccelerator
    args:
      namespace: das-operator
"""
EMULATED_GO = """package utils

func GenerateFakeCapacity(nodeName string) *X {
\treturn GenerateFakeCapacityA(nodeName)
}

func migPlacementA() map[string]instav1.Mig {
\treturn map[string]instav1.Mig{
\t\t"1g.5gb": {
\t\t\tPlacements: []instav1.Placement{
\t\t\t\t{Size: 1, Start: 0},
\t\t\t\t{Size: 1, Start: 1},
\t\t\t},
\t\t},
\t\t"1g.5gb+me": {
\t\t\tPlacements: []instav1.Placement{{1, 0}, {0, 1}},
\t\t},
\t\t"7g.40gb": {
\t\t\tPlacements: []instav1.Placement{{Size: 8, Start: 0}},
\t\t},
\t}
}

func generateFakeCapacityBase(nodeName string) *X {
\tres := R{NodeGPUs: []G{{GPUUUID: a}, {GPUUUID: b}, {GPUUUID: c}}}
}

func GenerateFakeCapacityA(nodeName string) *X {
\treturn generateFakeCapacityBase(nodeName, "GPU", "40Gi", migPlacementA())
}
"""


def fake_tree(root: Path) -> Path:
    (root / "vendor").mkdir(parents=True)
    (root / "go.mod").write_text(f"module {source.MODULE}\n\ngo 1.23.0\n")
    (root / "vendor" / "modules.txt").write_text("# vendored\n")
    assets = root / "bindata" / "assets" / "instaslice-operator"
    assets.mkdir(parents=True)
    (assets / "webhook.yaml").write_text(yaml.safe_dump(WEBHOOK))
    cm = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"config.yaml": SCHED_CONFIG}}
    (assets / "scheduler_config.yaml").write_text(yaml.safe_dump(cm))
    (root / "test" / "utils").mkdir(parents=True)
    (root / "test" / "utils" / "emulated.go").write_text(EMULATED_GO)
    return root


# -- source ---------------------------------------------------------------------------------


def test_tarball_sha_mismatch_names_both_hashes(tmp_path):
    tarball = tmp_path / "das.tar.gz"
    tarball.write_bytes(b"not the pinned tarball")
    actual = hashlib.sha256(b"not the pinned tarball").hexdigest()
    with pytest.raises(BuildError) as err:
        source.locate_source(print, env={source.SOURCE_ENV: str(tarball)}, root=tmp_path)
    msg = str(err.value)
    assert actual in msg and source.PINNED_TARBALL_SHA256 in msg and "\n" not in msg


def test_matching_tarball_is_unpacked_once(tmp_path, monkeypatch):
    tree = fake_tree(tmp_path / "instaslice-operator-x")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tree, arcname=tree.name)
    tarball = tmp_path / "das.tar.gz"
    tarball.write_bytes(buf.getvalue())
    monkeypatch.setattr(source, "PINNED_TARBALL_SHA256", hashlib.sha256(buf.getvalue()).hexdigest())
    cache = tmp_path / "cache"
    got = source.locate_source(print, env={source.SOURCE_ENV: str(tarball)}, root=cache)
    assert got.dir == source.src_dir(cache) and (got.dir / "go.mod").is_file()
    (got.dir / "sentinel").write_text("kept")
    again = source.locate_source(print, env={source.SOURCE_ENV: str(tarball)}, root=cache)
    assert (again.dir / "sentinel").exists()  # not unpacked a second time
    # Without the variable the unpacked copy is found through its marker (no clone).
    assert source.locate_source(print, env={}, root=cache).dir == got.dir


def test_directory_without_git_is_accepted_with_a_warning(tmp_path):
    tree = fake_tree(tmp_path / "src")
    said: list[str] = []
    got = source.locate_source(said.append, env={source.SOURCE_ENV: str(tree)}, root=tmp_path)
    assert got.dir == tree and got.commit == source.PINNED_COMMIT
    assert said and "warning" in said[0] and "no .git" in said[0]


def test_directory_commit_is_checked(tmp_path):
    tree = fake_tree(tmp_path / "src")
    git = tree / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/next\n")
    (git / "refs" / "heads" / "next").write_text(source.PINNED_COMMIT + "\n")
    assert source.check_directory(tree, print).commit == source.PINNED_COMMIT
    (git / "refs" / "heads" / "next").unlink()
    (git / "packed-refs").write_text(f"# pack-refs\n{OTHER_COMMIT} refs/heads/next\n")
    with pytest.raises(BuildError, match=f"{OTHER_COMMIT}.*{source.PINNED_COMMIT}"):
        source.check_directory(tree, print)
    (git / "HEAD").write_text(source.PINNED_COMMIT + "\n")  # detached
    assert source.directory_commit(tree) == source.PINNED_COMMIT


def test_directory_that_is_not_the_source_is_refused(tmp_path):
    with pytest.raises(BuildError, match="vendor/modules.txt"):
        source.locate_source(print, env={source.SOURCE_ENV: str(tmp_path)}, root=tmp_path)


def test_failed_clone_tells_to_set_the_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "REPOSITORY", str(tmp_path / "no-such-repository"))
    with pytest.raises(BuildError) as err:
        source.locate_source(print, env={}, root=tmp_path / "cache")
    msg = str(err.value)
    assert "git clone" in msg and source.SOURCE_ENV in msg and "\n" not in msg
    assert not list((tmp_path / "cache" / "src").glob("*"))  # no half clone left


# -- build ----------------------------------------------------------------------------------


def test_build_is_offline_from_vendor_with_cgo(tmp_path):
    cmd = build.build_command(tmp_path)
    assert cmd[:2] == ["go", "build"] and "-trimpath" in cmd and f"{tmp_path}/" in cmd
    assert cmd[-3:] == ["./cmd/das-scheduler", "./cmd/das-webhook", "./cmd/das-daemonset"]
    env = build.build_env()
    assert env["GOFLAGS"].startswith("-mod=vendor") and env["GOPROXY"] == "off"
    assert env["CGO_ENABLED"] == "1" and env["GOTOOLCHAIN"] == "local"
    assert build.build_key("a" * 40, "go1.26.8") != build.build_key("a" * 40, "go1.27.0")
    assert build.bin_dir(tmp_path, "9f4fc07f2a", "go1.26.8").name.startswith("das-9f4fc07f-")


# -- objects --------------------------------------------------------------------------------


def test_webhook_points_at_loopback_and_only_labelled_namespaces(tmp_path):
    tree = fake_tree(tmp_path / "src")
    doc = objects.webhook_configuration(tree, 12345, b"CA PEM", LABEL)
    assert doc["metadata"]["name"] == "das-mutating-webhook-configuration"
    assert "annotations" not in doc["metadata"]
    assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pytest-k8sai"
    assert doc["metadata"]["labels"]["k8sai.io/created-by"] == "pytest-k8sai"
    (hook,) = doc["webhooks"]
    assert hook["clientConfig"] == {
        "url": "https://127.0.0.1:12345/mutate-pod",
        "caBundle": base64.b64encode(b"CA PEM").decode(),
    }
    sel = hook["namespaceSelector"]
    assert sel["matchLabels"] == {"k8sai.io/das": "true"}
    assert sel["matchExpressions"][0]["operator"] == "NotIn"  # upstream's exclusions kept
    assert WEBHOOK["webhooks"][0]["clientConfig"]["service"]  # the source doc is untouched


def test_scheduler_config_is_upstreams_for_one_local_process(tmp_path):
    tree = fake_tree(tmp_path / "src")
    cfg = objects.scheduler_config(tree, Path("/run/kubeconfig.yaml"))
    assert cfg["kind"] == "KubeSchedulerConfiguration"
    assert cfg["leaderElection"] == {"leaderElect": False}
    assert cfg["clientConnection"]["kubeconfig"] == "/run/kubeconfig.yaml"
    assert cfg["clientConnection"]["contentType"] == "application/json"
    (profile,) = cfg["profiles"]
    assert profile["schedulerName"] == "das-scheduler"
    assert profile["plugins"]["multiPoint"]["enabled"] == [{"name": "MigAccelerator"}]


def test_stand_ins_for_the_gpu_operator():
    crd = objects.cluster_policy_crd()
    assert crd["spec"]["scope"] == "Cluster" and crd["spec"]["group"] == "nvidia.com"
    (version,) = crd["spec"]["versions"]
    assert version["schema"]["openAPIV3Schema"]["x-kubernetes-preserve-unknown-fields"]
    policy = objects.cluster_policy()
    assert policy["metadata"]["name"] == "gpu-cluster-policy"
    assert policy["status"]["state"] == "ready"
    assert objects.runtime_class()["handler"] == "runc"
    assert objects.runtime_class()["metadata"]["name"] == "nvidia-legacy"


def test_emulated_tables_are_read_from_the_go_source(tmp_path):
    tree = fake_tree(tmp_path / "src")
    per_gpu, gpus = objects.emulated_placements(tree) or ({}, 0)
    assert per_gpu == {"1g.5gb": 2, "1g.5gb+me": 1, "7g.40gb": 1} and gpus == 3
    assert objects.emulated_placements(tmp_path) is None  # no such file: caller falls back


def test_kwok_capacity_for_two_a100_40gb():
    cap = objects.kwok_capacity(objects.FALLBACK_PER_GPU, objects.FALLBACK_GPUS)
    assert cap == {
        "mig.das.com/1g.5gb": "14",
        "mig.das.com/1g.5gb-plus-me": "14",
        "mig.das.com/1g.10gb": "8",
        "mig.das.com/2g.10gb": "6",
        "mig.das.com/3g.20gb": "4",
        "mig.das.com/4g.20gb": "2",
        "mig.das.com/7g.40gb": "2",
    }


def test_per_gpu_counts_from_a_node_accelerator():
    res = {
        "nodeGpus": [{"gpuUuid": "GPU-1"}, {"gpuUuid": "GPU-2"}],
        "migPlacement": {
            "1g.5gb": {"placements": [{"size": 1, "start": 0}, {"size": 1, "start": 1}]},
            "7g.40gb": {"placements": [{"size": 8, "start": 0}, {"size": 0, "start": 0}]},
        },
    }
    assert run.per_gpu_counts(res) == {"1g.5gb": 2, "7g.40gb": 1}


def test_real_source_tables_match_the_notes():
    tree = source.src_dir()
    if not (tree / objects.EMULATED_FILE).is_file():
        pytest.skip(f"no unpacked DAS source in {tree}")
    per_gpu, gpus = objects.emulated_placements(tree) or ({}, 0)
    assert (per_gpu, gpus) == (objects.FALLBACK_PER_GPU, objects.FALLBACK_GPUS)
    assert objects.webhook_configuration(tree, 1, b"x", LABEL)["webhooks"]
    assert objects.scheduler_config(tree, Path("k"))["profiles"][0]["schedulerName"]
    names = {d["metadata"]["name"] for d in objects.crd_docs(tree)}
    assert "allocationclaims.inference.redhat.com" in names


# -- command lines ----------------------------------------------------------------------------


def test_webhook_and_scheduler_listen_on_loopback(tmp_path):
    args = run.webhook_args(Pki(tmp_path), 4444)
    assert args[0] == "serve" and "--tls=true" in args
    assert "--listen=127.0.0.1" in args and "--port=4444" in args
    assert f"--tlscert={tmp_path / 'serving.crt'}" in args
    sargs = run.scheduler_args(tmp_path / "c.yaml", tmp_path / "k.yaml", 5555)
    assert "--namespace=das-operator" in sargs and "--secure-port=0" in sargs
    assert "--listen=127.0.0.1:5555" in sargs and f"--config={tmp_path / 'c.yaml'}" in sargs


def test_daemonset_on_a_kwok_node_gets_private_dirs(tmp_path):
    exe = Path("/bin/das-daemonset")
    node = run.DasNode(name="kwok-das-0")
    prog, args = run.daemonset_command(exe, node, tmp_path, tmp_path / "k", 6666)
    assert prog == Path("unshare")
    assert args[:4] == ["--mount", "--propagation=private", "--kill-child", "--"]
    sep = args.index("--", 8)
    binds = args[8:sep]
    assert binds == [
        str(tmp_path / "das" / "kwok-das-0" / "device-plugins"),
        "/var/lib/kubelet/device-plugins",
        str(tmp_path / "das" / "kwok-das-0" / "cdi"),
        "/var/run/cdi",
    ]
    assert args[sep + 1 :] == [
        str(exe),
        "daemonset",
        f"--kubeconfig={tmp_path / 'k'}",
        "--namespace=das-operator",
        "--listen=127.0.0.1:6666",
    ]
    # Each instance its own TMPDIR: they write and watch $TMPDIR/daemonset-config.json.
    tmp = run.node_tmp_dir(run.DasNode(name="kwok-das-0"), tmp_path)
    assert run.daemonset_env("kwok-das-0", tmp) == {
        "EMULATED_MODE": "enabled",
        "NODE_NAME": "kwok-das-0",
        "TMPDIR": str(tmp_path / "das" / "kwok-das-0" / "tmp"),
    }


def test_daemonset_on_a_real_node_uses_the_kubelets_dir(tmp_path):
    exe = Path("/bin/das-daemonset")
    kubelet = tmp_path / "kubelet" / "device-plugins"
    node = run.DasNode(name="real-node-0", kubelet_device_plugin_dir=kubelet)
    assert not node.kwok
    _, args = run.daemonset_command(exe, node, tmp_path, tmp_path / "k", 1)
    assert str(kubelet) in args and str(tmp_path / "das" / "real-node-0" / "cdi") in args
    assert str(tmp_path / "das" / "real-node-0" / "device-plugins") not in args
    host = run.DasNode(
        name="real-node-0",
        kubelet_device_plugin_dir=run.DEVICE_PLUGIN_DIR,
        cdi_dir=run.CDI_DIR,
    )
    prog, args = run.daemonset_command(exe, host, tmp_path, tmp_path / "k", 1)
    assert prog == exe and args[0] == "daemonset"  # host's own paths: no unshare


# -- host mount points ----------------------------------------------------------------------


def test_host_dirs_are_recorded_and_removed_children_first(tmp_path):
    record = tmp_path / "cache" / "das-host-dirs.json"
    a, b = tmp_path / "var" / "lib" / "kubelet" / "device-plugins", tmp_path / "run" / "cdi"
    (tmp_path / "var").mkdir()
    created = run.ensure_host_dirs((a, b), record)
    assert created == [a.parent.parent, a.parent, a, b.parent, b]  # parents first
    assert run.ensure_host_dirs((a, b), record) == []  # nothing new the second time
    assert run.remove_host_dirs(record, busy=lambda: True) == []  # another cluster's daemonset
    assert a.is_dir()
    (b / "spec.json").write_text("{}")  # in use: kept, and kept in the record
    removed = run.remove_host_dirs(record, busy=lambda: False)
    assert removed == [a, a.parent, a.parent.parent] and not a.parent.parent.exists()
    assert (tmp_path / "var").is_dir() and b.is_dir()
    (b / "spec.json").unlink()
    assert run.remove_host_dirs(record, busy=lambda: False) == [b, b.parent]
    assert not record.exists()
