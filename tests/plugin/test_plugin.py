"""The plugin as users meet it, through inner pytest runs (pytester).

Inner runs never start a local cluster: none of them requests ``cluster`` with a local
profile. The ones that exercise the ``cluster`` fixture use a failing 'existing' profile or a
fake provider patched in by the inner conftest.
"""

from __future__ import annotations

import json
import sys

import pytest
import yaml

pytest_plugins = ["pytester"]

FLAGS = ("--cluster", "--kubeconfig", "--context", "--keep-cluster", "--results-dir")


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """runpytest with exactly our plugin, whether or not pytest-k8sai is installed."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def _run(*args: str) -> pytest.RunResult:
        return pytester.runpytest("-p", "pytest_k8sai.plugin", "-p", "no:cacheprovider", *args)

    return _run


def _errors(result: pytest.RunResult) -> list[str]:
    return [line for line in result.errlines if line.startswith("ERROR:")]


def _assert_one_paragraph_usage_error(result: pytest.RunResult) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = "\n".join(result.outlines + result.errlines)
    assert "Traceback" not in out
    errors = _errors(result)
    assert len(errors) == 1, out
    return errors[0]


def test_options_in_help(run):
    result = run("--help")
    assert result.ret == 0
    text = result.stdout.str()
    assert "k8sai" in text
    for flag in FLAGS:
        assert flag in text


def test_unknown_cluster_is_a_usage_error(run):
    line = _assert_one_paragraph_usage_error(run("--cluster=nope"))
    assert "--cluster=nope" in line and "local" in line and "rosa" in line


def test_unknown_cluster_from_the_real_command_line(pytester: pytest.Pytester, monkeypatch):
    # One subprocess run, to see exactly what a user sees in a terminal.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.run(
        sys.executable, "-m", "pytest", "-p", "pytest_k8sai.plugin", "--cluster=x"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert [line for line in result.errlines if line.strip()] == _errors(result)


def test_malformed_profile_names_file_and_field(run, pytester):
    path = pytester.path / "mine.yaml"
    path.write_text("name: mine\nprovider: local\ncapabilities:\n  gpu_nodes:\n    count: -1\n")
    line = _assert_one_paragraph_usage_error(run(f"--cluster={path}"))
    assert str(path) in line and "capabilities.gpu_nodes.count" in line


def test_requirements_skip_or_run(run, pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires("mig")
        def test_mig():
            pass

        @pytest.mark.requires("kueue")
        def test_kueue():
            pass

        @pytest.mark.requires("kueue", "das")
        def test_kueue_das():
            pass
        """
    )
    # A profile of its own: the built-in local one simulates MIG (the GPU slicing suite).
    bare = pytester.path / "bare.yaml"
    bare.write_text("name: bare\nprovider: local\ncapabilities: {mig: {enabled: false}}\n")
    result = run("-rs", f"--cluster={bare}")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*profile 'bare' lacks mig (capabilities.mig.enabled)*",
            "*profile 'bare' lacks das (capabilities.das)*",
        ]
    )


def test_unknown_requirement_names_test_and_known_names(run, pytester):
    pytester.makepyfile(
        test_typo="""
        import pytest

        @pytest.mark.requires("gpus")
        def test_x():
            pass
        """
    )
    line = _assert_one_paragraph_usage_error(run())
    assert "test_typo.py::test_x" in line and "'gpus'" in line
    assert "gpu, mig, kueue, das, inference_gateway" in line


def test_markers_registered_under_strict_markers(run, pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.pr
        @pytest.mark.nightly
        @pytest.mark.conformance
        @pytest.mark.requires("kueue")
        def test_marked():
            pass
        """
    )
    run("--strict-markers").assert_outcomes(passed=1)
    markers = run("--markers").stdout.str()
    for name in ("@pytest.mark.pr:", "nightly", "conformance", "requires(*names)"):
        assert name in markers


def test_reach_flags_with_local_profile_are_rejected(run):
    line = _assert_one_paragraph_usage_error(run("--kubeconfig=/tmp/x"))
    assert "--kubeconfig" in line and "provider: existing" in line


def test_unwritable_results_dir(run, pytester):
    blocker = pytester.path / "afile"
    blocker.write_text("")
    line = _assert_one_paragraph_usage_error(run(f"--results-dir={blocker}/sub"))
    assert "--results-dir" in line and str(blocker) in line


def test_verdict_table_and_jsonl(run, pytester):
    pytester.makepyfile(
        """
        def test_fast(slo):
            slo.check("admission p99", 12.5, unit="ms", threshold=25, op="<=", n=100,
                      source="histogram")

        def test_slow(slo):
            slo.check("admission p99 slow", 40, unit="ms", threshold=25, op="<=", n=50,
                      source="histogram")
        """
    )
    result = run("--results-dir=out")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*k8sai verdicts*",
            "figure*measured*threshold*verdict*n*source",
            "admission p99 *12.5 ms*<= 25 ms*PASS*100*histogram",
            "admission p99 slow *40 ms*<= 25 ms*FAIL*50*histogram",
            "verdicts: *out/verdicts.jsonl",
        ]
    )
    result.stdout.fnmatch_lines(["*SLO FAILED: admission p99 slow: measured 40 ms*"])
    lines = (pytester.path / "out" / "verdicts.jsonl").read_text().splitlines()
    assert [json.loads(x)["nodeid"] for x in lines] == [
        "test_verdict_table_and_jsonl.py::test_fast",
        "test_verdict_table_and_jsonl.py::test_slow",
    ]


def test_every_check_of_a_test_is_evaluated_before_it_fails(run, pytester):
    # A failed figure must not hide the ones after it: all three are recorded, the two failed
    # ones are listed in the failure, the test fails once at its end.
    pytester.makepyfile(
        """
        def test_levels(slo):
            slo.check("c=1 p99", 40, unit="ms", threshold=25, op="<=", n=10, source="s")
            slo.check("c=4 p99", 10, unit="ms", threshold=25, op="<=", n=10, source="s")
            slo.check("c=8 p99", 50, unit="ms", threshold=25, op="<=", n=10, source="s")
            slo.info("c=8 mean", 20, unit="ms", n=10, source="s")
        """
    )
    result = run("--results-dir=out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*SLO FAILED: c=1 p99: measured 40 ms*",
            "*SLO FAILED: c=8 p99: measured 50 ms*",
        ]
    )
    lines = (pytester.path / "out" / "verdicts.jsonl").read_text().splitlines()
    assert [json.loads(x)["figure"] for x in lines] == ["c=1 p99", "c=4 p99", "c=8 p99", "c=8 mean"]


def test_unreachable_existing_cluster_exits_once_with_paragraph(run, pytester):
    profile = pytester.path / "gone.yaml"
    profile.write_text("name: gone\nprovider: existing\nreach:\n  kubeconfig: /nonexistent/kc\n")
    pytester.makepyfile(
        """
        def test_a(cluster):
            pass

        def test_b(cluster):
            pass
        """
    )
    result = run(f"--cluster={profile}")
    assert result.ret == 3
    out = result.stdout.str() + result.stderr.str()
    assert out.count("/nonexistent/kc") == 1, out
    assert "reach.kubeconfig of profile 'gone'" in out
    assert "Traceback" not in out


def test_kind_profile_is_refused_naming_the_field(run, pytester):
    # No kind provider exists yet, so a profile asking for one is bad input (exit 4).
    profile = pytester.path / "kind.yaml"
    profile.write_text("name: k\nprovider: kind\n")
    pytester.makepyfile("def test_a(cluster):\n    pass\n")
    result = run(f"--cluster={profile}")
    assert result.ret == 4
    err = result.stderr.str()
    assert "field 'provider'" in err and "'local' or 'existing'" in err


FAKE_PROVIDER_CONFTEST = """
import json, pathlib
import pytest
import yaml
import pytest_k8sai.fixtures
from pytest_k8sai.clusters.base import ClusterHandle, ClusterProvider

EVENTS = pathlib.Path("events.jsonl")


class FakeProvider(ClusterProvider):
    name = "fake"

    def __init__(self, profile, **kw):
        super().__init__(profile)
        self.kw = kw

    def _event(self, what):
        with EVENTS.open("a") as fh:
            fh.write(json.dumps(what) + "\\n")

    def create(self):
        self._event("create")
        return ClusterHandle(self.profile, pathlib.Path("/fake/kubeconfig"), None, "fake")

    def collect_logs(self, dest):
        self._event("collect_logs")
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "apiserver.log").write_text("log")
        return [dest / "apiserver.log"]

    def destroy(self):
        self._event("destroy")

    @property
    def created(self):
        return True


@pytest.fixture(scope="session", autouse=True)
def _fake_provider():
    # Undone after the session: the inner run shares modules with the outer one.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pytest_k8sai.fixtures, "make_provider", lambda p, **kw: FakeProvider(p, **kw))
        yield
"""


@pytest.mark.parametrize(
    ("fail", "keep", "events"),
    [
        (False, False, ["create", "destroy"]),
        (True, False, ["create", "collect_logs", "destroy"]),
        (False, True, ["create"]),
    ],
)
def test_cluster_fixture_lifecycle(run, pytester, fail, keep, events):
    pytester.makeconftest(FAKE_PROVIDER_CONFTEST)
    pytester.makepyfile(
        f"""
        def test_one(cluster):
            assert cluster.provider == "fake"

        def test_two(cluster):
            assert not {fail}
        """
    )
    result = run(*(["--keep-cluster"] if keep else []))
    assert result.ret == (1 if fail else 0)
    got = [json.loads(x) for x in (pytester.path / "events.jsonl").read_text().splitlines()]
    assert got == events
    text = result.stdout.str()
    assert ("k8sai-results/logs" in text) == fail
    assert ("export KUBECONFIG=/fake/kubeconfig" in text) == keep


FAKE_CORE_CONFTEST = '''
import json, pathlib
import pytest
import yaml
import pytest_k8sai.fixtures
from kubernetes.client.exceptions import ApiException
from pytest_k8sai.clusters.base import ClusterHandle, ClusterProvider

EVENTS = pathlib.Path("events.jsonl")


def event(*what):
    with EVENTS.open("a") as fh:
        fh.write(json.dumps(what) + "\\n")


class FakeCore:
    """Just the CoreV1Api calls k8s_namespace makes."""

    def __init__(self, sa_after):
        self.sa_after = sa_after  # reads of the default SA that 404 before it "appears"

    def create_namespace(self, body, **kw):
        event("create", body.metadata.name, body.metadata.labels)

    def read_namespaced_service_account(self, name, namespace, **kw):
        self.sa_after -= 1
        if self.sa_after >= 0:
            raise ApiException(status=404)
        event("sa", name, namespace)

    def delete_namespace(self, name, **kw):
        event("delete", name, kw.get("propagation_policy"))


class FakeHandle(ClusterHandle):
    @property
    def core(self):
        return self.endpoints["core"]


class FakeProvider(ClusterProvider):
    def __init__(self, profile, **kw):
        super().__init__(profile)

    def create(self):
        core = FakeCore(SA_AFTER)
        return FakeHandle(self.profile, pathlib.Path("/fake"), None, "fake", {"core": core})

    def collect_logs(self, dest):
        return []

    def destroy(self):
        pass


@pytest.fixture(scope="session", autouse=True)
def _fake_provider():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pytest_k8sai.fixtures, "make_provider", lambda p, **kw: FakeProvider(p, **kw))
        mp.setattr(pytest_k8sai.clusters.objects, "NAMESPACE_READY_TIMEOUT_S", 0.5)
        yield
'''


@pytest.mark.parametrize("sa_after", [2, 1000])
def test_k8s_namespace_labels_waits_and_deletes(run, pytester, sa_after):
    pytester.makeconftest(FAKE_CORE_CONFTEST + f"\nSA_AFTER = {sa_after}\n")
    pytester.makepyfile(
        """
        def test_ns(k8s_namespace, k8sai_run_id):
            assert k8s_namespace.startswith("k8sai-")
            assert False, "the namespace must be deleted even when the test fails"
        """
    )
    result = run()
    got = [json.loads(x) for x in (pytester.path / "events.jsonl").read_text().splitlines()]
    created, *rest = got
    name, labels = created[1], created[2]
    assert name.startswith("k8sai-") and len(name) == len("k8sai-") + 6
    assert labels["k8sai.io/created-by"] == "pytest-k8sai"
    assert labels["k8sai.io/run-id"]
    assert rest[-1] == ["delete", name, "Background"]
    if sa_after == 2:
        assert rest[0] == ["sa", "default", name]
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*must be deleted even when the test fails*"])
    else:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*ServiceAccount 'default' did not appear within 0.5 s*"])


MISSING_CONFTEST = """
import pathlib
import pytest
import yaml
import pytest_k8sai.fixtures
from pytest_k8sai.clusters.base import ClusterHandle, ClusterProvider


class LackingProvider(ClusterProvider):
    def create(self):
        return ClusterHandle(self.profile, pathlib.Path("/fake"), None, "fake",
                             missing={"kueue": "CRD clusterqueues.kueue.x-k8s.io not found"})

    def collect_logs(self, dest):
        return []

    def destroy(self):
        pass


@pytest.fixture(scope="session", autouse=True)
def _lacking():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pytest_k8sai.fixtures, "make_provider", lambda p, **kw: LackingProvider(p))
        yield
"""


def test_capability_missing_on_the_live_cluster_skips_with_its_reason(run, pytester):
    pytester.makeconftest(MISSING_CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires("kueue")
        def test_needs_kueue(cluster):
            raise AssertionError("must not run")

        def test_plain(cluster):
            pass
        """
    )
    result = run("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*CRD clusterqueues.kueue.x-k8s.io not found*"])


def test_sigterm_tears_fixtures_down_like_ctrl_c(tmp_path):
    """`timeout` or a cancelled CI job sends SIGTERM: teardown must still run."""
    import signal
    import subprocess
    import sys
    import time

    started, torn_down = tmp_path / "started", tmp_path / "torn-down"
    (tmp_path / "test_slow.py").write_text(
        "import pathlib, time, pytest\n"
        "@pytest.fixture\n"
        "def owned():\n"
        "    yield\n"
        f"    pathlib.Path({str(torn_down)!r}).write_text('yes')\n"
        "def test_slow(owned):\n"
        f"    pathlib.Path({str(started)!r}).write_text('yes')\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_slow.py",
            "--results-dir",
            str(tmp_path / "res"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the test never started"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert torn_down.exists(), out.decode()
    assert proc.returncode == 2, out.decode()  # pytest's "interrupted"


AIC_CHECKS = """
import pytest
import yaml

@pytest.mark.aic("gang_scheduling")
def test_gang(aic, slo):
    aic.tier("api", "Kueue admitted the job whole")
    aic.note("3 pods admitted together")
    slo.info("pods admitted together", 3, unit="pods", n=1, source="Workload podSetAssignments")

@pytest.mark.aic("ai_inference")
def test_gateway(aic):
    aic.absent("Gateway API CRDs are not served")

def test_not_a_check():
    pass
"""


def test_aic_report_fills_the_checklist_from_marked_checks(run, pytester: pytest.Pytester):
    from pytest_k8sai.core.data import data_file

    pytester.makepyfile(test_checks=AIC_CHECKS)
    reqs = data_file("report", "aic", "AIConformance-1.36.yaml")
    result = run(
        "-m", "conformance", "--aic-report", "out/PRODUCT.yaml",
        f"--aic-requirements={reqs}", "--results-dir", "res",
    )  # fmt: skip
    result.assert_outcomes(passed=1, skipped=1, deselected=1)
    text = result.stdout.str()
    assert "k8sai AI conformance checklist" in text
    assert "CHECKLIST PROBLEM" not in text
    doc = yaml.safe_load((pytester.path / "out" / "PRODUCT.yaml").read_text())
    items = {i["id"]: i for c in doc["spec"].values() for i in c}
    assert items["gang_scheduling"]["status"] == "Implemented"
    assert items["gang_scheduling"]["evidence"] == [
        "file://../res/results.json#test_checks.py::test_gang"
    ]
    assert "pods admitted together = 3 pods (INFO, n 1)" in items["gang_scheduling"]["notes"]
    assert items["ai_inference"]["status"] == "Not Implemented"
    assert "Gateway API CRDs are not served" in items["ai_inference"]["notes"]
    assert items["secure_accelerator_access"]["status"] == ""
    results = json.loads((pytester.path / "res" / "results.json").read_text())
    assert results["conformance"]["schema_problems"] == []
    assert (pytester.path / "res" / "aic-checklist.yaml").exists()


def test_unknown_aic_id_is_a_usage_error(run, pytester: pytest.Pytester):
    pytester.makepyfile(
        test_bad="import pytest\n\n@pytest.mark.aic('gang')\ndef test_x():\n    pass\n"
    )
    line = _assert_one_paragraph_usage_error(run())
    assert "unknown id gang" in line and "gang_scheduling" in line


def test_deselected_checks_are_named_not_missing(run, pytester: pytest.Pytester):
    from pytest_k8sai.core.data import data_file

    pytester.makepyfile(test_checks=AIC_CHECKS)
    reqs = data_file("report", "aic", "AIConformance-1.36.yaml")
    # A run that selects one check (like the PR tier): the other exists but did not run.
    result = run("-k", "gang", f"--aic-requirements={reqs}", "--results-dir", "res")
    result.assert_outcomes(passed=1, deselected=2)
    text = result.stdout.str()
    assert "k8sai AI conformance (from this run's checks only): Implemented 1" in text
    assert "k8sai AI conformance checklist" not in text  # the table needs --aic-report
    results = json.loads((pytester.path / "res" / "results.json").read_text())
    ids = {o["id"]: o for o in results["conformance"]["ids"]}
    assert ids["ai_inference"]["status"] == "needs attestation"
    assert "its 1 check(s) were not selected in this run" in ids["ai_inference"]["reason"]
    assert "no check of pytest-k8sai covers" in ids["cluster_autoscaling"]["reason"]
