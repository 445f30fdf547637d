"""The local tier's build outputs: stages and webhooks read from the downloaded modules
(needs `k8sai local build`; skipped before it)."""

from __future__ import annotations

import pytest
import yaml

from pytest_k8sai.clusters.local import build, kwok_nodes
from pytest_k8sai.clusters.local import kueue_manager as kueue
from pytest_k8sai.clusters.local.controlplane import Ports


@pytest.fixture(scope="module")
def built():
    """The cached builds (the suites' CI step builds them first)."""
    b = build.Builder(log=lambda m: None)
    got = {n: b.cached(c) for n, c in build.load_components().items()}
    if not all(got.values()):
        pytest.skip("components not built yet: run `k8sai local build`")
    return got


def test_stages_come_from_the_kwok_module(built):
    docs = list(yaml.safe_load_all(kwok_nodes.stages_yaml(built["kwok"].module_dir)))
    names = [d["metadata"]["name"] for d in docs]
    assert {"node-initialize", "node-heartbeat-with-lease", "pod-complete"} <= set(names)
    assert all(d["kind"] == "Stage" for d in docs)


def test_webhooks_point_at_loopback_and_keep_only_used_paths(built):
    ports = Ports.allocate()
    confs = kueue.webhook_configurations(built["kueue"].module_dir, ports, b"CA")
    paths = [h["clientConfig"]["url"] for c in confs for h in c["webhooks"]]
    assert paths and all(u.startswith(f"https://127.0.0.1:{ports.kueue_webhook}/") for u in paths)
    assert any(u.endswith("/mutate-batch-v1-job") for u in paths)
    assert not any("pytorchjob" in u or "--v1-pod" in u for u in paths)
