"""Secrets never leave a run: tokens, client keys and kubeconfig contents are in none of the
files a run writes (results.json, summary.md, verdicts, tables, JUnit XML, Allure results,
copied component logs) nor in its terminal output.

Real runs of the smoke suite's Kueue chain in subprocesses, against the session's local
cluster, with credentials planted where a user would put them:

- ``provider: existing`` through a kubeconfig whose only credential is a freshly made client
  key and certificate (signed by the local cluster's CA), with Kueue's metrics read through
  ``kueue_suite.metrics_token_env`` naming a variable that holds a fresh ServiceAccount token;
- the local provider itself (reusing the session's cluster), whose admin kubeconfig and
  static metrics token are the secrets, with component logs copied and attached to Allure;
- a kubeconfig that is not valid YAML on its token line, which ends the run at attach.

Both full runs add two tests that fail the way a user's would: an assertion on the ``cluster``
fixture (pytest prints the handle's repr with -vv) and a metrics scrape that fails (with -l
pytest prints the locals, the request headers among them). The runs must have used what was
planted, or the search would prove nothing: their figures show the API and the metrics
endpoint answered, and the kubeconfig held no other credential.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from pytest_k8sai.clusters.local.build import cache_root
from pytest_k8sai.clusters.objects import owned_namespace, ownership_labels
from pytest_k8sai.report import redact

ROOT = Path(__file__).resolve().parents[2]  # the checkout: suites/ is run by path
TIMEOUT_S = 300
TOKEN_ENV = "K8SAI_SECRETS_TEST_METRICS_TOKEN"
CHAIN = "suites/smoke/test_kueue_chain.py"
METRICS_TEST = f"{CHAIN}::test_kueue_metrics_expose_admission_attempts"
ADMISSION_P99 = "Kueue admission attempt P99 (histogram)"
QUEUE_TIME = "smoke job queue time"
# A leak is a run of secret characters (base64, hex, JWT) holding WINDOW characters of a
# secret. Runs are probed every STEP characters against every WINDOW-long piece of every
# secret, so any leaked piece of WINDOW + STEP - 1 characters or more is found, whatever its
# offset; 24 characters of a key or token are no one else's text.
WINDOW, STEP = 24, 8
RUN = re.compile(rb"[A-Za-z0-9+/=_.~-]{%d,}" % WINDOW)

FAILING_TESTS = '''
"""Tests that fail the way a user's would, with secrets within reach of the report."""

import pytest

from pytest_k8sai.kueue.runs import admission_source
from pytest_k8sai.measure import prometheus


def test_fails_with_the_cluster_in_view(cluster):
    # The assertion's explanation shows the ClusterHandle it came from (with -vv in full).
    assert cluster.provider == "no such provider"


def test_fails_inside_a_metrics_scrape(cluster):
    if why := admission_source(cluster):  # an existing cluster: kueue_suite.metrics_url
        pytest.fail(why)
    base = cluster.endpoints["kueue_metrics"].rsplit("/", 1)[0]
    # Fails inside scrape(), whose locals (-l) hold the token and the Authorization header.
    prometheus.scrape(
        base + "/no-such-path",
        token=cluster.endpoints.get("kueue_metrics_token"),
        ca_file=cluster.endpoints.get("ca_file"),
    )
'''


@dataclass
class Secret:
    name: str
    # Every way it can be written: raw, PEM lines, base64. Never in a repr: a failure of this
    # test must not print what it looks for.
    forms: list[str] = field(repr=False)

    def pieces(self) -> set[bytes]:
        out: set[bytes] = set()
        for form in self.forms:
            for run in RUN.findall(form.encode()):
                out |= {run[i : i + WINDOW] for i in range(len(run) - WINDOW + 1)}
        return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_secret(name: str, pem: str) -> Secret:
    """A private key as a run might write it: PEM body lines, the body unwrapped and the
    base64 of the whole PEM (a kubeconfig's client-key-data)."""
    lines = [ln for ln in pem.strip().splitlines() if "-----" not in ln]
    return Secret(name, [*lines, "".join(lines), _b64(pem.encode())])


def kubeconfig_secrets(name: str, path: Path) -> list[Secret]:
    """Everything of a kubeconfig's text that is its own: the *-data fields (key, client
    certificate, CA) and tokens."""
    doc = yaml.safe_load(path.read_text())
    found = []
    for section, key in (("clusters", "cluster"), ("users", "user")):
        for entry in doc.get(section) or []:
            for field_name, value in (entry.get(key) or {}).items():
                if field_name == "client-key-data":
                    found.append(key_secret(f"{name} client key", base64.b64decode(value).decode()))
                elif field_name.endswith("-data") or field_name == "token":
                    found.append(Secret(f"{name} {field_name}", [value]))
    return found


@dataclass
class Planted:
    kubeconfig: Path
    username: str
    token: str = field(repr=False)
    secrets: list[Secret] = field(default_factory=list, repr=False)


def _client_cert(ca_dir: Path, username: str) -> tuple[str, str]:
    """A fresh P-256 key and a one-hour client certificate for ``username`` (group
    system:masters) signed by the local clusters' CA; returned as PEM texts."""
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, username),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def _write_kubeconfig(path: Path, server: str, ca_file: Path, cert: str, key: str) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "planted",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _b64(ca_file.read_bytes()),
                },
            }
        ],
        "users": [
            {
                "name": "planted",
                "user": {
                    "client-certificate-data": _b64(cert.encode()),
                    "client-key-data": _b64(key.encode()),
                },
            }
        ],
        "contexts": [{"name": "planted", "context": {"cluster": "planted", "user": "planted"}}],
        "current-context": "planted",
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)


def _metrics_token(cluster, namespace: str, run_id: str, rbac: client.RbacAuthorizationV1Api):
    """A ServiceAccount token allowed to read /metrics (bound to system:monitoring), so Kueue's
    metrics endpoint, which authenticates by TokenReview, accepts it. Returns (token, binding)."""
    cluster.core.create_namespaced_service_account(
        namespace, {"metadata": {"name": "metrics-reader"}}
    )
    binding = f"k8sai-secrets-{secrets.token_hex(3)}"
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": binding, "labels": ownership_labels(run_id)},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:monitoring",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "metrics-reader", "namespace": namespace}
            ],
        }
    )
    token = cluster.core.create_namespaced_service_account_token(
        "metrics-reader",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    return token, binding


@pytest.fixture(scope="module")
def planted(cluster, k8sai_run_id, tmp_path_factory):
    if cluster.provider != "local":
        pytest.skip("signs a client certificate with the local tier's CA: local tier only")
    tmp = tmp_path_factory.mktemp("planted")
    username = f"k8sai-secrets-probe-{secrets.token_hex(3)}"
    cert, key = _client_cert(cache_root() / "ca", username)
    kubeconfig = tmp / "planted.kubeconfig"
    ca_file = Path(cluster.endpoints["ca_file"])
    _write_kubeconfig(kubeconfig, cluster.endpoints["apiserver"], ca_file, cert, key)
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    binding = None
    with owned_namespace(cluster.core, k8sai_run_id, prefix="k8sai-secrets") as ns:
        try:
            token, binding = _metrics_token(cluster, ns, k8sai_run_id, rbac)
            found = [
                Secret("planted metrics token", [token]),
                *kubeconfig_secrets("planted kubeconfig", kubeconfig),
                # The session cluster's own: what the local provider's run holds.
                Secret("local metrics token", [cluster.endpoints["kueue_metrics_token"]]),
                *kubeconfig_secrets("local admin kubeconfig", Path(cluster.kubeconfig)),
            ]
            for secret in found:  # this session's own failure output masks them too
                for form in secret.forms:
                    redact.remember(form)
            yield Planted(kubeconfig, username, token, found)
        finally:
            if binding is not None:
                try:
                    rbac.delete_cluster_role_binding(binding)
                except ApiException as exc:
                    if exc.status != 404:
                        raise


@dataclass
class Run:
    cmd: list[str]
    proc: subprocess.CompletedProcess[str]
    results: Path
    allure: Path
    junit: Path
    output: Path  # stdout and stderr, as the terminal showed them

    def files(self) -> list[Path]:
        roots = [self.results, self.allure]
        found = [p for r in roots if r.exists() for p in sorted(r.rglob("*")) if p.is_file()]
        return found + [p for p in (self.junit, self.output) if p.exists()]

    def tail(self, lines: int = 25) -> str:
        return "\n".join((self.proc.stdout + self.proc.stderr).splitlines()[-lines:])

    def figures(self) -> set[str]:
        data = yaml.safe_load((self.results / "results.json").read_text())
        return {f["figure"] for f in data["figures"]}

    def failed_on_purpose(self) -> bool:
        """Both tests of FAILING_TESTS failed (whatever the suite's own verdicts were)."""
        data = yaml.safe_load((self.results / "results.json").read_text())
        ours = [t["outcome"] for t in data["tests"] if "test_fails_" in t["nodeid"]]
        return ours == ["failed", "failed"]


def run_pytest(where: Path, args: list[str], env: dict[str, str]) -> Run:
    where.mkdir(parents=True, exist_ok=True)
    results, allure, junit = where / "results", where / "allure", where / "junit.xml"
    cmd = [
        sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"),
        "-p", "no:cacheprovider", "--basetemp", str(where / "basetemp"),
        "--results-dir", str(results), "--alluredir", str(allure), f"--junitxml={junit}",
        *args,
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )  # fmt: skip
    output = where / "terminal.txt"
    output.write_text(proc.stdout + "\n" + proc.stderr)
    return Run(cmd, proc, results, allure, junit, output)


def leaks(files: list[Path], found: list[Secret]) -> list[str]:
    """Where a piece of a secret appears: file, line and which secret, with only the first
    four characters of the piece."""
    owner = {piece: s.name for s in found for piece in s.pieces()}
    out = []
    for path in files:
        data = path.read_bytes()
        for m in RUN.finditer(data):
            run = m.group()
            starts = [*range(0, len(run) - WINDOW + 1, STEP), len(run) - WINDOW]
            hit = next((run[i : i + WINDOW] for i in starts if run[i : i + WINDOW] in owner), None)
            if hit is not None:
                line = data.count(b"\n", 0, m.start()) + 1
                shown = hit[:4].decode()
                out.append(f"{path}:{line}: {owner[hit]} ({shown}..., {len(run)} characters)")
    return out


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # The children speak for themselves in the captured output; no colour codes.
    env.update(PY_COLORS="0", **extra)
    return env


def _existing_profile(path: Path, kubeconfig: Path, cluster, session_profile) -> Path:
    data = {
        "name": "local-as-existing-secrets",
        "provider": "existing",
        "reach": {"kubeconfig": str(kubeconfig)},
        "capabilities": {
            "gpu_nodes": session_profile.capabilities.gpu_nodes.model_dump(),
            "mig": {"enabled": False},
            "kueue": True,
            "das": False,
            "inference_gateway": False,
        },
        "kueue_suite": {
            "metrics_url": cluster.endpoints["kueue_metrics"],
            "metrics_token_env": TOKEN_ENV,
            "metrics_ca_file": cluster.endpoints["ca_file"],
        },
        "time_compression": session_profile.time_compression,
        "slo": session_profile.slo.model_dump(),
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _failing_tests(tmp: Path) -> Path:
    path = tmp / "failing" / "test_fails_in_view.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAILING_TESTS)
    return path


def _assert_no_leaks(runs: list[Run], found: list[Secret]) -> None:
    files = [f for r in runs for f in r.files()]
    where = leaks(files, found)
    assert not where, f"{len(where)} secret piece(s) in what the run wrote:\n" + "\n".join(
        where[:40]
    )


def test_planted_credentials_are_real(planted, cluster):
    """The search below proves something only if these credentials work."""
    api = config.new_client_from_config(config_file=str(planted.kubeconfig))
    try:
        review = client.AuthenticationV1Api(api).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        assert review.status.user_info.username == planted.username
    finally:
        api.close()
    reader = client.AuthenticationV1Api(cluster.api_client).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=planted.token))
    )
    assert reader.status.authenticated, "the planted metrics token does not authenticate"


def test_existing_cluster_run_writes_no_credentials(planted, cluster, k8sai_profile, tmp_path):
    profile = _existing_profile(tmp_path / "profile.yaml", planted.kubeconfig, cluster,
                                k8sai_profile)  # fmt: skip
    run = run_pytest(
        tmp_path / "existing",
        [f"--cluster={profile}", "-vv", "-l", CHAIN, str(_failing_tests(tmp_path))],
        _env(**{TOKEN_ENV: planted.token}),
    )
    # The kubeconfig's only credential is the planted key: every API call used it; the
    # admission figure was scraped from Kueue's metrics with the planted token.
    figures = run.figures()
    assert QUEUE_TIME in figures and ADMISSION_P99 in figures, (
        f"the run did not get through the cluster with the planted credentials:\n{run.tail()}"
    )
    text = run.output.read_text()
    # The failing tests did put the handle and the request headers in front of pytest.
    assert run.failed_on_purpose() and "ClusterHandle(" in text and "headers" in text, run.tail()
    _assert_no_leaks([run], planted.secrets)


def test_local_provider_run_writes_no_credentials(planted, cluster, k8sai_profile, tmp_path):
    # The session's profile as a file: the run reuses the session's cluster (by its name),
    # authenticating with that cluster's admin key and scraping with its static token.
    profile = tmp_path / "session-profile.yaml"
    profile.write_text(yaml.safe_dump(yaml.safe_load(k8sai_profile.model_dump_json())))
    run = run_pytest(
        tmp_path / "local",
        [f"--cluster={profile}", "-vv", "-l", METRICS_TEST, str(_failing_tests(tmp_path))],
        _env(),
    )
    assert ADMISSION_P99 in run.figures(), f"no admission figure:\n{run.tail()}"
    assert run.failed_on_purpose(), run.tail()
    logs = sorted((run.results / "logs").glob("*.log"))
    assert logs, f"no component logs were copied after the failures:\n{run.tail()}"
    results = b"".join(p.read_bytes() for p in run.allure.glob("*-result.json"))
    assert b"component log" in results, "no component log was attached to Allure"
    _assert_no_leaks([run], planted.secrets)


def test_unreadable_kubeconfig_is_not_echoed(planted, cluster, k8sai_profile, tmp_path):
    token = secrets.token_urlsafe(32)
    broken = tmp_path / "broken.kubeconfig"
    text = planted.kubeconfig.read_text().replace(
        "users:\n", f"users:\n- name: broken\n  user:\n    token: {token}: [\n", 1
    )
    broken.write_text(text)
    profile = _existing_profile(tmp_path / "profile.yaml", broken, cluster, k8sai_profile)
    run = run_pytest(tmp_path / "broken", [f"--cluster={profile}", CHAIN], _env())
    assert run.proc.returncode == 3, run.tail()
    assert "Cannot read kubeconfig" in run.output.read_text(), run.tail()
    _assert_no_leaks([run], [Secret("broken kubeconfig token", [token]), *planted.secrets])
