"""Build the local tier's upstream programs from their pinned Go modules, once per cache.

Each component gets a throw-away Go module of its own (so version selection for one never
upgrades another's dependencies), then ``go build``. The binaries land in
``<cache>/bin/<name>-<version>-<key>/``; the key covers everything that changes the output.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import BuildError

COMPONENTS_FILE = data_file("clusters", "local", "components.yaml")
MIN_GO = (1, 26)
PROGRESS_EVERY_S = 10.0

Log = Callable[[str], None]


def go_output_name(package: str) -> str:
    """The file name `go build -o DIR/` gives a main package (a /vN suffix is skipped)."""
    parts = package.split("/")
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        return parts[-2]
    return parts[-1]


class Component(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    module: str
    version: str
    packages: list[str]
    staging_replaces: bool = False
    ldflags: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    binary_names: dict[str, str] = Field(default_factory=dict)
    # Built only when a suite asks for it (the inference suite's parts), never by ensure_all.
    on_demand: bool = False

    def binary_name(self, package: str) -> str:
        return self.binary_names.get(package, go_output_name(package))

    def ldflag_string(self) -> str:
        m = re.match(r"v?(\d+)\.(\d+)", self.version)
        major, minor = (m.group(1), m.group(2)) if m else ("0", "0")
        flags = [f.format(version=self.version, major=major, minor=minor) for f in self.ldflags]
        return " ".join(["-s", "-w", *flags])

    def key(self, go_version: str) -> str:
        # on_demand says when to build, not what: it stays out of the key (and old keys hold).
        blob = self.model_dump_json(exclude={"on_demand"}) + go_version
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


class Built(BaseModel):
    """What a finished build left in the cache (written as manifest.json beside the binaries)."""

    component: str
    version: str
    go_version: str
    binaries: dict[str, Path]
    module_dir: Path
    build_seconds: float


def load_components(path: Path = COMPONENTS_FILE) -> dict[str, Component]:
    data = yaml.safe_load(path.read_text())
    return {name: Component(name=name, **spec) for name, spec in data.items()}


def cache_root() -> Path:
    if env := os.environ.get("K8SAI_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-k8sai"


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries like the official builds; never let go.mod pull in another toolchain.
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod -buildvcs=false")
    return env


def go_version() -> str:
    """Return e.g. 'go1.26.8', or raise BuildError if Go is missing or too old."""
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "The local tier builds etcd, kube-apiserver, KWOK and Kueue from their Go modules, but "
            f"no 'go' command is on PATH. Install Go {MIN_GO[0]}.{MIN_GO[1]} or newer and retry."
        )
    out = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, env=_go_env(), check=False
    ).stdout.strip()
    m = re.match(r"go(\d+)\.(\d+)", out)
    if not m or (int(m.group(1)), int(m.group(2))) < MIN_GO:
        raise BuildError(
            f"The local tier needs Go {MIN_GO[0]}.{MIN_GO[1]} or newer to build its components, "
            f"but '{go}' reports '{out or 'nothing'}'. Install a newer Go and retry."
        )
    return out


@contextmanager
def file_lock(path: Path, log: Callable[[str], None] | None = None) -> Iterator[None]:
    """An exclusive lock across processes (builds of one component, starts of one cluster).
    With ``log``, a wait for another holder is said, so a second run does not look hung."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log is not None:
                log(f"[k8sai] waiting for another process holding {path} (a build or start)")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def stream_command(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    logfile: Path,
    progress: Callable[[float, int, str], None],
) -> tuple[int, list[str]]:
    """Run a build command with its output appended to ``logfile``; every PROGRESS_EVERY_S
    call ``progress(elapsed s, packages compiled so far, latest line)`` (`go build -v` prints
    one package path per package). Return the exit code and the output lines."""
    started = last_report = time.monotonic()
    compiled = 0
    out: list[str] = []
    with logfile.open("a") as lf:
        lf.write(f"$ {' '.join(args)}\n")
        lf.flush()
        proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                lf.write(line)
                out.append(line)
                if not line.startswith("go: "):
                    compiled += 1
                now = time.monotonic()
                if now - last_report >= PROGRESS_EVERY_S:
                    last_report = now
                    progress(now - started, compiled, line)
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return rc, out


class Builder:
    def __init__(self, root: Path | None = None, log: Log = print) -> None:
        self.root = root or cache_root()
        self.log = log
        self._go_version: str | None = None

    @property
    def go(self) -> str:
        if self._go_version is None:
            self._go_version = go_version()
        return self._go_version

    def bin_dir(self, comp: Component) -> Path:
        return self.root / "bin" / f"{comp.name}-{comp.version}-{comp.key(self.go)}"

    def cached(self, comp: Component) -> Built | None:
        manifest = self.bin_dir(comp) / "manifest.json"
        if not manifest.exists():
            return None
        built = Built.model_validate_json(manifest.read_text())
        ok = all(p.exists() for p in built.binaries.values()) and built.module_dir.exists()
        return built if ok else None

    def ensure(self, comp: Component) -> Built:
        """Return the cached build of ``comp``, building it first if needed."""
        if built := self.cached(comp):
            return built
        with file_lock(self.root / "locks" / f"{comp.name}.lock", self.log):
            if built := self.cached(comp):  # another session built it while we waited
                return built
            return self._build(comp)

    def _run(self, comp: Component, args: list[str], cwd: Path, logfile: Path) -> str:
        """Run a go command, streaming its output to ``logfile`` and progress to the user."""

        def progress(elapsed: float, compiled: int, line: str) -> None:
            what = f"{compiled} packages compiled" if compiled else line.strip()
            self.log(f"  {comp.name} {comp.version}: {args[1]} running {elapsed:.0f}s, {what[:70]}")

        rc, out = stream_command(args, cwd, _go_env(), logfile, progress)
        if rc != 0:
            tail = "".join(out[-15:]).strip()
            raise BuildError(
                f"Building component '{comp.name}' ({comp.module}@{comp.version}) failed: "
                f"'{' '.join(args[:3])}' exited with {rc}. Last lines: {tail} "
                f"-- full log: {logfile}"
            )
        return "".join(out)

    def module_dir(self, comp: Component, cwd: Path, logfile: Path) -> tuple[Path, Path]:
        """Download the pinned module; return its source dir and go.mod path in GOMODCACHE."""
        out = self._run(
            comp, ["go", "mod", "download", "-json", f"{comp.module}@{comp.version}"], cwd, logfile
        )
        info = json.loads(out[out.index("{") :])
        if "Error" in info:
            raise BuildError(
                f"Go could not download {comp.module}@{comp.version} for component "
                f"'{comp.name}': {info['Error']} (log: {logfile})"
            )
        return Path(info["Dir"]), Path(info["GoMod"])

    def _write_module(self, comp: Component, work: Path, upstream_gomod: Path) -> None:
        mod = [
            f"module k8sai.local/build/{comp.name}",
            "",
            "go 1.26.0",
            "",
            f"require {comp.module} {comp.version}",
            "",
        ]
        if comp.staging_replaces:
            # A dependency's replace lines are ignored, so repeat each staging one with the
            # published version (k8s.io/X v0.N.M for k8s.io/kubernetes v1.N.M).
            staged = re.findall(
                r"^\s*(k8s\.io/\S+)\s+=>\s+\./staging/", upstream_gomod.read_text(), re.M
            )
            pub = "v0" + comp.version[2:]
            mod += ["replace ("] + [f"\t{m} => {m} {pub}" for m in staged] + [")", ""]
        (work / "go.mod").write_text("\n".join(mod))
        imports = "\n".join(f'\t_ "{p}"' for p in comp.packages)
        (work / "tools.go").write_text(
            f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"
        )

    def _build(self, comp: Component) -> Built:
        started = time.monotonic()
        work = self.root / "build" / f"{comp.name}-{comp.version}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        logfile = work / "build.log"
        self.log(
            f"[k8sai] building {comp.name} {comp.version} from {comp.module} with {self.go} "
            f"(first use only, cached under {self.root}; cold builds take minutes, Kubernetes "
            f"about 10 on 2 cores; log: {logfile})"
        )
        (work / "go.mod").write_text(f"module k8sai.local/build/{comp.name}\n\ngo 1.26.0\n")
        src, upstream_gomod = self.module_dir(comp, work, logfile)
        self._write_module(comp, work, upstream_gomod)
        self._run(comp, ["go", "mod", "tidy"], work, logfile)
        staging = work / "bin"
        staging.mkdir()
        args = ["go", "build", "-v", "-trimpath", "-ldflags", comp.ldflag_string()]
        if comp.tags:
            args += ["-tags", ",".join(comp.tags)]
        self._run(comp, [*args, "-o", str(staging) + "/", *comp.packages], work, logfile)

        dest = self.bin_dir(comp)
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        binaries: dict[str, Path] = {}
        for pkg in comp.packages:
            name = comp.binary_name(pkg)
            shutil.move(staging / go_output_name(pkg), dest / name)
            binaries[name] = dest / name
        built = Built(
            component=comp.name,
            version=comp.version,
            go_version=self.go,
            binaries=binaries,
            module_dir=src,
            build_seconds=round(time.monotonic() - started, 1),
        )
        (dest / "manifest.json").write_text(built.model_dump_json(indent=2))
        for kept in ("go.mod", "go.sum"):  # provenance: the exact dependency set that was built
            shutil.copy(work / kept, dest / kept)
        shutil.rmtree(work, ignore_errors=True)
        self.log(f"[k8sai] built {comp.name} {comp.version} in {built.build_seconds:.0f}s")
        return built

    def ensure_all(self, *, on_demand: bool = False) -> dict[str, Built]:
        """Build the cluster's components; ``on_demand`` adds those only some suites need."""
        comps = load_components().items()
        return {n: self.ensure(c) for n, c in comps if on_demand or not c.on_demand}

    def ensure_named(self, name: str) -> Built:
        """Build (or find cached) one component by its components.yaml name."""
        return self.ensure(load_components()[name])
