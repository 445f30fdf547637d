"""Build das-scheduler, das-webhook and das-daemonset offline from the DAS source's vendor/.

Cached like the other components (``<cache>/bin/das-<commit[:8]>-<key>/`` with manifest.json),
built once under a lock. das-scheduler vendors kube-scheduler: 4-7 min cold on 2 cores.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from pytest_k8sai.clusters.local.build import (
    cache_root,
    file_lock,
    go_version,
    stream_command,
)
from pytest_k8sai.clusters.local.realdas.source import DasSource
from pytest_k8sai.core.errors import BuildError

Log = Callable[[str], None]

PACKAGES = ("./cmd/das-scheduler", "./cmd/das-webhook", "./cmd/das-daemonset")
BINARIES = tuple(p.rsplit("/", 1)[1] for p in PACKAGES)
# Offline from vendor/ (the proxy refuses this module); cgo for go-nvml, which das-daemonset
# links even in emulated mode; never let go.mod pull in another toolchain. -buildvcs=false:
# a clone's .git may belong to another user, which makes VCS stamping fail.
BUILD_ENV = {
    "GOFLAGS": "-mod=vendor -buildvcs=false",
    "GOPROXY": "off",
    "CGO_ENABLED": "1",
    "GOTOOLCHAIN": "local",
}
BUILD_FLAGS = ("-v", "-trimpath")


class DasBuilt(BaseModel):
    """What a finished build left in the cache (manifest.json beside the binaries)."""

    commit: str
    go_version: str
    binaries: dict[str, Path]
    source_dir: Path
    origin: str
    build_seconds: float


def build_key(commit: str, go: str) -> str:
    env = (f"{k}={v}" for k, v in sorted(BUILD_ENV.items()))
    blob = "|".join([commit, go, *PACKAGES, *BUILD_FLAGS, *env])
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def bin_dir(root: Path, commit: str, go: str) -> Path:
    return root / "bin" / f"das-{commit[:8]}-{build_key(commit, go)}"


def build_command(out_dir: Path) -> list[str]:
    return ["go", "build", *BUILD_FLAGS, "-o", f"{out_dir}/", *PACKAGES]


def build_env() -> dict[str, str]:
    return {**os.environ, **BUILD_ENV}


def cached(root: Path, commit: str, go: str) -> DasBuilt | None:
    manifest = bin_dir(root, commit, go) / "manifest.json"
    if not manifest.exists():
        return None
    built = DasBuilt.model_validate_json(manifest.read_text())
    return built if all(p.exists() for p in built.binaries.values()) else None


def _run(args: list[str], cwd: Path, logfile: Path, log: Log) -> None:
    """Run the build, streaming its output to ``logfile`` and a progress line every 10 s."""

    def progress(elapsed: float, compiled: int, line: str) -> None:
        log(
            f"  das: go build running {elapsed:.0f}s, {compiled} packages compiled, at "
            f"{line.strip()[:60]}"
        )

    rc, out = stream_command(args, cwd, build_env(), logfile, progress)
    if rc != 0:
        raise BuildError(
            f"Building the DAS binaries ({', '.join(BINARIES)}) from {cwd} failed: 'go build' "
            f"exited with {rc}. Last lines: {''.join(out[-15:]).strip()} -- full log: {logfile}"
        )


def ensure_das(source: DasSource, log: Log, root: Path | None = None) -> DasBuilt:
    """Return the cached DAS binaries for ``source``'s commit, building them first if needed."""
    root = root or cache_root()
    go = go_version()
    if built := cached(root, source.commit, go):
        return built
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        raise BuildError(
            "Building das-daemonset needs cgo (it links NVIDIA's go-nvml), but no C compiler "
            "('gcc' or 'cc') is on PATH. Install gcc and retry."
        )
    with file_lock(root / "locks" / "das.lock", log):
        if built := cached(root, source.commit, go):  # built by another session meanwhile
            return built
        started = time.monotonic()
        work = root / "build" / f"das-{source.commit[:8]}"
        shutil.rmtree(work, ignore_errors=True)
        staging = work / "bin"
        staging.mkdir(parents=True)
        logfile = work / "build.log"
        log(
            f"[k8sai] building DAS {source.commit[:8]} ({', '.join(BINARIES)}) from "
            f"{source.origin} with {go} (first use only, cached under {root}; das-scheduler "
            f"takes 4-7 min cold on 2 cores; log: {logfile})"
        )
        _run(build_command(staging), source.dir, logfile, log)
        dest = bin_dir(root, source.commit, go)
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        binaries = {}
        for name in BINARIES:
            shutil.move(staging / name, dest / name)
            binaries[name] = dest / name
        built = DasBuilt(
            commit=source.commit,
            go_version=go,
            binaries=binaries,
            source_dir=source.dir,
            origin=source.origin,
            build_seconds=round(time.monotonic() - started, 1),
        )
        (dest / "manifest.json").write_text(built.model_dump_json(indent=2))
        shutil.copy(logfile, dest / "build.log")
        shutil.rmtree(work, ignore_errors=True)
        log(f"[k8sai] built DAS {source.commit[:8]} in {built.build_seconds:.0f}s")
        return built
