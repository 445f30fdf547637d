"""Runs that pass, fail, break in set-up or are interrupted leave nothing behind.

Each case runs a real pytest session in a subprocess against the local tier and checks, after
it: (a) no object with the suites' labels on the cluster (``sweep.find``, every run's), (b) no
process the run started (each child of the run inherits a tag in its environment; a cluster the
run started has its recorded pids gone and its directory removed), (c) no temporary file or
directory (the run's ``TMPDIR`` is a fresh, empty directory). Interrupted runs must exit 2 with
one ``k8sai: interrupted ...`` line and no traceback (docs/reliability.md).

The runs attach to one cluster kept for this module (as ``k8sai local up`` keeps one), except
the Ctrl-C-at-start case, which needs a run that starts its own. The last case abandons a
hanging teardown on purpose and checks that ``k8sai sweep`` removes what it left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pytest_k8sai
from pytest_k8sai.clusters import sweep
from pytest_k8sai.clusters.apireader import Reader
from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.clusters.local import state
from pytest_k8sai.clusters.local.build import cache_root
from pytest_k8sai.clusters.local.processes import ProcRecord, pid_alive
from pytest_k8sai.clusters.local.provider import LocalProvider
from pytest_k8sai.core.profiles import LOCAL_CLUSTER_ENV, Profile, load_profile

TAG_ENV = "K8SAI_ITEST_TAG"  # inherited by every process a run starts
MARKS_ENV = "K8SAI_ITEST_MARKS"  # where the inner tests say how far they got
NAME_PREFIX = "itest-intr-"
RUN_TIMEOUT_S = 90
GONE_WITHIN_S = 30  # namespaces and in-use Kueue objects finish deleting in the background
INTERRUPTED = 2

# What the inner tests share: a labelled namespace, a ResourceFlavor, a ClusterQueue and a
# LocalQueue (cluster-scoped and namespaced objects), all removed by the plugin's fixtures.
HEADER = """
import os, pathlib, time
import pytest
from pytest_k8sai.clusters.objects import ObjectTracker
from pytest_k8sai.kueue import objects as kueue

MARKS = pathlib.Path(os.environ["K8SAI_ITEST_MARKS"])

def mark(name):
    (MARKS / name).write_text("")

@pytest.fixture
def queue(cluster, k8s_namespace, k8sai_run_id):
    with ObjectTracker(cluster.api_client, k8sai_run_id) as objs:
        kueue.create_gpu_queue(objs, k8s_namespace, gpus=1)
        yield objs
"""


@pytest.fixture(autouse=True)
def _local_tier_only(k8sai_profile):
    if k8sai_profile.provider != "local":
        pytest.skip(f"local-tier test; profile '{k8sai_profile.name}' is {k8sai_profile.provider}")


def _cluster_name(what: str) -> str:
    # Unique per test process, so a concurrent session on this machine cannot collide.
    return f"{NAME_PREFIX}{what}-{os.getpid()}"


def _forget_cluster(name: str) -> None:
    """Stop and remove a cluster of this module, and its lock file: the names are unique per
    test process, so their lock files would pile up."""
    with state.locked(name):
        state.remove(name, state.load(name))
    (cache_root() / "clusters" / f"{name}.lock").unlink(missing_ok=True)


def _remove_stale_clusters() -> None:
    """Clusters of this module whose test process is gone (killed before its own cleanup)."""
    root = cache_root() / "clusters"
    names = {p.name.removesuffix(".lock") for p in root.glob(f"{NAME_PREFIX}*")}
    for name in names:
        pid = name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _forget_cluster(name)


def _local_profile(name: str) -> Profile:
    profile = load_profile("local")
    local = profile.local.model_copy(update={"cluster_name": name})
    return profile.model_copy(update={"local": local})


@pytest.fixture(scope="module")
def _kept() -> Iterator[ClusterHandle]:
    _remove_stale_clusters()
    name = _cluster_name("kept")
    handle = LocalProvider(_local_profile(name), keep=True, log=lambda m: None).create()
    try:
        yield handle
    finally:
        handle.close()
        _forget_cluster(name)


@pytest.fixture
def kept_cluster(_kept: ClusterHandle) -> Iterator[ClusterHandle]:
    """A cluster that outlives the runs (as after ``k8sai local up``): they attach to it.
    What a failed case left is swept after it, so the next case starts from nothing."""
    yield _kept
    found = _labelled(_kept)
    if found:
        sweep.delete(_kept.api_client, found, 10.0, lambda m: None)


@dataclass
class Run:
    rc: int
    out: str
    tag: str
    tmp: Path
    marks: Path
    results: dict[str, Any]

    def k8sai_lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line.startswith("k8sai: interrupted")]


def _run(
    tmp_path: Path,
    tests: str,
    cluster_name: str,
    *,
    conftest: str = "",
    wait_for: Callable[[Path], bool] | None = None,
    signals: tuple[int, ...] = (),
) -> Run:
    """One pytest session in a subprocess; once ``wait_for(marks)`` holds, send ``signals``."""
    suite, tmp, marks = tmp_path / "suite", tmp_path / "tmp", tmp_path / "marks"
    for d in (suite, tmp, marks):
        d.mkdir()
    (suite / "test_case.py").write_text(HEADER + tests)
    if conftest:
        (suite / "conftest.py").write_text(conftest)
    tag = secrets.token_hex(8)
    code_root = str(Path(pytest_k8sai.__file__).parents[1])  # the code this session runs
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([code_root, env.get("PYTHONPATH", "")]).rstrip(":"),
            # Only this plugin (-p below): others installed here (hypothesis, faker) take
            # seconds to import per run and play no part in teardown.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            LOCAL_CLUSTER_ENV: cluster_name,
            "TMPDIR": str(tmp),
            TAG_ENV: tag,
            MARKS_ENV: str(marks),
        }
    )
    results_dir = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider"]
        + ["-p", "pytest_k8sai.plugin"]
        + ["--cluster=local", f"--results-dir={results_dir}", "test_case.py"],
        cwd=suite,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A shell's background jobs inherit SIGINT as ignored; Ctrl-C must reach this one.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        if wait_for is not None:
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while not wait_for(marks):
                assert proc.poll() is None, (
                    f"the run ended before the signal:\n{proc.stdout.read()}"
                )
                assert time.monotonic() < deadline, "the run never got to the point to signal"
                time.sleep(0.02)
            for i, sig in enumerate(signals):
                if i:
                    time.sleep(0.5)
                proc.send_signal(sig)
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        proc.kill()
        proc.wait()
    results = json.loads((results_dir / "results.json").read_text())
    return Run(proc.returncode, out, tag, tmp, marks, results)


def _tagged_processes(tag: str) -> list[str]:
    """Live processes that inherited the run's tag: started by it, still running."""
    needle = f"{TAG_ENV}={tag}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                found.append(f"pid {proc.name}: {(proc / 'cmdline').read_bytes()[:120]!r}")
        except OSError:
            continue  # gone meanwhile, or a kernel thread
    return found


def _labelled(handle: ClusterHandle) -> list[sweep.Leftover]:
    found, unreadable = sweep.find(Reader(handle.api_client, 10.0))
    assert not unreadable, unreadable
    return found


def _assert_nothing_left(run: Run, handle: ClusterHandle | None) -> None:
    # (b) no process of the run (a grace for ones being reaped after SIGTERM)
    deadline = time.monotonic() + 5
    while (procs := _tagged_processes(run.tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not procs, f"processes the run started still run: {procs}\n{run.out}"
    # (c) no temporary file or directory
    left = sorted(p.name for p in run.tmp.iterdir())
    assert not left, f"temporary files left in TMPDIR: {left}\n{run.out}"
    assert run.results["status"] == "finished", run.results["status"]  # results written
    if handle is None:
        return
    # (a) no labelled object: none still live at once, none at all once deletions complete
    live = [str(f) for f in _labelled(handle) if not f.terminating]
    assert not live, f"objects left on the cluster: {live}\n{run.out}"
    deadline = time.monotonic() + GONE_WITHIN_S
    while (found := _labelled(handle)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not found, f"objects still there after {GONE_WITHIN_S}s: {[str(f) for f in found]}"


def _assert_clean_interrupt(run: Run, signal_name: str, *, during_teardown: bool) -> None:
    assert run.rc == INTERRUPTED, run.out
    assert "Traceback" not in run.out, run.out
    lines = run.k8sai_lines()
    when = " during teardown" if during_teardown else ""
    assert lines == [
        f"k8sai: interrupted ({signal_name}){when}; teardown finished, nothing left behind"
    ], run.out


def _marked(name: str) -> Callable[[Path], bool]:
    return lambda marks: (marks / name).exists()


# -- runs that end by themselves ------------------------------------------------------------

PASSING = """
def test_queue_and_namespace(queue):
    pass
"""

FAILING = """
def test_queue_then_fail(queue):
    assert False, "fails on purpose"
"""

SETUP_ERROR = """
@pytest.fixture
def broken(queue):
    raise RuntimeError("set-up breaks on purpose")

def test_never_runs(broken):
    pass
"""


@pytest.mark.parametrize(
    ("tests", "rc", "outcome"),
    [(PASSING, 0, "1 passed"), (FAILING, 1, "1 failed"), (SETUP_ERROR, 1, "1 error")],
    ids=["passing", "failing", "setup-exception"],
)
def test_finished_run_leaves_nothing(tmp_path, kept_cluster, tests, rc, outcome):
    run = _run(tmp_path, tests, kept_cluster.profile.local.cluster_name)
    assert run.rc == rc, run.out
    assert outcome in run.out, run.out
    assert "Traceback" not in run.out and not run.k8sai_lines(), run.out
    assert run.results["exit_status"] == rc
    _assert_nothing_left(run, kept_cluster)


# -- interrupted runs -----------------------------------------------------------------------


def test_ctrl_c_while_the_cluster_starts(tmp_path):
    """The run starts its own cluster; Ctrl-C once kube-apiserver runs stops all of it."""
    _remove_stale_clusters()
    name = _cluster_name("start")
    records: list[ProcRecord] = []

    def apiserver_started(_: Path) -> bool:
        st = state.load(name)
        if st is not None and any(p.name == "kube-apiserver" for p in st.processes):
            records[:] = st.processes
            return True
        return False

    try:
        run = _run(
            tmp_path,
            PASSING,
            name,
            wait_for=apiserver_started,
            signals=(signal.SIGINT,),
        )
        alive = [r.name for r in records if pid_alive(r)]
        assert not alive, f"cluster processes left running: {alive}\n{run.out}"
        assert not state.run_dir(name).exists(), f"cluster directory left\n{run.out}"
        _assert_nothing_left(run, None)
        _assert_clean_interrupt(run, "SIGINT", during_teardown=False)
    finally:
        _forget_cluster(name)
        # A start that fails keeps its component logs for diagnosis (the newest 5 starts):
        # not a temporary directory, but this test's own, so removed.
        for d in (cache_root() / "failed-starts").glob(f"{name}-*"):
            shutil.rmtree(d, ignore_errors=True)


MID_TEST = """
def test_sleeps(queue):
    mark("started")
    time.sleep(60)
"""


def test_ctrl_c_mid_test(tmp_path, kept_cluster):
    run = _run(
        tmp_path,
        MID_TEST,
        kept_cluster.profile.local.cluster_name,
        wait_for=_marked("started"),
        signals=(signal.SIGINT,),
    )
    _assert_nothing_left(run, kept_cluster)
    _assert_clean_interrupt(run, "SIGINT", during_teardown=False)
    assert run.results["exit_status"] == INTERRUPTED


# A teardown whose slow step (waiting for pods to go, say) comes before its deletions, not in a
# `finally`: a signal that interrupted it would leave the ClusterQueue and its flavor behind.
# As the last test's, this fixture ends with the session's.
SLOW_TEARDOWN = """
@pytest.fixture
def slow_teardown(cluster, k8s_namespace, k8sai_run_id):
    objs = ObjectTracker(cluster.api_client, k8sai_run_id)
    kueue.create_gpu_queue(objs, k8s_namespace, gpus=1)
    yield
    mark("tearing")
    time.sleep(1.5)
    assert not objs.cleanup()
    mark("torn")

def test_queue(slow_teardown):
    pass
"""
ANOTHER_TEST = """
def test_last():
    pass
"""


def test_ctrl_c_during_teardown_is_deferred(tmp_path, kept_cluster):
    run = _run(
        tmp_path,
        SLOW_TEARDOWN,
        kept_cluster.profile.local.cluster_name,
        wait_for=_marked("tearing"),
        signals=(signal.SIGINT,),
    )
    _assert_nothing_left(run, kept_cluster)
    assert (run.marks / "torn").exists(), run.out
    _assert_clean_interrupt(run, "SIGINT", during_teardown=True)
    assert "1 passed" in run.out, run.out
    assert run.results["exit_status"] == INTERRUPTED  # known before the results were written


def test_ctrl_c_during_a_tests_teardown_stops_after_it(tmp_path, kept_cluster):
    """Not the last test: its teardown finishes, then the run stops before the next test."""
    run = _run(
        tmp_path,
        SLOW_TEARDOWN + ANOTHER_TEST,
        kept_cluster.profile.local.cluster_name,
        wait_for=_marked("tearing"),
        signals=(signal.SIGINT, signal.SIGINT),
    )
    _assert_nothing_left(run, kept_cluster)
    assert (run.marks / "torn").exists(), run.out
    assert run.rc == INTERRUPTED and "Traceback" not in run.out, run.out
    assert "1 passed" in run.out and "2 passed" not in run.out, run.out  # test_last never ran
    # The second Ctrl-C is deferred too, and says so; then the one final line.
    assert "k8sai: SIGINT received; still tearing down" in run.out, run.out
    assert run.k8sai_lines() == [
        "k8sai: interrupted (SIGINT) during teardown; teardown finished, nothing left behind"
    ], run.out


# A plugin whose pytest_unconfigure is slow: the signal comes after the summary.
SLOW_UNCONFIGURE = """
import os, pathlib, time

def pytest_unconfigure(config):
    marks = pathlib.Path(os.environ["K8SAI_ITEST_MARKS"])
    (marks / "unconfigure").write_text("")
    time.sleep(1.5)
    (marks / "unconfigured").write_text("")
"""


def test_sigterm_after_the_summary_is_deferred(tmp_path, kept_cluster):
    run = _run(
        tmp_path,
        PASSING,
        kept_cluster.profile.local.cluster_name,
        conftest=SLOW_UNCONFIGURE,
        wait_for=_marked("unconfigure"),
        signals=(signal.SIGTERM,),
    )
    _assert_nothing_left(run, kept_cluster)
    assert (run.marks / "unconfigured").exists(), run.out
    _assert_clean_interrupt(run, "SIGTERM", during_teardown=True)
    assert run.out.index("1 passed") < run.out.index("k8sai: interrupted"), run.out


# A teardown that hangs, and a grace shortened from 10 s so the case stays fast.
HANGING_TEARDOWN = """
@pytest.fixture
def hangs(queue):
    yield
    mark("tearing")
    time.sleep(60)

def test_queue(hangs):
    pass
"""
SHORT_GRACE = """
from pytest_k8sai import interrupts

interrupts.FORCE_AFTER_S = 0.75  # the signals come 0.5 s apart
"""


def test_signal_after_the_grace_abandons_teardown_and_sweep_cleans_up(tmp_path, kept_cluster):
    run = _run(
        tmp_path,
        HANGING_TEARDOWN,
        kept_cluster.profile.local.cluster_name,
        conftest=SHORT_GRACE,
        wait_for=_marked("tearing"),
        signals=(signal.SIGINT, signal.SIGINT, signal.SIGINT),  # 0.5 s apart
    )
    assert run.rc == INTERRUPTED and "Traceback" not in run.out, run.out
    assert "k8sai: SIGINT received; still tearing down" in run.out, run.out
    abandoned = [ln for ln in run.out.splitlines() if "of teardown: abandoned" in ln]
    assert len(abandoned) == 1 and "k8sai sweep --run-id " in abandoned[0], run.out
    assert not run.k8sai_lines(), run.out  # no claim that teardown finished
    assert not _tagged_processes(run.tag)
    assert not list(run.tmp.iterdir()), "the client's certificate copies must not stay"
    # What the abandoned teardown left is what `k8sai sweep` (as the line says) removes.
    run_id = abandoned[0].split("--run-id ", 1)[1].split()[0]
    assert {f.run_id for f in _labelled(kept_cluster)} == {run_id}
    sweep_cmd = [sys.executable, "-m", "pytest_k8sai.cli", "sweep", "--run-id", run_id]
    env = {**os.environ, LOCAL_CLUSTER_ENV: kept_cluster.profile.local.cluster_name}
    done = subprocess.run(sweep_cmd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    deadline = time.monotonic() + GONE_WITHIN_S
    while (found := _labelled(kept_cluster)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not found, f"after k8sai sweep: {[str(f) for f in found]}"
