"""The suites' API client: bounded requests, Retry-After on writes, a token re-read on 401."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from kubernetes import client

from pytest_k8sai.clusters.apiclient import (
    READ_TIMEOUT_S,
    BoundedApiClient,
    authorization,
    bounded_client,
)


def _kubeconfig(path: Path, token: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


class Answers:
    """Stands in for the HTTP layer: answers in order, records what was sent."""

    def __init__(self, *statuses: tuple[int, dict[str, str]]) -> None:
        self.statuses = list(statuses)
        self.sent: list[tuple[str, dict | None, object]] = []

    def __call__(self, api, method, url, headers=None, body=None, post=None, _request_timeout=None):
        self.sent.append((method, dict(headers or {}), _request_timeout))
        status, hdrs = self.statuses.pop(0) if self.statuses else (200, {})
        return SimpleNamespace(status=status, read=lambda: b"", getheader=hdrs.get)


@pytest.fixture
def answers(monkeypatch):
    def install(*statuses):
        fake = Answers(*statuses)
        # A function, so it binds as a method as the real one does.
        monkeypatch.setattr(
            client.ApiClient, "call_api", lambda self, *a, **kw: fake(self, *a, **kw)
        )
        return fake

    return install


def test_requests_without_a_timeout_get_one_and_streams_keep_theirs(answers):
    fake = answers()
    api = BoundedApiClient(client.Configuration(), connect_timeout_s=7.0)
    api.call_api("GET", "https://h/api/v1/namespaces")
    api.call_api("GET", "https://h/api/v1/pods", _request_timeout=3)
    api.call_api("GET", "https://h/api/v1/pods?watch=true&timeoutSeconds=5")
    assert [t for _, _, t in fake.sent] == [(7.0, READ_TIMEOUT_S), 3, None]
    assert api.configuration.client_go_retries  # reads: client-go's Retry-After retries


def test_a_throttled_write_is_sent_again_after_retry_after(answers):
    fake = answers((429, {"Retry-After": "3"}), (429, {}), (201, {}))
    api = BoundedApiClient(client.Configuration(), connect_timeout_s=5.0)
    slept: list[float] = []
    api.sleep = slept.append
    resp = api.call_api("POST", "https://h/apis/batch/v1/namespaces/n/jobs", {}, {"kind": "Job"})
    assert resp.status == 201 and len(fake.sent) == 3 and api.write_retries == 2
    assert slept == [3.0, 2.0]  # the server's Retry-After, then the backoff


def test_a_failed_write_is_not_retried(answers):
    fake = answers((503, {"Retry-After": "1"}))
    api = BoundedApiClient(client.Configuration(), connect_timeout_s=5.0)
    assert api.call_api("POST", "https://h/api/v1/namespaces", {}).status == 503
    assert len(fake.sent) == 1, "a 5xx write may have been applied: never sent twice"


def test_a_refreshed_token_is_picked_up_on_401(answers, tmp_path):
    kc = _kubeconfig(tmp_path / "kubeconfig", "old-token-0123456789")
    api = bounded_client(kc, None, 5.0)
    told: list[str] = []
    api.on_new_token = told.append
    _kubeconfig(kc, "new-token-9876543210")  # e.g. `oc login` beside a long run
    fake = answers((401, {}), (200, {}))
    sent_first = {"authorization": "Bearer old-token-0123456789"}
    resp = api.call_api("GET", "https://h/api/v1/namespaces", sent_first)
    assert resp.status == 200 and api.token_refreshes == 1
    assert fake.sent[1][1]["authorization"] == "Bearer new-token-9876543210"
    assert told == ["Bearer new-token-9876543210"]
    assert authorization(api.configuration) == "Bearer new-token-9876543210"


def test_a_401_with_the_same_token_stands(answers, tmp_path):
    kc = _kubeconfig(tmp_path / "kubeconfig", "same-token-0123456789")
    api = bounded_client(kc, None, 5.0)
    fake = answers((401, {}))
    sent = {"authorization": "Bearer same-token-0123456789"}
    assert api.call_api("GET", "https://h/api/v1/namespaces", sent).status == 401
    assert len(fake.sent) == 1 and api.token_refreshes == 0
