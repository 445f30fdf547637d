"""The real node's container images, built on this machine and imported into containerd.

No image registry is reachable, so the node gets two images made here: the sandbox (pause)
image, compiled from ``build/pause/linux/pause.c`` of the downloaded Kubernetes module the way
its ``build/pause/Makefile`` does, and a workload image holding Debian's busybox-static with
a link per applet. Each is written as a ``docker save`` tar with tarfile (no docker or
buildah here); the tars are deterministic, so the same inputs give the same image id, and
they are cached under ``<cache>/images/`` keyed by those inputs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_k8sai.clusters.local.build import Log, cache_root, file_lock
from pytest_k8sai.core.errors import BuildError

# Bump when the archive layout changes: it is part of every cache key.
FORMAT = "1"
CTR_NAMESPACE = "k8s.io"  # the namespace the CRI plugin (and so the kubelet) sees
# The CRI plugin looks for an image's layers in its own snapshotter; ctr's default could differ.
SNAPSHOTTER = "overlayfs"
PAUSE_REPO = "registry.k8s.io/pause"
WORKLOAD_REPO = "k8sai.local/busybox"
PAUSE_SOURCE = Path("build", "pause", "linux", "pause.c")
PAUSE_MAKEFILE = Path("build", "pause", "Makefile")
# The Makefile's CFLAGS as of v1.36; used only when its CFLAGS line cannot be read.
FALLBACK_PAUSE_CFLAGS = "-Os -Wall -Werror -static -DVERSION=v$(TAG)-$(REV)"
PAUSE_USER = "65535:65535"  # the upstream Dockerfile's USER: the sandbox needs no privileges
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"
COMPILE_TIMEOUT_S = 120
CTR_TIMEOUT_S = 180
TAIL_LINES = 12
# Go's names for the machine's architecture, as image configs and platform matchers use them.
GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
_APPLET = re.compile(r"[A-Za-z0-9_.\[\]-]+")
_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class LocalImage:
    """An image tar in the cache, ready for :func:`import_image`."""

    tag: str
    tar: Path
    image_id: str  # "sha256:<hex of the config JSON>", what `ctr images ls` shows as config


@dataclass(frozen=True)
class LayerEntry:
    """One entry of a layer: a directory (no data, no link), a file (data) or a symlink."""

    path: str  # relative, no leading slash: "bin/busybox"
    data: bytes | None = None
    mode: int = 0o755
    link: str | None = None


# --- the docker-archive writer ---------------------------------------------------------------


def docker_arch(machine: str | None = None) -> str:
    """The image architecture for this machine (or ``machine``): amd64, arm64, ..."""
    m = machine or platform.machine()
    if m not in GO_ARCH:
        raise BuildError(
            f"The real node's images are built for this machine's architecture, but '{m}' is "
            f"not one this tier knows ({', '.join(sorted(set(GO_ARCH.values())))})."
        )
    return GO_ARCH[m]


def _tarinfo(name: str, type_: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    # Fixed owner, names and time: the bytes (and so the image id) depend only on the content.
    info = tarfile.TarInfo(name)
    info.type = type_
    info.mode = mode
    info.size = size
    info.linkname = link
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _with_parents(entries: Iterable[LayerEntry]) -> list[LayerEntry]:
    by_path: dict[str, LayerEntry] = {}
    for e in entries:
        path = e.path.strip("/")
        if not path or path in by_path:
            raise ValueError(f"empty or duplicate layer path: {e.path!r}")
        by_path[path] = LayerEntry(path, e.data, e.mode, e.link)
    for path in list(by_path):
        parts = path.split("/")
        for i in range(1, len(parts)):
            by_path.setdefault("/".join(parts[:i]), LayerEntry("/".join(parts[:i])))
    # Sorting by path puts every directory before what it holds.
    return [by_path[p] for p in sorted(by_path)]


def layer_tar(entries: Iterable[LayerEntry]) -> bytes:
    """An uncompressed layer tar of ``entries`` (missing parent directories added, sorted)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in _with_parents(entries):
            if e.link is not None:
                tar.addfile(_tarinfo(e.path, tarfile.SYMTYPE, 0o777, link=e.link))
            elif e.data is None:
                tar.addfile(_tarinfo(e.path, tarfile.DIRTYPE, e.mode))
            else:
                info = _tarinfo(e.path, tarfile.REGTYPE, e.mode, size=len(e.data))
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


def _canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def image_config(
    diff_id: str,
    *,
    arch: str,
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = (),
    user: str = "",
    created_by: str = "",
) -> bytes:
    """The image config JSON (docker/OCI image spec) for a one-layer image."""
    config: dict[str, object] = {"Env": [PATH_ENV]}
    if entrypoint:
        config["Entrypoint"] = list(entrypoint)
    if cmd:
        config["Cmd"] = list(cmd)
    if user:
        config["User"] = user
    return _canonical_json(
        {
            "architecture": arch,
            "os": "linux",
            "created": EPOCH,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": EPOCH, "created_by": created_by or "pytest-k8sai"}],
        }
    )


def write_docker_archive(
    dest: Path,
    tag: str,
    entries: Iterable[LayerEntry],
    *,
    arch: str,
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = (),
    user: str = "",
    created_by: str = "",
) -> str:
    """Write a one-layer ``docker save`` tar to ``dest`` atomically; return the image id."""
    layer = layer_tar(entries)
    layer_hex = hashlib.sha256(layer).hexdigest()
    config = image_config(
        f"sha256:{layer_hex}",
        arch=arch,
        entrypoint=entrypoint,
        cmd=cmd,
        user=user,
        created_by=created_by,
    )
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = _canonical_json(
        [{"Config": f"{config_hex}.json", "RepoTags": [tag], "Layers": [f"{layer_hex}/layer.tar"]}]
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")
    try:
        with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in (
                (f"{config_hex}.json", config),
                (f"{layer_hex}/layer.tar", layer),
                ("manifest.json", manifest),
            ):
                tar.addfile(_tarinfo(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
        os.replace(tmp, dest)  # readers never see a half-written tar
    finally:
        tmp.unlink(missing_ok=True)
    return f"sha256:{config_hex}"


def archive_manifest(tar_path: Path) -> dict[str, object]:
    """The single entry of a docker archive's manifest.json."""
    with tarfile.open(tar_path) as tar:
        fh = tar.extractfile("manifest.json")
        if fh is None:
            raise BuildError(f"The image tar {tar_path} has no manifest.json; delete it and retry.")
        (entry,) = json.loads(fh.read())
    return entry


def _image_id(tar_path: Path) -> str:
    return "sha256:" + str(archive_manifest(tar_path)["Config"]).removesuffix(".json")


# --- tools and the cache ---------------------------------------------------------------------


def _tool(name: str, package: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BuildError(
            f"The real node {why}, but no '{name}' command is on PATH. Install the Debian "
            f"package {package} (apt-get install {package}) and retry."
        )
    return path


def _tail(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-TAIL_LINES:]) or "(no output)"


def _run(args: Sequence[str], what: str, timeout: float, cwd: Path | None = None) -> str:
    """Run a command; on failure raise one BuildError paragraph with its output's last lines."""
    shown = " ".join(args)
    try:
        proc = subprocess.run(
            list(args),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what} timed out after {timeout:.0f}s: '{shown}'.") from None
    except OSError as exc:
        raise BuildError(f"{what} could not run '{shown}': {exc}.") from None
    if proc.returncode != 0:
        raise BuildError(
            f"{what} failed: '{shown}' exited with {proc.returncode}. "
            f"Last lines: {_tail(proc.stdout + proc.stderr)}"
        )
    return proc.stdout


def images_dir() -> Path:
    return cache_root() / "images"


def _cache_name(tag: str, key: str) -> str:
    return f"{_TAG_CHARS.sub('_', tag)}-{key}.tar"


def _key(*parts: bytes | str) -> str:
    h = hashlib.sha256(FORMAT.encode())
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "big") + b)  # length-prefixed: no two part lists collide
    return h.hexdigest()[:12]


def _cached(dest: Path, tag: str, build: Callable[[Path], str], what: str, log: Log) -> LocalImage:
    """Return the cached image at ``dest``, building it once (one builder across processes)."""
    if dest.exists():
        return LocalImage(tag, dest, _image_id(dest))
    with file_lock(cache_root() / "locks" / f"image-{dest.stem}.lock"):
        if not dest.exists():  # another session may have built it while we waited
            log(f"[k8sai] building image {tag} ({what}) -> {dest}")
            return LocalImage(tag, dest, build(dest))
    return LocalImage(tag, dest, _image_id(dest))


# --- the sandbox (pause) image ---------------------------------------------------------------


def _makefile_var(text: str, name: str) -> str | None:
    m = re.search(rf"^{name}\s*[?:]?=[ \t]*(.*?)\s*$", text, re.M)
    return m.group(1) if m else None


def _module_version(module_dir: Path) -> str:
    # The Makefile's REV is `git describe`; a module cache has no git, but its dir names the tag.
    _, _, version = module_dir.name.partition("@")
    return version or "local"


def pause_build_spec(k8s_module_dir: Path) -> tuple[str, list[str]]:
    """The pause Makefile's TAG and its gcc flags with TAG and REV filled in."""
    makefile = k8s_module_dir / PAUSE_MAKEFILE
    try:
        text = makefile.read_text()
    except OSError as exc:
        raise BuildError(
            f"The real node's sandbox image is compiled from the Kubernetes module, but its "
            f"pause Makefile cannot be read ({exc}). Check the module dir {k8s_module_dir}."
        ) from None
    tag = _makefile_var(text, "TAG")
    if not tag or "$" in tag:
        raise BuildError(f"No plain 'TAG ?= <version>' line found in {makefile}.")
    cflags = _makefile_var(text, "CFLAGS") or FALLBACK_PAUSE_CFLAGS
    cflags = cflags.replace("$(TAG)", tag).replace("$(REV)", _module_version(k8s_module_dir))
    if "$" in cflags:  # a variable this reader does not know: use what v1.36 does instead
        cflags = FALLBACK_PAUSE_CFLAGS.replace("$(TAG)", tag).replace(
            "$(REV)", _module_version(k8s_module_dir)
        )
    return tag, cflags.split()


def default_pause_tag(k8s_module_dir: Path) -> str:
    """registry.k8s.io/pause:<the Makefile's TAG>, e.g. registry.k8s.io/pause:3.10.2."""
    return f"{PAUSE_REPO}:{pause_build_spec(k8s_module_dir)[0]}"


def _gcc_identity(gcc: str) -> str:
    version = _run([gcc, "-dumpfullversion", "-dumpversion"], "Asking gcc its version", 30)
    target = _run([gcc, "-dumpmachine"], "Asking gcc its target", 30)
    return f"{version.strip()} {target.strip()}"


def pause_image(k8s_module_dir: Path, tag: str | None = None, log: Log = print) -> LocalImage:
    """The sandbox image: pause.c from ``k8s_module_dir`` compiled static, entrypoint /pause."""
    source = k8s_module_dir / PAUSE_SOURCE
    if not source.is_file():
        raise BuildError(
            f"The real node's sandbox image is compiled from {PAUSE_SOURCE} of the Kubernetes "
            f"module, but {source} does not exist. Check the module dir passed in."
        )
    makefile_tag, flags = pause_build_spec(k8s_module_dir)
    tag = tag or f"{PAUSE_REPO}:{makefile_tag}"
    gcc = _tool("gcc", "gcc and libc6-dev", "compiles its sandbox (pause) image from C")
    arch = docker_arch()
    gcc_id = _gcc_identity(gcc)
    src = source.read_bytes()
    key = _key(src, " ".join(flags), gcc_id, arch, tag)

    def build(dest: Path) -> str:
        with tempfile.TemporaryDirectory(prefix="pause-", dir=images_dir()) as work:
            binary = Path(work) / "pause"
            _run(
                [gcc, *flags, "-o", str(binary), str(source)],
                "Compiling the sandbox image's pause.c (needs gcc and libc6-dev for static libc)",
                COMPILE_TIMEOUT_S,
                cwd=Path(work),
            )
            # The Makefile strips too; strip comes with gcc (binutils), so its absence is odd
            # but harmless: the binary only gets bigger.
            if strip := shutil.which("strip"):
                _run([strip, str(binary)], "Stripping the pause binary", 60)
            return write_docker_archive(
                dest,
                tag,
                [LayerEntry("pause", binary.read_bytes(), 0o755)],
                arch=arch,
                entrypoint=["/pause"],
                user=PAUSE_USER,
                created_by=f"gcc {' '.join(flags)} {PAUSE_SOURCE} ({k8s_module_dir.name})",
            )

    images_dir().mkdir(parents=True, exist_ok=True)
    return _cached(images_dir() / _cache_name(tag, key), tag, build, f"gcc {gcc_id}", log)


# --- the workload (busybox) image ------------------------------------------------------------


def _is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (PT_INTERP)."""
    with path.open("rb") as fh:
        head = fh.read(64)
        if len(head) < 52 or head[:4] != b"\x7fELF":
            return False
        wide, order = head[4] == 2, "little" if head[5] == 1 else "big"
        if wide:
            phoff, phentsize, phnum = (
                int.from_bytes(head[32:40], order),
                int.from_bytes(head[54:56], order),
                int.from_bytes(head[56:58], order),
            )
        else:
            phoff, phentsize, phnum = (
                int.from_bytes(head[28:32], order),
                int.from_bytes(head[42:44], order),
                int.from_bytes(head[44:46], order),
            )
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    pt_interp = 3
    return all(
        int.from_bytes(table[i : i + 4], order) != pt_interp
        for i in range(0, len(table), phentsize)
    )


def busybox_path() -> Path:
    """Debian's static busybox, or a BuildError naming busybox-static."""
    found = _tool("busybox", "busybox-static", "builds its workload image from busybox")
    path = Path(found).resolve()
    if not _is_static_elf(path):
        raise BuildError(
            f"The real node's workload image needs a statically linked busybox, but {path} is "
            f"dynamically linked (Debian's 'busybox' package). Install busybox-static "
            f"(apt-get install busybox-static; it replaces busybox) and retry."
        )
    return path


def busybox_version(path: Path | None = None) -> str:
    """The upstream version busybox prints in its banner, e.g. '1.35.0'."""
    binary = path or busybox_path()
    proc = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30, check=False)
    m = re.search(r"BusyBox v(\S+)", proc.stdout + proc.stderr)
    if not m:
        raise BuildError(f"'{binary}' printed no 'BusyBox v<version>' banner; is it busybox?")
    return _TAG_CHARS.sub("_", m.group(1))[:100]


def default_workload_tag() -> str:
    """k8sai.local/busybox:<busybox version>, e.g. k8sai.local/busybox:1.35.0."""
    return f"{WORKLOAD_REPO}:{busybox_version()}"


def busybox_applets(path: Path) -> list[str]:
    out = _run([str(path), "--list"], "Listing busybox's applets", 30)
    return sorted({a for a in out.split() if _APPLET.fullmatch(a) and a != "busybox"})


def _check_fractional_sleep(path: Path) -> None:
    # Workloads sleep fractions of a second; a busybox built without FLOAT_DURATION rejects it.
    _run(
        [str(path), "sleep", "0.01"],
        f"Checking that {path} sleeps fractional seconds (the workload image relies on it)",
        30,
    )


def workload_entries(busybox: bytes, applets: Iterable[str]) -> list[LayerEntry]:
    """The workload rootfs: /bin/busybox, a /bin link per applet, merged-/usr links, /tmp."""
    entries = [
        LayerEntry("bin/busybox", busybox, 0o755),
        # Merged /usr, like Debian: #!/usr/bin/env and /usr/bin/<applet> find the same links.
        LayerEntry("sbin", link="bin"),
        LayerEntry("usr/bin", link="../bin"),
        LayerEntry("usr/sbin", link="../bin"),
        LayerEntry("tmp", mode=0o1777),
        LayerEntry("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
        LayerEntry("etc/group", b"root:x:0:\n", 0o644),
        LayerEntry("root", mode=0o700),
    ]
    entries += [LayerEntry(f"bin/{a}", link="busybox") for a in applets if a != "busybox"]
    return entries


def workload_image(tag: str | None = None, log: Log = print) -> LocalImage:
    """The workload image: busybox-static with its applets (sh, sleep, env, cat, true, ...)."""
    path = busybox_path()
    tag = tag or f"{WORKLOAD_REPO}:{busybox_version(path)}"
    binary = path.read_bytes()
    arch = docker_arch()
    key = _key(hashlib.sha256(binary).hexdigest(), arch, tag)

    def build(dest: Path) -> str:
        _check_fractional_sleep(path)
        applets = busybox_applets(path)
        return write_docker_archive(
            dest,
            tag,
            workload_entries(binary, applets),
            arch=arch,
            cmd=["sh"],
            created_by=f"{path} and links for its {len(applets)} applets",
        )

    return _cached(images_dir() / _cache_name(tag, key), tag, build, f"from {path}", log)


# --- containerd --------------------------------------------------------------------------------


def _ctr(ctr_address: Path) -> list[str]:
    ctr = _tool("ctr", "containerd", "imports its images into containerd with ctr")
    return [ctr, "--address", str(ctr_address), "-n", CTR_NAMESPACE]


def image_present(ctr_address: Path, tag: str) -> bool:
    """True if containerd has ``tag`` complete and unpacked in the CRI snapshotter."""
    # `images check -q` prints only the images whose content is all there and unpacked.
    out = _run(
        [*_ctr(ctr_address), "images", "check", "-q", "--snapshotter", SNAPSHOTTER],
        f"Listing the images of the containerd at {ctr_address}",
        CTR_TIMEOUT_S,
    )
    return tag in out.split()


def import_image(ctr_address: Path, tar: Path, tag: str, log: Log = print) -> None:
    """Import a docker-archive tar into containerd's k8s.io namespace, unpacked for the CRI."""
    log(f"[k8sai] importing image {tag} from {tar} into containerd at {ctr_address}")
    _run(
        [*_ctr(ctr_address), "images", "import", "--snapshotter", SNAPSHOTTER, str(tar)],
        f"Importing image {tag} into containerd",
        CTR_TIMEOUT_S,
    )
    if not image_present(ctr_address, tag):
        raise BuildError(
            f"containerd at {ctr_address} accepted {tar} but does not list {tag} as complete "
            f"and unpacked ({SNAPSHOTTER}) in namespace {CTR_NAMESPACE}: the tar's RepoTags "
            f"may name another tag; check with 'ctr -n {CTR_NAMESPACE} images check'."
        )
