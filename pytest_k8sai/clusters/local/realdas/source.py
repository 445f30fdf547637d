"""Find, verify and unpack the pinned DAS source (openshift/instaslice-operator).

The Go module proxy refuses this module (HTTP 403), so it is built from a source tree with its
committed vendor/ directory. In order of preference the tree comes from:

1. ``$K8SAI_DAS_SOURCE``: a tarball (verified against the pinned sha256, unpacked once into the
   cache) or a directory (used in place; its commit is checked when it has a ``.git``),
2. a tree unpacked or cloned earlier into ``<cache>/src/instaslice-operator-<commit[:8]>/``,
3. ``git clone`` of the public repository + ``git checkout`` of the pinned commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import BaseModel

from pytest_k8sai.clusters.local.build import cache_root, file_lock
from pytest_k8sai.core.errors import BuildError

Log = Callable[[str], None]

SOURCE_ENV = "K8SAI_DAS_SOURCE"
REPOSITORY = "https://github.com/openshift/instaslice-operator"
MODULE = "github.com/openshift/instaslice-operator"
# The default branch `next` on 2026-04-02: the version the GPU slicing suite was written against.
PINNED_COMMIT = "9f4fc07f2a5d40b0eefcdcd8169c44ffcc7bb9d6"
# The sha256 of the one tarball checked by hand (the repository at PINNED_COMMIT, vendor/
# included). A tarball made elsewhere from the same commit differs in bytes: for those, point
# $K8SAI_DAS_SOURCE at the unpacked directory instead.
PINNED_TARBALL_SHA256 = "f4d7cbb0a3300f220200880dae643f419203ac04f075cdda13c8867f8b02eca1"
MARKER = ".k8sai-source.json"
CLONE_TIMEOUT_S = 900.0


class DasSource(BaseModel):
    """A DAS source tree ready to build from."""

    dir: Path
    commit: str
    origin: str  # how it was obtained, for logs and the build manifest


def src_dir(root: Path | None = None, commit: str = PINNED_COMMIT) -> Path:
    return (root or cache_root()) / "src" / f"instaslice-operator-{commit[:8]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_tarball(path: Path, expected: str | None = None) -> str:
    """Return the tarball's sha256, or raise BuildError naming both hashes on a mismatch."""
    expected = expected or PINNED_TARBALL_SHA256
    actual = sha256_file(path)
    if actual != expected:
        raise BuildError(
            f"The DAS source tarball {path} (from ${SOURCE_ENV}) has sha256 {actual}, but the "
            f"pinned one is {expected} (instaslice-operator at commit {PINNED_COMMIT}). Use the "
            f"pinned tarball, or point ${SOURCE_ENV} at a checkout of that commit (a directory "
            "with its vendor/ directory) instead."
        )
    return actual


def _git_dir(tree: Path) -> Path | None:
    dot_git = tree / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = dot_git.read_text().strip()
        if text.startswith("gitdir:"):
            target = Path(text.split(":", 1)[1].strip())
            return target if target.is_absolute() else (tree / target).resolve()
    return None


def directory_commit(tree: Path) -> str | None:
    """The commit checked out in ``tree`` read from its .git (no git needed), or None when
    ``tree`` has no .git or its HEAD cannot be resolved."""
    git = _git_dir(tree)
    if git is None:
        return None
    try:
        head = (git / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head  # detached HEAD: the commit itself
    ref = head.split(":", 1)[1].strip()
    common = git
    if (git / "commondir").is_file():  # a worktree keeps its refs in the main .git
        common = (git / (git / "commondir").read_text().strip()).resolve()
    for base in (git, common):
        if (base / ref).is_file():
            return (base / ref).read_text().strip()
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    return None


def _check_tree(tree: Path, what: str) -> None:
    gomod = tree / "go.mod"
    ok = gomod.is_file() and gomod.read_text().startswith(f"module {MODULE}\n")
    if not ok or not (tree / "vendor" / "modules.txt").is_file():
        raise BuildError(
            f"{what} {tree} is not an instaslice-operator source tree with its vendor/ directory "
            f"(expected go.mod naming module {MODULE} and vendor/modules.txt). Point "
            f"${SOURCE_ENV} at a checkout of {REPOSITORY} at commit {PINNED_COMMIT}, or at the "
            "pinned source tarball."
        )


def check_directory(tree: Path, log: Log) -> DasSource:
    """Accept a user's source directory: its commit must be the pinned one when it has a .git;
    without one it is taken on trust, with a warning."""
    _check_tree(tree, f"${SOURCE_ENV} directory")
    commit = directory_commit(tree)
    if commit is None:
        log(
            f"[k8sai] warning: DAS source {tree} has no .git, so its commit cannot be checked; "
            f"using it as instaslice-operator {PINNED_COMMIT[:8]}"
        )
        return DasSource(dir=tree, commit=PINNED_COMMIT, origin=f"directory {tree} (unchecked)")
    if commit != PINNED_COMMIT:
        raise BuildError(
            f"The DAS source directory {tree} (from ${SOURCE_ENV}) has commit {commit} checked "
            f"out, but the local tier is pinned to {PINNED_COMMIT}. Run 'git -C {tree} checkout "
            f"{PINNED_COMMIT}', or point ${SOURCE_ENV} at the pinned source tarball."
        )
    return DasSource(dir=tree, commit=commit, origin=f"directory {tree}")


def _marker(tree: Path) -> dict[str, str] | None:
    try:
        data = json.loads((tree / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _safe_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """The members, refusing any that would land outside ``dest`` or are devices."""
    root = dest.resolve()
    members = tar.getmembers()
    for m in members:
        target = (root / m.name).resolve()
        if not target.is_relative_to(root) or m.isdev():
            raise BuildError(
                f"The DAS source tarball holds an unsafe entry {m.name!r}; refusing it."
            )
    return members


def unpack_tarball(tarball: Path, root: Path | None = None) -> DasSource:
    """Verify ``tarball`` and unpack it once into the cache (under a lock, so concurrent
    sessions share one copy); later calls find it through its marker file."""
    sha = verify_tarball(tarball)
    dest = src_dir(root)
    with file_lock((root or cache_root()) / "locks" / "das-source.lock"):
        marker = _marker(dest)
        if marker and marker.get("sha256") == sha:
            return DasSource(dir=dest, commit=PINNED_COMMIT, origin=f"tarball {tarball}")
        work = dest.with_name(dest.name + ".unpacking")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        with tarfile.open(tarball) as tar:
            tar.extractall(work, members=_safe_members(tar, work))  # members checked above
        entries = [p for p in work.iterdir()]
        # Archives of a repository hold one top-level directory; accept a flat one too.
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else work
        _check_tree(top, "The unpacked tarball")
        (top / MARKER).write_text(json.dumps({"sha256": sha, "commit": PINNED_COMMIT}))
        shutil.rmtree(dest, ignore_errors=True)
        top.rename(dest)
        shutil.rmtree(work, ignore_errors=True)
    return DasSource(dir=dest, commit=PINNED_COMMIT, origin=f"tarball {tarball}")


def fetch_error(step: str, detail: str) -> BuildError:
    return BuildError(
        f"The local tier runs the real DAS built from instaslice-operator at commit "
        f"{PINNED_COMMIT}, and fetching it failed: '{step}' -> {detail}. The Go module proxy "
        f"does not serve this module, so the source must come from {REPOSITORY} or from you: "
        f"set ${SOURCE_ENV} to a checkout of that commit (with its vendor/ directory) or to a "
        "tarball of it, and retry."
    )


def _git(args: list[str], cwd: Path | None = None) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait for credentials
    step = "git " + " ".join(args)
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=CLONE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise fetch_error(step, str(exc)) from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise fetch_error(step, f"exit {proc.returncode}: {' | '.join(lines[-3:])}")


def clone_pinned(root: Path | None = None) -> DasSource:
    """``git clone`` the public repository and check out the pinned commit, into the cache."""
    if shutil.which("git") is None:
        raise fetch_error("git clone", "no 'git' command on PATH")
    dest = src_dir(root)
    with file_lock((root or cache_root()) / "locks" / "das-source.lock"):
        if directory_commit(dest) == PINNED_COMMIT:
            return DasSource(dir=dest, commit=PINNED_COMMIT, origin=f"clone of {REPOSITORY}")
        work = dest.with_name(dest.name + ".cloning")
        shutil.rmtree(work, ignore_errors=True)
        work.parent.mkdir(parents=True, exist_ok=True)
        try:
            _git(["clone", "--quiet", "--no-checkout", REPOSITORY, str(work)])
            _git(["checkout", "--quiet", PINNED_COMMIT], cwd=work)
            _check_tree(work, "The clone")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        shutil.rmtree(dest, ignore_errors=True)
        work.rename(dest)
    return DasSource(dir=dest, commit=PINNED_COMMIT, origin=f"clone of {REPOSITORY}")


def locate_source(
    log: Log, env: Mapping[str, str] | None = None, root: Path | None = None
) -> DasSource:
    """The DAS source to build from (see the module docstring for the order)."""
    given = (os.environ if env is None else env).get(SOURCE_ENV, "").strip()
    if given:
        path = Path(given).expanduser()
        if path.is_dir():
            return check_directory(path, log)
        if path.is_file():
            return unpack_tarball(path, root)
        raise BuildError(
            f"${SOURCE_ENV} is set to {given}, which is neither a directory nor a file. Point it "
            f"at a checkout of {REPOSITORY} at commit {PINNED_COMMIT} or at a tarball of it."
        )
    cached = src_dir(root)
    marker = _marker(cached)
    if marker and marker.get("commit") == PINNED_COMMIT:
        return DasSource(dir=cached, commit=PINNED_COMMIT, origin=f"cached {cached}")
    if directory_commit(cached) == PINNED_COMMIT:
        return DasSource(dir=cached, commit=PINNED_COMMIT, origin=f"cached clone {cached}")
    log(f"[k8sai] ${SOURCE_ENV} is not set: cloning {REPOSITORY} at {PINNED_COMMIT[:8]}")
    return clone_pinned(root)
