"""The real node's locally built images: archive layout, determinism, rootfs, errors.

All but the last test are pure (they may run gcc or busybox for a fraction of a second). The
last one starts a throw-away containerd as root, imports both images and runs them; it is
slow and touches the host, so it runs only with K8SAI_REALNODE_LIVE=1.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from pytest_k8sai.clusters.local.realnode import images
from pytest_k8sai.core.errors import BuildError

K8S_MODULE = Path("/root/go/pkg/mod/k8s.io/kubernetes@v1.36.3")
PAUSE_TAG = "registry.k8s.io/pause:3.10.2"
FAKE_MAKEFILE = (
    "TAG ?= 9.8.7\nREV = $(shell git describe)\n"
    "CFLAGS = -Os -Wall -static -DVERSION=v$(TAG)-$(REV)\n"
)

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")


def _busybox_static() -> bool:
    try:
        images.busybox_path()
    except BuildError:
        return False
    return True


needs_busybox = pytest.mark.skipif(not _busybox_static(), reason="busybox-static missing")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("K8SAI_CACHE_DIR", str(tmp_path / "cache"))


def _read(tar_path: Path) -> dict[str, bytes]:
    with tarfile.open(tar_path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _layer_members(layer: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return tar.getmembers()


def _sample(tmp_path: Path, name: str) -> tuple[Path, str]:
    dest = tmp_path / name
    image_id = images.write_docker_archive(
        dest,
        "k8sai.local/test:1",
        [
            images.LayerEntry("usr/bin/tool", b"#!/bin/sh\n", 0o755),
            images.LayerEntry("bin/sh", link="busybox"),
            images.LayerEntry("etc/conf", b"x=1\n", 0o644),
        ],
        arch="arm64",
        entrypoint=["/usr/bin/tool"],
        cmd=["--flag"],
        user="65535:65535",
    )
    return dest, image_id


def _fake_module(tmp_path: Path, source: str, makefile: str = FAKE_MAKEFILE) -> Path:
    module = tmp_path / "mod" / "kubernetes@v9.9.9"
    (module / images.PAUSE_SOURCE).parent.mkdir(parents=True)
    (module / images.PAUSE_SOURCE).write_text(source)
    (module / images.PAUSE_MAKEFILE).write_text(makefile)
    return module


def _fake_tool(tmp_path: Path, monkeypatch, name: str, script: str) -> None:
    bindir = tmp_path / "fakebin"
    bindir.mkdir(exist_ok=True)
    tool = bindir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")


# --- the archive ---------------------------------------------------------------------------


def test_archive_manifest_config_and_diff_id(tmp_path):
    dest, image_id = _sample(tmp_path, "a.tar")
    files = _read(dest)
    (entry,) = json.loads(files["manifest.json"])
    assert set(entry) == {"Config", "RepoTags", "Layers"}
    assert entry["RepoTags"] == ["k8sai.local/test:1"]
    config_bytes = files[entry["Config"]]
    assert image_id == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    assert entry["Config"] == image_id.removeprefix("sha256:") + ".json"
    config = json.loads(config_bytes)
    assert config["architecture"] == "arm64" and config["os"] == "linux"
    assert config["config"]["Entrypoint"] == ["/usr/bin/tool"]
    assert config["config"]["Cmd"] == ["--flag"]
    assert config["config"]["User"] == "65535:65535"
    assert config["config"]["Env"] == [images.PATH_ENV]
    (layer_name,) = entry["Layers"]
    layer = files[layer_name]
    digest = hashlib.sha256(layer).hexdigest()
    assert config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{digest}"]}
    assert layer_name == f"{digest}/layer.tar"
    assert images.archive_manifest(dest) == entry


def test_layer_is_sorted_with_parents_and_fixed_owner_and_time(tmp_path):
    dest, _ = _sample(tmp_path, "a.tar")
    files = _read(dest)
    members = _layer_members(files[json.loads(files["manifest.json"])[0]["Layers"][0]])
    names = [m.name for m in members]
    assert names == ["bin", "bin/sh", "etc", "etc/conf", "usr", "usr/bin", "usr/bin/tool"]
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
    assert all(m.uname == "" and m.gname == "" for m in members)
    by = {m.name: m for m in members}
    assert by["bin"].isdir() and by["bin/sh"].issym() and by["bin/sh"].linkname == "busybox"
    assert by["usr/bin/tool"].mode == 0o755 and by["etc/conf"].mode == 0o644


def test_two_builds_give_identical_bytes(tmp_path):
    a, id_a = _sample(tmp_path, "a.tar")
    b, id_b = _sample(tmp_path, "b.tar")
    assert a.read_bytes() == b.read_bytes() and id_a == id_b
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically, no leftovers


def test_duplicate_layer_path_is_refused():
    with pytest.raises(ValueError, match="duplicate"):
        images.layer_tar([images.LayerEntry("bin/a", b""), images.LayerEntry("/bin/a", b"")])


def test_docker_arch_names():
    assert images.docker_arch("x86_64") == "amd64"
    assert images.docker_arch("aarch64") == "arm64"
    with pytest.raises(BuildError, match="'mips' is not one"):
        images.docker_arch("mips")


# --- the workload rootfs -------------------------------------------------------------------


def test_workload_entries_link_every_applet_to_busybox():
    entries = images.workload_entries(b"BB", ["[", "cat", "env", "sh", "sleep", "true", "busybox"])
    by = {e.path: e for e in entries}
    assert by["bin/busybox"].data == b"BB" and by["bin/busybox"].mode == 0o755
    for applet in ("sh", "sleep", "env", "cat", "true", "["):
        assert by[f"bin/{applet}"].link == "busybox"
    assert "bin/busybox" in by and by["bin/busybox"].link is None  # not linked to itself
    assert by["usr/bin"].link == "../bin" and by["tmp"].mode == 0o1777


@needs_busybox
def test_workload_image_built_once_with_the_applets(tmp_path):
    logs: list[str] = []
    img = images.workload_image(log=logs.append)
    assert img.tag == images.default_workload_tag()
    assert img.tag.startswith(f"{images.WORKLOAD_REPO}:1.")
    assert img.tar.parent == tmp_path / "cache" / "images"
    assert len(logs) == 1 and img.tag in logs[0] and str(img.tar) in logs[0]
    files = _read(img.tar)
    entry = json.loads(files["manifest.json"])[0]
    names = {m.name: m for m in _layer_members(files[entry["Layers"][0]])}
    for applet in ("sh", "sleep", "env", "cat", "true"):
        assert names[f"bin/{applet}"].linkname == "busybox"
    assert json.loads(files[entry["Config"]])["config"]["Cmd"] == ["sh"]
    again = images.workload_image(log=logs.append)
    assert again == img and len(logs) == 1  # cached: no second build


@needs_busybox
def test_busybox_sleeps_fractional_seconds():
    started = time.monotonic()
    subprocess.run([str(images.busybox_path()), "sleep", "0.25"], check=True)
    assert 0.2 <= time.monotonic() - started < 2


# --- the pause image -----------------------------------------------------------------------


def test_pause_flags_come_from_the_makefile(tmp_path):
    module = _fake_module(tmp_path, "int main(void) { return 0; }\n")
    assert images.pause_build_spec(module) == (
        "9.8.7",
        ["-Os", "-Wall", "-static", "-DVERSION=v9.8.7-v9.9.9"],
    )
    assert images.default_pause_tag(module) == "registry.k8s.io/pause:9.8.7"


def test_pause_flags_fall_back_when_cflags_is_unreadable(tmp_path):
    module = _fake_module(tmp_path, "", makefile="TAG ?= 3.1\nCFLAGS = $(EXTRA) -O2\n")
    assert images.pause_build_spec(module)[1] == [
        "-Os",
        "-Wall",
        "-Werror",
        "-static",
        "-DVERSION=v3.1-v9.9.9",
    ]


@needs_gcc
def test_pause_image_compiles_static_with_entrypoint(tmp_path):
    module = _fake_module(tmp_path, "int main(void) { return 0; }\n")
    logs: list[str] = []
    img = images.pause_image(module, "registry.k8s.io/pause:9.8.7", log=logs.append)
    files = _read(img.tar)
    entry = json.loads(files["manifest.json"])[0]
    config = json.loads(files[entry["Config"]])
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert config["architecture"] == images.docker_arch()
    (member,) = _layer_members(files[entry["Layers"][0]])
    assert member.name == "pause" and member.mode == 0o755
    binary = tmp_path / "pause.bin"
    with tarfile.open(fileobj=io.BytesIO(files[entry["Layers"][0]])) as layer:
        binary.write_bytes(layer.extractfile("pause").read())
    assert images._is_static_elf(binary)
    assert images.pause_image(module, "registry.k8s.io/pause:9.8.7", log=logs.append) == img
    assert len(logs) == 1


@needs_gcc
def test_pause_image_from_the_kubernetes_module():
    if not K8S_MODULE.is_dir():
        pytest.skip(f"{K8S_MODULE} is not downloaded")
    img = images.pause_image(K8S_MODULE, log=lambda _: None)
    assert img.tag == PAUSE_TAG


@needs_gcc
def test_failed_compile_names_the_command_and_the_error(tmp_path):
    module = _fake_module(tmp_path, "int main(void) { return undeclared_thing; }\n")
    with pytest.raises(BuildError) as err:
        images.pause_image(module, log=lambda _: None)
    text = str(err.value)
    assert "gcc -Os -Wall -static -DVERSION=v9.8.7-v9.9.9" in text
    assert "undeclared_thing" in text and "libc6-dev" in text and "\n" not in text
    assert not list((tmp_path / "cache" / "images").glob("*.tar"))


# --- missing tools -------------------------------------------------------------------------


def test_missing_gcc_names_gcc_and_libc6_dev(tmp_path, monkeypatch):
    module = _fake_module(tmp_path, "int main(void) { return 0; }\n")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(BuildError, match=r"Install the Debian package gcc and libc6-dev"):
        images.pause_image(module)


def test_missing_busybox_names_busybox_static(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(BuildError, match=r"no 'busybox' command.*package busybox-static"):
        images.workload_image()


def test_dynamic_busybox_names_busybox_static(monkeypatch):
    dynamic = Path(shutil.which("ls") or "/bin/ls").resolve()
    if images._is_static_elf(dynamic):
        pytest.skip("ls is static here")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: str(dynamic))
    with pytest.raises(BuildError, match=r"dynamically linked.*Install busybox-static"):
        images.busybox_path()


def test_missing_ctr_names_containerd(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(BuildError, match=r"no 'ctr' command.*package containerd"):
        images.import_image(tmp_path / "c.sock", tmp_path / "x.tar", "a:b", log=lambda _: None)
    with pytest.raises(BuildError, match=r"package containerd"):
        images.image_present(tmp_path / "c.sock", "a:b")


def test_failed_import_names_the_command_and_its_output(tmp_path, monkeypatch):
    _fake_tool(tmp_path, monkeypatch, "ctr", 'echo "ctr: failed to dial socket" >&2; exit 1\n')
    with pytest.raises(BuildError) as err:
        images.import_image(tmp_path / "c.sock", tmp_path / "x.tar", "a:b", log=lambda _: None)
    text = str(err.value)
    assert (
        f"--address {tmp_path / 'c.sock'} -n k8s.io images import --snapshotter overlayfs" in text
    )
    assert "exited with 1" in text and "failed to dial socket" in text


def test_image_present_reads_check_output(tmp_path, monkeypatch):
    _fake_tool(tmp_path, monkeypatch, "ctr", 'echo "k8sai.local/busybox:1.35.0"\n')
    assert images.image_present(tmp_path / "c.sock", "k8sai.local/busybox:1.35.0")
    assert not images.image_present(tmp_path / "c.sock", "registry.k8s.io/pause:3.10.2")


def test_import_that_does_not_show_up_is_an_error(tmp_path, monkeypatch):
    _fake_tool(tmp_path, monkeypatch, "ctr", "exit 0\n")  # accepts, lists nothing
    with pytest.raises(BuildError, match="does not list a:b as complete and unpacked"):
        images.import_image(tmp_path / "c.sock", tmp_path / "x.tar", "a:b", log=lambda _: None)


# The live path (import into a running containerd, run both images) is what the real-node
# tier does at every start: `k8sai local --cluster local-nodes up` (docs/real-nodes.md).
