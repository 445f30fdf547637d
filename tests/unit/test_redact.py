"""report/redact.py: known secrets in every form, credential-shaped values, pytest reports."""

from __future__ import annotations

import base64

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pytest_k8sai.report import redact

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _fresh_registry():
    redact.forget_all()
    yield
    redact.forget_all()


def _key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_a_remembered_token_is_masked_wherever_it_appears():
    redact.remember("s3cr3t-t0ken-0123456789")
    out = redact.scrub("GET /metrics with s3cr3t-t0ken-0123456789 -> 401")
    assert out == f"GET /metrics with {redact.MASK} -> 401"


def test_short_values_are_not_remembered():
    redact.remember("true")
    assert redact.known_count() == 0
    assert redact.scrub("true") == "true"


def test_kubeconfig_users_key_in_every_form(tmp_path):
    pem = _key_pem()
    data = base64.b64encode(pem.encode()).decode()
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {"name": "a", "user": {"client-key-data": data}},
                    {"name": "b", "user": {"token": "tok-abcdefghijklmnop"}},
                ]
            }
        )
    )
    redact.remember_kubeconfig(path)
    body = [ln for ln in pem.splitlines() if "-----" not in ln]
    for text in [data, pem.strip(), body[0], "".join(body), "tok-abcdefghijklmnop"]:
        assert redact.scrub(f"x {text} y") == f"x {redact.MASK} y", text[:8]


def test_credentials_never_registered_are_caught_by_their_shape():
    text = (
        "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload-part-here\n"
        "metrics_token = 'abcdefghijklmnop'\n"
        f"{_key_pem()}"
        "max_tokens: 5120000000000000 and a bearer token from the environment\n"
    )
    out = redact.scrub(text)
    assert "eyJhbGci" not in out and "abcdefghijklmnop" not in out
    assert "PRIVATE KEY-----" in out and "MIG" not in out
    assert "max_tokens: 5120000000000000 and a bearer token from the environment" in out


def test_copied_files_are_rewritten_only_when_they_hold_a_secret(tmp_path):
    redact.remember("0123456789abcdef0123")
    dirty, clean = tmp_path / "a.log", tmp_path / "b.log"
    dirty.write_text("token 0123456789abcdef0123 seen\n")
    clean.write_text("nothing here\n")
    before = clean.stat().st_mtime_ns
    redact.scrub_files([dirty, clean])
    assert dirty.read_text() == f"token {redact.MASK} seen\n"
    assert clean.stat().st_mtime_ns == before


def test_a_failure_report_is_scrubbed_before_it_is_shown(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        test_leaks="""
        def test_leaks():
            token = "planted-0123456789abcdef"
            print("sending", token)
            assert token == "other"
        """,
        scrubber="""
        from pytest_k8sai.report import redact

        def pytest_configure(config):
            redact.remember("planted-0123456789abcdef")
            config.pluginmanager.register(redact.ReportScrubber(), "k8sai-redact")
        """,
    )
    pytester.syspathinsert()
    junit = pytester.path / "junit.xml"
    # -l prints the locals, -vv the full assertion; the captured print shows too.
    result = pytester.runpytest("-p", "scrubber", "-l", "-vv", f"--junitxml={junit}")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "planted-0123456789abcdef" not in out + junit.read_text()
    assert out.count(redact.MASK) >= 3  # the assertion, the local, the captured output
    assert "AssertionError" in out  # the report keeps its structure
