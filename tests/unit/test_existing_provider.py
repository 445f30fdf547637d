"""ExistingProvider against loopback only: refused ports, a listener that never answers, and a
tiny fake API server. Nothing here contacts a non-loopback address."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from pytest_k8sai.clusters import make_provider
from pytest_k8sai.clusters.existing import KUEUE_CRD, ExistingProvider
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.core.profiles import Profile


def _profile(timeout_s: float = 2.0, kueue: bool = False, **reach) -> Profile:
    return Profile.model_validate(
        {
            "name": "test-existing",
            "provider": "existing",
            "reach": {"connect_timeout_s": timeout_s, **reach},
            "capabilities": {"kueue": kueue},
        }
    )


def _kubeconfig(tmp_path, server: str, contexts=("ctx",), current: str | None = "ctx"):
    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in contexts],
    }
    if current:
        data["current-context"] = current
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(data))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hung_listener() -> Iterator[int]:
    """A loopback port whose kernel completes the TCP handshake but nobody ever answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


class _FakeApi(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict]] = {}

    def do_GET(self):  # noqa: N802 - http.server's naming
        path = self.path.split("?")[0].rstrip("/")
        status, body = self.routes.get(path, (404, {"kind": "Status"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_api() -> Iterator[dict[str, tuple[int, dict]]]:
    """A plain-HTTP fake API server on loopback; tests fill in its routes."""
    routes: dict[str, tuple[int, dict]] = {
        "/version": (200, {"major": "1", "minor": "36", "gitVersion": "v1.36.3"}),
    }
    handler = type("Handler", (_FakeApi,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    routes["_url"] = (0, {"url": f"http://127.0.0.1:{server.server_address[1]}"})
    yield routes
    server.shutdown()
    server.server_close()


def _url(routes) -> str:
    return routes["_url"][1]["url"]


def test_refused_port_fails_fast_naming_server(tmp_path):
    server = f"https://127.0.0.1:{_free_port()}"
    kc = _kubeconfig(tmp_path, server)
    start = time.monotonic()
    with pytest.raises(ClusterError) as err:
        ExistingProvider(_profile(), kubeconfig=str(kc)).create()
    assert time.monotonic() - start < 15
    msg = str(err.value)
    assert server in msg and str(kc) in msg and "'ctx'" in msg
    assert "connection failed" in msg and "Connection refused" in msg
    assert "object at 0x" not in msg


def test_hung_listener_times_out_within_connect_timeout(tmp_path, hung_listener):
    server = f"https://127.0.0.1:{hung_listener}"
    kc = _kubeconfig(tmp_path, server)
    start = time.monotonic()
    with pytest.raises(ClusterError) as err:
        ExistingProvider(_profile(timeout_s=1.0), kubeconfig=str(kc)).create()
    elapsed = time.monotonic() - start
    assert elapsed < 1.0 + 1.5, elapsed
    msg = str(err.value)
    assert server in msg
    assert "no answer within 1 s" in msg


def test_missing_kubeconfig_file(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ClusterError) as err:
        ExistingProvider(_profile(), kubeconfig=str(missing)).create()
    assert str(missing) in str(err.value) and "--kubeconfig" in str(err.value)


def test_kubeconfig_from_env(tmp_path, monkeypatch):
    missing = tmp_path / "from-env"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    with pytest.raises(ClusterError, match=r"\$KUBECONFIG"):
        ExistingProvider(_profile()).create()


def test_unknown_context_lists_known_ones(tmp_path):
    kc = _kubeconfig(tmp_path, "https://127.0.0.1:1", contexts=("alpha", "beta"), current="alpha")
    with pytest.raises(ClusterError) as err:
        ExistingProvider(_profile(), kubeconfig=str(kc), context="gamma").create()
    msg = str(err.value)
    assert "'gamma'" in msg and "--context" in msg and "alpha, beta" in msg


def test_profile_context_is_used_and_named(tmp_path):
    kc = _kubeconfig(tmp_path, "https://127.0.0.1:1")
    with pytest.raises(ClusterError, match="reach.context of profile 'test-existing'"):
        ExistingProvider(_profile(context="other"), kubeconfig=str(kc)).create()


def test_no_current_context(tmp_path):
    kc = _kubeconfig(tmp_path, "https://127.0.0.1:1", current=None)
    with pytest.raises(ClusterError, match="no current-context"):
        ExistingProvider(_profile(), kubeconfig=str(kc)).create()


def test_garbage_kubeconfig(tmp_path):
    kc = tmp_path / "kubeconfig"
    kc.write_text("just a string\n")
    with pytest.raises(ClusterError, match="Cannot read kubeconfig"):
        ExistingProvider(_profile(), kubeconfig=str(kc)).create()


def test_reachable_cluster_fills_version(tmp_path, fake_api):
    kc = _kubeconfig(tmp_path, _url(fake_api))
    provider = ExistingProvider(_profile(), kubeconfig=str(kc))
    handle = provider.create()
    assert handle.versions["kubernetes"] == "v1.36.3"
    assert handle.context == "ctx" and handle.provider == "existing"
    assert not provider.created
    assert provider.collect_logs(tmp_path / "logs") == []
    provider.destroy()


def test_http_error_is_reported(tmp_path, fake_api):
    fake_api["/version"] = (401, {"kind": "Status"})
    kc = _kubeconfig(tmp_path, _url(fake_api))
    with pytest.raises(ClusterError, match="HTTP 401"):
        ExistingProvider(_profile(), kubeconfig=str(kc)).create()


def test_kueue_crd_missing_marks_kueue_missing(tmp_path, fake_api):
    kc = _kubeconfig(tmp_path, _url(fake_api))
    handle = ExistingProvider(_profile(kueue=True), kubeconfig=str(kc)).create()
    msg = handle.missing["kueue"]
    assert "says Kueue" in msg and KUEUE_CRD in msg and "not found" in msg
    assert "skipped" in msg


def test_kueue_crd_present(tmp_path, fake_api):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
    fake_api[f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{KUEUE_CRD}"] = (200, crd)
    kc = _kubeconfig(tmp_path, _url(fake_api))
    ExistingProvider(_profile(kueue=True), kubeconfig=str(kc)).create()


def test_kueue_found_by_discovery_when_crds_are_forbidden(tmp_path, fake_api):
    fake_api[f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{KUEUE_CRD}"] = (403, {})
    gv = {"groupVersion": "kueue.x-k8s.io/v1beta2", "version": "v1beta2"}
    fake_api["/apis"] = (
        200,
        {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {"name": "kueue.x-k8s.io", "versions": [gv], "preferredVersion": gv},
            ],
        },
    )
    resources = {
        "kind": "APIResourceList",
        "groupVersion": "kueue.x-k8s.io/v1beta2",
        "resources": [
            {
                "name": "clusterqueues",
                "singularName": "clusterqueue",
                "namespaced": False,
                "kind": "ClusterQueue",
                "verbs": ["get"],
            }
        ],
    }
    fake_api["/apis/kueue.x-k8s.io/v1beta2"] = (200, resources)
    kc = _kubeconfig(tmp_path, _url(fake_api))
    ExistingProvider(_profile(kueue=True), kubeconfig=str(kc)).create()
    # Without the group in discovery, the same setup is a clear "not found".
    fake_api["/apis"] = (200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
    handle = ExistingProvider(_profile(kueue=True), kubeconfig=str(kc)).create()
    assert "not found" in handle.missing["kueue"]


def test_make_provider_existing():
    provider = make_provider(_profile(), kubeconfig="/x", context="y", keep=False)
    assert isinstance(provider, ExistingProvider)


def test_reach_flags_rejected_for_local_profile():
    local = _profile().model_copy(update={"provider": "local", "name": "local"})
    with pytest.raises(ClusterError, match="--kubeconfig only apply"):
        make_provider(local, kubeconfig="/x", context=None, keep=False)
