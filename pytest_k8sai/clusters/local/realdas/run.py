"""Start and stop the real DAS on a local cluster: das-webhook, das-scheduler and one
das-daemonset (emulated GPUs) per node, as supervised processes on 127.0.0.1.

Rules the harness must keep (docs/das-local.md):
- never restart a node's das-daemonset within a cluster's life: every start invents new GPU
  UUIDs, orphaning the claims on the old ones (and double-booking slices);
- claims of pods that ended while das-scheduler was down are never released by DAS: remove
  them with ``cleanup_claims`` (the suites' namespaces, and everything at teardown).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from pydantic import BaseModel, ConfigDict

from pytest_k8sai.clusters.local.build import cache_root, file_lock
from pytest_k8sai.clusters.local.pki import Pki
from pytest_k8sai.clusters.local.processes import Supervisor, free_port
from pytest_k8sai.clusters.local.realdas import objects
from pytest_k8sai.core.apis import DAS_CLAIMS, DAS_GROUP, DAS_VERSION
from pytest_k8sai.core.errors import ClusterError

Log = Callable[[str], None]

# Fixed in das-daemonset (the kubelet device-plugin API's DevicePluginPath, and CDI's default
# dynamic spec dir): per-node instances get their own through a private mount namespace.
DEVICE_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")
CDI_DIR = Path("/var/run/cdi")
SCHEDULER_LEASE = "das-scheduler-lock"  # library-go's leader election (always on upstream)
WEBHOOK_PROC = "das-webhook"
SCHEDULER_PROC = "das-scheduler"
DAEMONSET_PREFIX = "das-daemonset-"
MIG_CAPABLE_LABEL = "nvidia.com/mig.capable"
READY_TIMEOUT_S = 90.0
# Runs as sh -c inside the new mount namespace: bind each "<source> <target>" pair given
# before "--", then exec the program after it (so signals reach das-daemonset itself).
NS_SCRIPT = (
    'set -e; while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done; shift; exec "$@"'
)


class DasNode(BaseModel):
    """A node das-daemonset serves. ``kubelet_device_plugin_dir`` is set for a node with a
    real kubelet: das-daemonset then registers its device plugins with that kubelet there.
    None means a KWOK node (no kubelet): a private, per-node device-plugin dir, and the
    ``mig.das.com/*`` capacity is patched into the node's status instead."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kubelet_device_plugin_dir: Path | None = None
    cdi_dir: Path | None = None  # None: a private one under the run dir

    @property
    def kwok(self) -> bool:
        return self.kubelet_device_plugin_dir is None


class DasEndpoints(BaseModel):
    webhook_url: str
    scheduler_listen: str
    processes: list[str]
    gpus: dict[str, list[str]]  # node -> GPU UUIDs das-daemonset invented at its start
    capacity: dict[str, dict[str, str]]  # KWOK node -> the mig.das.com/* capacity patched in
    created_dirs: list[Path]  # host mount points this start created (see remove_host_dirs)
    timings: dict[str, float]


# -- command lines (pure) -------------------------------------------------------------------


def webhook_args(pki: Pki, port: int) -> list[str]:
    crt, key = pki.pair("serving")  # SANs localhost and IP 127.0.0.1, from the cluster's CA
    return [
        "serve",
        "--tls=true",
        f"--tlscert={crt}",
        f"--tlskey={key}",
        f"--cacert={pki.ca_crt}",
        "--listen=127.0.0.1",
        f"--port={port}",
    ]


def scheduler_args(config: Path, kubeconfig: Path, listen_port: int) -> list[str]:
    return [
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        # Required outside a pod (library-go reads it from the service-account mount there).
        f"--namespace={objects.NAMESPACE}",
        # library-go's metrics/health server; its default is 0.0.0.0:8443.
        f"--listen=127.0.0.1:{listen_port}",
        "--secure-port=0",  # kube-scheduler's own server: not needed
    ]


def daemonset_args(kubeconfig: Path, listen_port: int) -> list[str]:
    return [
        "daemonset",
        f"--kubeconfig={kubeconfig}",
        f"--namespace={objects.NAMESPACE}",
        f"--listen=127.0.0.1:{listen_port}",
    ]


def daemonset_env(node: str, tmp_dir: Path) -> dict[str, str]:
    """Emulated: two fake A100-PCIE-40GB per node (no NVML calls); Allocate still runs.
    TMPDIR is the node's own: das-daemonset writes its serving config to
    ``os.TempDir()/daemonset-config.json`` and restarts when that file changes, so instances
    sharing /tmp restart each other (and then die in an NVML symbol lookup, exit 127)."""
    return {"EMULATED_MODE": "enabled", "NODE_NAME": node, "TMPDIR": str(tmp_dir)}


def node_tmp_dir(node: DasNode, run_dir: Path) -> Path:
    return run_dir / "das" / node.name / "tmp"


def node_dirs(node: DasNode, run_dir: Path) -> tuple[Path, Path]:
    """(device-plugin dir, CDI dir) das-daemonset of ``node`` should see at the fixed paths."""
    private = run_dir / "das" / node.name
    return (
        node.kubelet_device_plugin_dir or private / "device-plugins",
        node.cdi_dir or private / "cdi",
    )


def daemonset_command(
    exe: Path,
    node: DasNode,
    run_dir: Path,
    kubeconfig: Path,
    listen_port: int,
    unshare: str = "unshare",
    sh: str = "sh",
) -> tuple[Path, list[str]]:
    """(program, args) for das-daemonset of ``node``. It runs in a private mount namespace with
    its dirs bound over the fixed paths, unless both already are the fixed paths (a real
    kubelet in the host's namespace with CDI specs where the runtime reads them)."""
    args = daemonset_args(kubeconfig, listen_port)
    plugins, cdi = node_dirs(node, run_dir)
    binds = [(s, t) for s, t in ((plugins, DEVICE_PLUGIN_DIR), (cdi, CDI_DIR)) if s != t]
    if not binds:
        return exe, args
    pairs = [str(p) for pair in binds for p in pair]
    # --kill-child: das-daemonset dies with unshare (which is what the Supervisor signals);
    # private propagation: the binds never show on the host and vanish with the namespace.
    return Path(unshare), [
        "--mount",
        "--propagation=private",
        "--kill-child",
        "--",
        sh,
        "-c",
        NS_SCRIPT,
        "das-node-ns",
        *pairs,
        "--",
        str(exe),
        *args,
    ]


# -- readiness probes -------------------------------------------------------------------------


def _webhook_ready(pool: urllib3.PoolManager, port: int) -> bool:
    return pool.request("GET", f"https://127.0.0.1:{port}/readyz").status == 200


def _lease_held(api: client.ApiClient) -> bool:
    lease = client.CoordinationV1Api(api).read_namespaced_lease(SCHEDULER_LEASE, objects.NAMESPACE)
    return bool(lease.spec and lease.spec.holder_identity)


def _delete_lease(api: client.ApiClient) -> None:
    """A lease left by an earlier das-scheduler would make a new one wait for it to expire
    (library-go's leader election cannot be turned off for it): ~170 s."""
    try:
        client.CoordinationV1Api(api).delete_namespaced_lease(SCHEDULER_LEASE, objects.NAMESPACE)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _delete_node_accelerator(api: client.ApiClient, node: str) -> None:
    try:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            DAS_GROUP, DAS_VERSION, objects.NAMESPACE, "nodeaccelerators", node
        )
    except ApiException as exc:
        if exc.status != 404:
            raise


def node_resources(api: client.ApiClient, node: str) -> dict[str, Any] | None:
    """The NodeAccelerator's discovered resources das-daemonset wrote for ``node``, or None."""
    try:
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
            DAS_GROUP, DAS_VERSION, objects.NAMESPACE, "nodeaccelerators", node
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    raw = (obj.get("status") or {}).get("nodeResources")
    if isinstance(raw, str):  # a RawExtension may come back serialized
        raw = json.loads(raw)
    return raw if isinstance(raw, dict) and raw.get("nodeGpus") else None


def per_gpu_counts(resources: Mapping[str, Any]) -> dict[str, int]:
    """Slices per GPU for each profile, counted as das-daemonset's device plugin counts them
    (placements of size > 0; manager.go countDevices)."""
    out = {}
    for profile, mig in (resources.get("migPlacement") or {}).items():
        out[profile] = sum(1 for p in mig.get("placements") or [] if int(p.get("size", 0)) > 0)
    return out


# -- KWOK nodes --------------------------------------------------------------------------------


def advertise_on_kwok_node(
    api: client.ApiClient, node: str, gpus: int, per_gpu: Mapping[str, int]
) -> dict[str, str]:
    """Patch ``mig.das.com/*`` capacity and allocatable into a KWOK node's status, as the
    kubelet would after das-daemonset's device plugins registered; return what was set.
    ``per_gpu`` comes from the NodeAccelerator or ``objects.emulated_placements``."""
    capacity = objects.kwok_capacity(per_gpu, gpus)
    body = {"status": {"capacity": capacity, "allocatable": capacity}}
    client.CoreV1Api(api).patch_node_status(node, body)
    return capacity


# -- start and stop ----------------------------------------------------------------------------


def host_dirs_record(root: Path | None = None) -> Path:
    """Which host mount points the tier created: one record per machine, shared by every
    local cluster, since the paths are the machine's own."""
    return (root or cache_root()) / "das-host-dirs.json"


def _read_record(record: Path) -> list[Path]:
    try:
        return [Path(p) for p in json.loads(record.read_text())]
    except (OSError, ValueError, TypeError):
        return []


def ensure_host_dirs(targets: Iterable[Path], record: Path) -> list[Path]:
    """Create the missing ``targets`` (bind mounts need them on the host) and add what was
    created to ``record``, parents first; return the newly created dirs. Call under
    ``file_lock(record.with_suffix('.lock'))``."""
    created: list[Path] = []
    for target in targets:
        missing = []
        p = target
        while not p.exists():
            missing.append(p)
            p = p.parent
        target.mkdir(parents=True, exist_ok=True)
        created.extend(reversed(missing))
    if created:
        known = _read_record(record)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps([str(p) for p in [*known, *created]]))
    return created


def daemonsets_running() -> bool:
    """True while any das-daemonset (or its mount-namespace wrapper) runs on the machine:
    removing a dir that is a bind-mount target in another namespace would unmount it there."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if Path(argv[0].decode(errors="replace")).name == "das-daemonset" or b"das-node-ns" in argv:
            return True
    return False


def remove_host_dirs(record: Path, busy: Callable[[], bool] = daemonsets_running) -> list[Path]:
    """Remove the recorded host dirs, children first and only while empty, unless some
    das-daemonset still runs (the last cluster to stop removes them); return those removed."""
    with file_lock(record.with_suffix(".lock")):
        if busy():
            return []
        removed, kept = [], []
        for d in reversed(_read_record(record)):
            try:
                d.rmdir()
                removed.append(d)
            except FileNotFoundError:
                pass
            except OSError:  # not empty: something else (a kubelet) uses it now
                kept.append(d)
        if kept:
            record.write_text(json.dumps([str(p) for p in reversed(kept)]))
        else:
            record.unlink(missing_ok=True)
        return removed


def start_das(
    sup: Supervisor,
    api: client.ApiClient,
    run_dir: Path,
    pki: Pki,
    kubeconfig: Path,
    nodes: list[DasNode],
    namespace_label: tuple[str, str],
    bins: Mapping[str, Path],
    source: Path,
    log: Log,
    timeout_s: float = READY_TIMEOUT_S,
) -> DasEndpoints:
    """Install DAS's objects, start its three programs and wait until each serves; on a KWOK
    node also advertise the slices. Pods in namespaces labelled ``namespace_label`` are then
    rewritten by the webhook and placed by das-scheduler."""
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def mark(what: str) -> None:
        timings[what] = round(time.monotonic() - t0, 3)

    objects.install(api, source, run_dir)
    mark("objects")
    core = client.CoreV1Api(api)
    for node in nodes:
        # das-daemonset serves only MIG-capable nodes (upstream's DaemonSet nodeSelector).
        core.patch_node(node.name, {"metadata": {"labels": {MIG_CAPABLE_LABEL: "true"}}})

    wport = free_port()
    sup.start(WEBHOOK_PROC, bins["das-webhook"], webhook_args(pki, wport))
    pool = urllib3.PoolManager(
        ca_certs=str(pki.ca_crt), timeout=urllib3.Timeout(connect=0.5, read=2.0), retries=False
    )
    sup.wait(WEBHOOK_PROC, lambda: _webhook_ready(pool, wport), timeout_s, "GET /readyz")
    objects.register_webhook(
        api, objects.webhook_configuration(source, wport, pki.ca_crt.read_bytes(), namespace_label)
    )
    mark("webhook")

    config = run_dir / "das-scheduler-config.yaml"
    config.write_text(yaml.safe_dump(objects.scheduler_config(source, kubeconfig)))
    _delete_lease(api)
    sport = free_port()
    sup.start(SCHEDULER_PROC, bins["das-scheduler"], scheduler_args(config, kubeconfig, sport))

    names = [WEBHOOK_PROC, SCHEDULER_PROC]
    unshare, sh = shutil.which("unshare"), shutil.which("sh")
    commands = {
        node.name: daemonset_command(
            bins["das-daemonset"],
            node,
            run_dir,
            kubeconfig,
            free_port(),
            unshare=unshare or "unshare",
            sh=sh or "sh",
        )
        for node in nodes
    }
    namespaced = [n for n in nodes if commands[n.name][0] != bins["das-daemonset"]]
    if namespaced and unshare is None:
        raise ClusterError(
            "das-daemonset runs in a private mount namespace per node, which needs 'unshare' "
            "(util-linux) on PATH; install util-linux."
        )
    for node in nodes:
        # One left by an earlier start would pass the readiness check below with its stale
        # GPU UUIDs; das-daemonset writes a fresh one (with new UUIDs) anyway.
        _delete_node_accelerator(api, node.name)
    record = host_dirs_record()
    created: list[Path] = []
    # Locked until the daemonsets run, so a cluster stopping meanwhile cannot remove the
    # mount points between their creation and the binds.
    with file_lock(record.with_suffix(".lock")):
        if namespaced:
            created = ensure_host_dirs((DEVICE_PLUGIN_DIR, CDI_DIR), record)
        for node in namespaced:
            for d in node_dirs(node, run_dir):
                d.mkdir(parents=True, exist_ok=True)
        for node in nodes:
            exe, args = commands[node.name]
            tmp = node_tmp_dir(node, run_dir)
            tmp.mkdir(parents=True, exist_ok=True)
            sup.start(DAEMONSET_PREFIX + node.name, exe, args, env=daemonset_env(node.name, tmp))
            names.append(DAEMONSET_PREFIX + node.name)

    sup.wait(SCHEDULER_PROC, lambda: _lease_held(api), timeout_s, f"Lease {SCHEDULER_LEASE}")
    mark("scheduler")
    gpus: dict[str, list[str]] = {}
    capacity: dict[str, dict[str, str]] = {}
    for node in nodes:
        proc = DAEMONSET_PREFIX + node.name
        sup.wait(
            proc,
            lambda n=node.name: node_resources(api, n) is not None,
            timeout_s,
            f"NodeAccelerator {objects.NAMESPACE}/{node.name}",
        )
        res = node_resources(api, node.name) or {}
        gpus[node.name] = [g["gpuUuid"] for g in res.get("nodeGpus", [])]
        if node.kwok:
            capacity[node.name] = advertise_on_kwok_node(
                api, node.name, len(gpus[node.name]), per_gpu_counts(res)
            )
        mark(f"daemonset-{node.name}")
    mark("ready")
    log(
        f"[k8sai] real DAS running in {timings['ready']:.1f}s: das-webhook on 127.0.0.1:{wport}, "
        f"das-scheduler, das-daemonset on {', '.join(n.name for n in nodes) or 'no node'}"
    )
    return DasEndpoints(
        webhook_url=f"https://127.0.0.1:{wport}{objects.WEBHOOK_PATH}",
        scheduler_listen=f"127.0.0.1:{sport}",
        processes=names,
        gpus=gpus,
        capacity=capacity,
        created_dirs=created,
        timings=timings,
    )


def claims(api: client.ApiClient) -> list[dict[str, Any]]:
    return client.CustomObjectsApi(api).list_namespaced_custom_object(
        DAS_GROUP, DAS_VERSION, objects.NAMESPACE, DAS_CLAIMS
    )["items"]


def cleanup_claims(api: client.ApiClient, namespaces: Iterable[str] | None = None) -> list[str]:
    """Delete the AllocationClaims of pods in ``namespaces`` (all claims when None, e.g. at
    teardown); return their names. DAS releases a claim only when das-scheduler sees its pod
    go: a pod that ended while it was down leaves its slice booked for good."""
    wanted = None if namespaces is None else set(namespaces)
    custom = client.CustomObjectsApi(api)
    removed = []
    for claim in claims(api):
        pod_ns = ((claim.get("spec") or {}).get("podRef") or {}).get("namespace")
        if wanted is not None and pod_ns not in wanted:
            continue
        name = claim["metadata"]["name"]
        try:
            custom.delete_namespaced_custom_object(
                DAS_GROUP, DAS_VERSION, objects.NAMESPACE, DAS_CLAIMS, name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
        removed.append(name)
    return removed


def stop_das(sup: Supervisor, api: client.ApiClient | None) -> list[str]:
    """Stop DAS's processes (their mount namespaces and binds go with them), remove the webhook
    configuration and every claim (when the API still answers), then the host mount points
    the tier created if no other cluster's das-daemonset runs; return the process names that
    needed SIGKILL."""
    killed = sup.stop_matching(DAEMONSET_PREFIX)
    killed += sup.stop_matching(SCHEDULER_PROC)
    if api is not None:
        # Before the webhook goes: with failurePolicy Fail it would block pod creation.
        objects.remove_webhook(api)
    killed += sup.stop_matching(WEBHOOK_PROC)
    if api is not None:
        cleanup_claims(api)
    remove_host_dirs(host_dirs_record())
    return killed
