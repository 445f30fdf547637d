"""The endpoint picker (GAIE EPP): its configurations (data in gaie/epp_configs.yaml),
its flags for a local run and its readiness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import yaml

from pytest_k8sai.core import mutants
from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import ProfileError
from pytest_k8sai.core.yamlfiles import read_yaml
from pytest_k8sai.gaie.replicas import get, metric_sum

CONFIG_NAMES = ("random", "prefix-aware")
READY_PODS_METRIC = "inference_pool_ready_pods"
HEALTH_METHOD = "/grpc.health.v1.Health/Check"
SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}, protobuf wire form


DEFAULT_CONFIGS = data_file("gaie", "epp_configs.yaml")


def configs_path(setting: str | None) -> Path:
    """The profile's ``gaie_suite.epp_configs``, or the packaged configurations when unset."""
    return Path(setting).expanduser().resolve() if setting else DEFAULT_CONFIGS


def load_configs(path: Path) -> dict[str, dict[str, Any]]:
    """The named EndpointPickerConfig documents; both experiment configurations must exist."""
    data = read_yaml(path, "EPP configuration file", ProfileError)
    if not isinstance(data, dict):
        raise ProfileError(f"EPP configuration file {path} must map names to configurations.")
    missing = [n for n in CONFIG_NAMES if n not in data]
    if missing:
        raise ProfileError(
            f"EPP configuration file {path} lacks {missing} (profile field "
            f"'gaie_suite.epp_configs'); it needs {list(CONFIG_NAMES)}."
        )
    overlays = mutants.changes().epp
    if overlays:
        data = mutated_configs(data, overlays)
    for name, doc in data.items():
        if not isinstance(doc, dict) or doc.get("kind") != "EndpointPickerConfig":
            by = f" (after {mutants.where('epp')})" if overlays else ""
            raise ProfileError(
                f"EPP configuration '{name}' in {path}{by} is not an EndpointPickerConfig document."
            )
    return data


def mutated_configs(configs: dict[str, Any], overlays: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each overlay deep-merged onto the configuration of its name. Lists merge item by item:
    ``plugins`` by name (GAIE's default name is the type), a profile's ``plugins`` by
    ``pluginRef``, ``schedulingProfiles`` by name; ``{$replace: ...}`` replaces wholesale."""
    mutants.overlay_names(overlays, list(configs), "epp")
    return {
        name: mutants.deep_merge(doc, overlays[name]) if name in overlays else doc
        for name, doc in configs.items()
    }


def write_config(doc: dict[str, Any], dest: Path) -> Path:
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dest


def epp_args(
    pool: str, namespace: str, config: Path, grpc_port: int, health_port: int, metrics_port: int
) -> list[str]:
    """A local EPP: plain gRPC and metrics (no TLS, no TokenReview), no tracing or pprof."""
    return [
        "--pool-name", pool,
        "--pool-namespace", namespace,
        "--config-file", str(config),
        "--grpc-port", str(grpc_port),
        "--grpc-health-port", str(health_port),
        "--metrics-port", str(metrics_port),
        "--secure-serving=false",
        "--metrics-endpoint-auth=false",
        "--tracing=false",
        "--enable-pprof=false",
        # The ready-pods gauge is how the suite sees that every replica was discovered.
        "--refresh-prometheus-metrics-interval", "250ms",
        "--v", "1",
    ]  # fmt: skip


def serving(health_port: int) -> bool:
    """The EPP's gRPC health check: SERVING once its InferencePool has synced."""
    with grpc.insecure_channel(f"127.0.0.1:{health_port}") as ch:
        check = ch.unary_unary(HEALTH_METHOD)
        try:
            return bytes(check(b"", timeout=0.5)) == SERVING
        except grpc.RpcError:
            return False


def ready_pods(metrics_port: int) -> int:
    status, body = get(f"http://127.0.0.1:{metrics_port}/metrics", 1.0)
    if status != 200:
        return -1
    return int(metric_sum(body.decode(errors="replace"), READY_PODS_METRIC))
