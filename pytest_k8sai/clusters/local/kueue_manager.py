"""Run the real Kueue manager as a local process: its configuration, its CRDs and webhook
configurations (read from the downloaded sigs.k8s.io/kueue module, never copied), its certs."""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from pytest_k8sai.clusters.local.controlplane import Ports
from pytest_k8sai.clusters.local.pki import Pki, signed_by
from pytest_k8sai.core import mutants
from pytest_k8sai.core.apis import KUEUE_CONFIG_API_VERSION
from pytest_k8sai.core.errors import ClusterError

NAMESPACE = "kueue-system"
FRAMEWORKS = ["batch/job"]
CRD_DIR = "config/components/crd/bases"
WEBHOOK_MANIFEST = "config/components/webhook/manifests.yaml"
# Kueue v0.17 reads its metrics serving cert from this fixed path when internal cert
# management is off (cmd/kueue/main.go); there is no flag to move it.
METRICS_CERT_DIR = Path("/etc/kueue/metrics/certs")
# Webhook paths kept: Kueue's own API objects and the enabled job frameworks (batch/v1 Job).
KEPT_WEBHOOK_PATH_PARTS = ("kueue-x-k8s-io", "batch-v1-job")


def write_config(run: Path, ports: Ports, pki: Pki) -> Path:
    certs = run / "kueue-webhook-certs"
    certs.mkdir(exist_ok=True)
    crt, key = pki.pair("serving")
    shutil.copy(crt, certs / "tls.crt")
    shutil.copy(key, certs / "tls.key")
    config = {
        "apiVersion": KUEUE_CONFIG_API_VERSION,
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "leaderElection": {"leaderElect": False},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{ports.kueue_health}"},
        "metrics": {"bindAddress": f"127.0.0.1:{ports.kueue_metrics}"},
        "webhook": {"host": "127.0.0.1", "port": ports.kueue_webhook, "certDir": str(certs)},
        # Certs come from our CA (SAN 127.0.0.1); Kueue's own would name an in-cluster Service.
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        "integrations": {"frameworks": FRAMEWORKS},
        "clientConnection": {"qps": 1000, "burst": 2000},
        # The visibility server's cert dir is hard-coded to /visibility; it is not needed here.
        "featureGates": {"VisibilityOnDemand": False},
    }
    path = run / "kueue-config.yaml"
    path.write_text(yaml.safe_dump(mutated_config(config)))
    return path


def mutated_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the active mutant's ``kueue_manager`` overlay (docs/mutants.md)."""
    overlay = mutants.changes().kueue_manager
    return mutants.deep_merge(config, overlay) if overlay else config


def install_metrics_cert(pki: Pki) -> None:
    """Put a serving cert where Kueue looks for it, unless one from our CA is already there:
    rewriting it under a running cluster's Kueue would swap that cluster's cert."""
    crt, key = pki.pair("serving")
    if signed_by(METRICS_CERT_DIR / "tls.crt", pki.ca_crt):
        return
    try:
        METRICS_CERT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(key, METRICS_CERT_DIR / "tls.key")
        shutil.copy(crt, METRICS_CERT_DIR / "tls.crt")
    except OSError as exc:
        raise ClusterError(
            f"Kueue needs its metrics serving certificate in {METRICS_CERT_DIR} (a path fixed in "
            f"Kueue's main.go), and writing it failed: {exc.strerror}. Run as root, or make the "
            f"directory writable once with 'sudo install -d -o $USER {METRICS_CERT_DIR}'."
        ) from None


def manager_args(config: Path, kubeconfig: Path, log_level: int) -> list[str]:
    # Level 2 logs each scheduling cycle's duration: the exact admission-attempt latencies.
    return [f"--config={config}", f"--kubeconfig={kubeconfig}", f"--zap-log-level={log_level}"]


def _load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def install_crds(api: client.ApiClient, module_dir: Path, timeout_s: float = 30.0) -> list[str]:
    """Create Kueue's CRDs from the module and wait until discovery serves all of them."""
    files = sorted((module_dir / CRD_DIR).glob("*.yaml"))
    return install_crd_files(api, files, "Kueue", timeout_s)


def install_crd_files(
    api: client.ApiClient, files: list[Path], what: str, timeout_s: float = 30.0
) -> list[str]:
    """Create the CRDs in ``files`` (409 is fine) and wait until discovery serves them all."""
    ext = client.ApiextensionsV1Api(api)
    crds = [crd for f in files for crd in _load_docs(f)]
    names = [crd["metadata"]["name"] for crd in crds]
    for crd in crds:
        try:
            ext.create_custom_resource_definition(crd)
        except ApiException as exc:
            if exc.status != 409:
                raise
    deadline = time.monotonic() + timeout_s
    # A CRD's Established condition comes before discovery lists it, and Kueue's REST mapper
    # reads discovery at start (it exits on "no matches for kind"): wait for discovery itself.
    wanted: dict[str, set[str]] = {}
    for crd in crds:
        for v in crd["spec"]["versions"]:
            if v.get("served", True):
                key = f"{crd['spec']['group']}/{v['name']}"
                wanted.setdefault(key, set()).add(crd["spec"]["names"]["plural"])
    custom = client.CustomObjectsApi(api)
    while wanted:
        for gv in list(wanted):
            group, version = gv.split("/")
            try:
                listed = {r.name for r in custom.get_api_resources(group, version).resources}
            except ApiException:
                listed = set()
            if wanted[gv] <= listed:
                del wanted[gv]
        if wanted and time.monotonic() > deadline:
            raise ClusterError(f"{what} APIs not in discovery within {timeout_s:.0f}s: {wanted}")
        if wanted:
            time.sleep(0.05)
    return names


def webhook_configurations(module_dir: Path, ports: Ports, ca: bytes) -> list[dict[str, Any]]:
    """Kueue's webhook configurations, pointed at the local manager on 127.0.0.1."""
    bundle = base64.b64encode(ca).decode()
    out = []
    for doc in _load_docs(module_dir / WEBHOOK_MANIFEST):
        kept = []
        for hook in doc.get("webhooks", []):
            path = hook["clientConfig"]["service"]["path"]
            if any(part in path for part in KEPT_WEBHOOK_PATH_PARTS):
                hook["clientConfig"] = {
                    "url": f"https://127.0.0.1:{ports.kueue_webhook}{path}",
                    "caBundle": bundle,
                }
                kept.append(hook)
        kind = doc["kind"].replace("WebhookConfiguration", "").lower()
        doc["metadata"] = {"name": f"kueue-{kind}-webhook-configuration"}
        doc["webhooks"] = kept
        out.append(doc)
    return out


def register_webhooks(api: client.ApiClient, configs: list[dict[str, Any]]) -> None:
    adm = client.AdmissionregistrationV1Api(api)
    for doc in configs:
        create = (
            adm.create_mutating_webhook_configuration
            if doc["kind"] == "MutatingWebhookConfiguration"
            else adm.create_validating_webhook_configuration
        )
        try:
            create(doc)
        except ApiException as exc:
            if exc.status != 409:
                raise
