"""A fake-GPU device plugin for the real-node tier's kubelet (device-plugin API v1beta1).

It advertises ``--count`` healthy devices of ``--resource`` (default nvidia.com/gpu) whose ids
look like NVIDIA UUIDs and are stable per node and index, so allocations the kubelet
checkpointed still match after either side restarts. Allocate only sets one environment
variable (``NVIDIA_VISIBLE_DEVICES`` by default): no device nodes, no mounts. Pods get
scheduled and admitted as on a GPU node, and can see which "GPUs" they were given.

Run beside the kubelet, under a supervisor that sends stdout to a log file:

    python -m pytest_k8sai.clusters.local.realnode.deviceplugin --node NAME [--plugin-dir DIR]
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from pytest_k8sai.clusters.local.realnode.deviceplugin_protos import load_protos
from pytest_k8sai.core.errors import K8saiError

API_VERSION = "v1beta1"
HEALTHY = "Healthy"
DEFAULT_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")
KUBELET_SOCKET = "kubelet.sock"
# Fixed forever: a node's ids are uuid5(this, "<node>/<index>") in every run and version.
ID_NAMESPACE = uuid.UUID("3d0f5c52-8a4e-4a43-9a43-6b8a5e1f0c11")
POLL_S = 1.0  # how soon a wiped socket or a (re)started kubelet is noticed
LOG_EVERY_S = 10.0
REGISTER_TIMEOUT_S = 10.0  # the kubelet dials us back inside Register

log = logging.getLogger("k8sai.deviceplugin")


def device_ids(node: str, count: int) -> list[str]:
    return [f"GPU-{uuid.uuid5(ID_NAMESPACE, f'{node}/{i}')}" for i in range(count)]


def socket_name(resource: str) -> str:
    return "k8sai-" + resource.replace("/", "-").replace(".", "-") + ".sock"


def preferred(available: list[str], must_include: list[str], size: int) -> list[str]:
    """All of ``must_include``, then available ids in the kubelet's order, up to ``size``."""
    picked = list(dict.fromkeys(must_include))
    return picked + [d for d in available if d not in picked][: max(0, size - len(picked))]


class FakeGpuPlugin:
    """Serves DevicePlugin on its own socket and keeps it registered with the kubelet."""

    def __init__(
        self,
        plugin_dir: Path = DEFAULT_PLUGIN_DIR,
        resource: str = "nvidia.com/gpu",
        count: int = 8,
        node: str = "",
        env_name: str = "NVIDIA_VISIBLE_DEVICES",
    ) -> None:
        self.pb2, self.pb2_grpc = load_protos()
        self.resource = resource
        self.env_name = env_name
        self.ids = device_ids(node or socket.gethostname(), count)
        self.plugin_dir = plugin_dir
        self.socket = plugin_dir / socket_name(resource)
        self.kubelet_socket = plugin_dir / KUBELET_SOCKET
        self.stopping = threading.Event()
        self.server: grpc.Server | None = None
        # The inode of the kubelet.sock we registered with: a new one means a new kubelet.
        self.registered_to: int | None = None

    # --- the DevicePlugin service: grpc looks these methods up by name ---------------------
    def GetDevicePluginOptions(self, request: Any, context: Any) -> Any:
        return self.pb2.DevicePluginOptions(
            pre_start_required=False, get_preferred_allocation_available=True
        )

    def ListAndWatch(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        devices = [self.pb2.Device(ID=i, health=HEALTHY) for i in self.ids]
        yield self.pb2.ListAndWatchResponse(devices=devices)
        # Nothing ever changes, but the kubelet takes the end of this stream as "plugin gone".
        while context.is_active() and not self.stopping.wait(POLL_S):
            pass

    def GetPreferredAllocation(self, request: Any, context: grpc.ServicerContext) -> Any:
        answers = [
            self.pb2.ContainerPreferredAllocationResponse(
                deviceIDs=preferred(
                    list(r.available_deviceIDs), list(r.must_include_deviceIDs), r.allocation_size
                )
            )
            for r in request.container_requests
        ]
        return self.pb2.PreferredAllocationResponse(container_responses=answers)

    def Allocate(self, request: Any, context: grpc.ServicerContext) -> Any:
        answers = []
        for r in request.container_requests:
            ids = list(r.devices_ids)  # sic: the upstream field name
            if unknown := sorted(set(ids) - set(self.ids)):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown device ids {unknown}")
            log.info("allocate %s=%s", self.env_name, ",".join(ids))
            answers.append(self.pb2.ContainerAllocateResponse(envs={self.env_name: ",".join(ids)}))
        return self.pb2.AllocateResponse(container_responses=answers)

    def PreStartContainer(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.pb2.PreStartContainerResponse()

    # --- lifecycle ---------------------------------------------------------------------------
    def start_server(self) -> None:
        self.plugin_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.pb2_grpc.add_DevicePluginServicer_to_server(self, server)
        server.add_insecure_port(f"unix://{self.socket}")
        server.start()
        self.server = server
        self.registered_to = None
        log.info("serving %d x %s on %s", len(self.ids), self.resource, self.socket)

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop(grace=1).wait()
            self.server = None
        self.socket.unlink(missing_ok=True)

    def register(self) -> str | None:
        """Register with the kubelet; None when it accepted, else why not (yet)."""
        try:
            inode = self.kubelet_socket.stat().st_ino
        except FileNotFoundError:
            return f"{self.kubelet_socket} does not exist yet"
        request = self.pb2.RegisterRequest(
            version=API_VERSION,
            endpoint=self.socket.name,  # relative to the plugin dir, as the API wants
            resource_name=self.resource,
            options=self.GetDevicePluginOptions(None, None),
        )
        try:
            with grpc.insecure_channel(f"unix://{self.kubelet_socket}") as channel:
                stub = self.pb2_grpc.RegistrationStub(channel)
                stub.Register(request, timeout=REGISTER_TIMEOUT_S)
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call):
                return f"{exc.code().name}: {exc.details()}"
            return str(exc)
        self.registered_to = inode
        log.info("registered %s with the kubelet at %s", self.resource, self.kubelet_socket)
        return None

    def _kubelet_restarted(self) -> bool:
        try:
            return self.kubelet_socket.stat().st_ino != self.registered_to
        except FileNotFoundError:
            return False  # kubelet down: its next start wipes our socket or makes a new inode

    def run(self) -> None:
        """Serve and stay registered until stop(); the kubelet wipes the dir when it restarts."""
        log.info("devices: %s", ",".join(self.ids))
        self.start_server()
        last_log = float("-inf")
        while not self.stopping.is_set():
            if not self.socket.exists():
                log.info("%s was deleted (kubelet restart?): restarting the server", self.socket)
                self.stop_server()
                self.start_server()
            if self.registered_to is None or self._kubelet_restarted():
                why = self.register()
                if why and time.monotonic() - last_log >= LOG_EVERY_S:
                    log.info("not registered yet, retrying every %.0fs: %s", POLL_S, why)
                    last_log = time.monotonic()
            self.stopping.wait(POLL_S)
        self.stop_server()
        log.info("stopped; removed %s", self.socket)

    def stop(self) -> None:
        self.stopping.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_k8sai.clusters.local.realnode.deviceplugin",
        description="Fake-GPU kubelet device plugin (device-plugin API v1beta1).",
    )
    parser.add_argument("--plugin-dir", type=Path, default=DEFAULT_PLUGIN_DIR)
    parser.add_argument("--resource", default="nvidia.com/gpu")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--node", default=socket.gethostname(), help="node name, seeds the ids")
    parser.add_argument("--env-name", default="NVIDIA_VISIBLE_DEVICES")
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("--count must be 0 or more")
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        plugin = FakeGpuPlugin(args.plugin_dir, args.resource, args.count, args.node, args.env_name)
    except K8saiError as exc:  # stubs could not be made: one paragraph, no traceback
        log.error("%s", exc)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: plugin.stop())
    plugin.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
