"""Where the Kueue suite reads admission attempts on a cluster it did not build."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.core.profiles import load_profile
from pytest_k8sai.kueue.runs import admission_source

METRICS = (
    "# TYPE kueue_admission_attempt_duration_seconds histogram\n"
    'kueue_admission_attempt_duration_seconds_bucket{result="success",le="0.005"} 3\n'
)


def _handle(**kueue: object) -> ClusterHandle:
    rosa = load_profile("rosa")
    profile = rosa.model_copy(update={"kueue_suite": rosa.kueue_suite.model_copy(update=kueue)})
    return ClusterHandle(profile, Path("/nonexistent"), None, "existing")


def test_local_tier_reads_its_own_log() -> None:
    h = _handle()
    h.endpoints["logs"] = "/tmp"
    assert admission_source(h) == ""


def test_no_source_is_said_up_front() -> None:
    assert "set kueue_suite.metrics_url" in admission_source(_handle())
    why = admission_source(
        _handle(metrics_url="http://127.0.0.1:1/metrics", metrics_token_env="K8SAI_NO_SUCH_VAR")
    )
    assert "$K8SAI_NO_SUCH_VAR, which is unset" in why


def test_reachable_metrics_url_becomes_the_endpoint(monkeypatch) -> None:
    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            ok = self.headers.get("Authorization") == "Bearer t0k"
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(METRICS.encode() if ok else b"no")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        monkeypatch.setenv("KUEUE_TOKEN", "t0k")
        h = _handle(metrics_url=url, metrics_token_env="KUEUE_TOKEN")
        assert admission_source(h) == ""
        assert h.endpoints["kueue_metrics"] == url
        monkeypatch.setenv("KUEUE_TOKEN", "wrong")
        assert "HTTP 401" in admission_source(
            _handle(metrics_url=url, metrics_token_env="KUEUE_TOKEN")
        )
    finally:
        server.shutdown()
