"""The fake-GPU device plugin against a fake kubelet Registration server on a unix socket."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import pytest

pytest.importorskip(
    "grpc_tools",
    reason="the device plugin generates its stubs with grpcio-tools: "
    "pip install 'pytest-k8sai[nodes]'",
)

import grpc  # noqa: E402

from pytest_k8sai.clusters.local.realnode import deviceplugin as dp  # noqa: E402
from pytest_k8sai.clusters.local.realnode import deviceplugin_protos as protos_mod  # noqa: E402
from pytest_k8sai.core.errors import BuildError  # noqa: E402

RESOURCE = "nvidia.com/gpu"
SOCKET = "k8sai-nvidia-com-gpu.sock"
ENV = "NVIDIA_VISIBLE_DEVICES"
MAX_UNIX_PATH = 107


@pytest.fixture(scope="module")
def protos():
    try:
        return protos_mod.load_protos()
    except BuildError as exc:  # no Go, or the module cannot be downloaded
        pytest.skip(str(exc))


@pytest.fixture
def plugin_dir(tmp_path):
    if len(str(tmp_path / SOCKET)) < MAX_UNIX_PATH:
        yield tmp_path
        return
    short = tempfile.mkdtemp(prefix="k8sai-dp-", dir="/tmp")
    yield Path(short)
    shutil.rmtree(short, ignore_errors=True)


class FakeKubelet:
    """The kubelet's Registration service: records requests; like the real one it refuses a
    registration whose endpoint socket does not exist."""

    def __init__(self, protos, plugin_dir: Path) -> None:
        self.pb2, pb2_grpc = protos
        self.plugin_dir = plugin_dir
        self.requests: queue.Queue = queue.Queue()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb2_grpc.add_RegistrationServicer_to_server(self, self.server)
        self.server.add_insecure_port(f"unix://{plugin_dir / 'kubelet.sock'}")
        self.server.start()

    def Register(self, request, context):
        if not (self.plugin_dir / request.endpoint).exists():
            context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot dial {request.endpoint}")
        self.requests.put(request)
        return self.pb2.Empty()

    def next_request(self, timeout: float = 10.0):
        return self.requests.get(timeout=timeout)

    def stop(self) -> None:
        self.server.stop(grace=0).wait()


@pytest.fixture
def kubelet(protos, plugin_dir):
    fake = FakeKubelet(protos, plugin_dir)
    yield fake
    fake.stop()


class Running:
    """A plugin running in a thread of this process."""

    def __init__(self, plugin_dir: Path, node: str = "node-a", count: int = 4) -> None:
        self.plugin = dp.FakeGpuPlugin(plugin_dir, RESOURCE, count, node, ENV)
        self.thread = threading.Thread(target=self.plugin.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.plugin.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def start_plugin(protos, plugin_dir):
    started: list[Running] = []

    def start(**kwargs) -> Running:
        started.append(Running(plugin_dir, **kwargs))
        return started[-1]

    yield start
    for running in started:
        running.plugin.stop()
    for running in started:
        running.thread.join(timeout=10)


@pytest.fixture
def stub(protos, plugin_dir):
    channel = grpc.insecure_channel(f"unix://{plugin_dir / SOCKET}")
    yield protos[1].DevicePluginStub(channel)
    channel.close()


def first_devices(protos, plugin_dir: Path) -> list:
    with grpc.insecure_channel(f"unix://{plugin_dir / SOCKET}") as channel:
        stream = protos[1].DevicePluginStub(channel).ListAndWatch(protos[0].Empty(), timeout=10)
        devices = list(next(stream).devices)
        stream.cancel()
    return devices


def test_registers_with_the_kubelet(kubelet, start_plugin):
    start_plugin()
    req = kubelet.next_request()
    assert req.version == "v1beta1"
    assert req.endpoint == SOCKET  # relative to the plugin dir
    assert req.resource_name == RESOURCE
    assert req.options.get_preferred_allocation_available
    assert not req.options.pre_start_required


def test_waits_for_a_kubelet_that_starts_later(protos, plugin_dir, start_plugin):
    start_plugin()
    time.sleep(1.5)  # a few failed attempts: no kubelet.sock yet
    fake = FakeKubelet(protos, plugin_dir)
    try:
        assert fake.next_request(timeout=5).resource_name == RESOURCE
    finally:
        fake.stop()


def test_list_and_watch_sends_healthy_stable_devices_and_stays_open(
    protos, plugin_dir, kubelet, start_plugin, stub
):
    running = start_plugin()
    kubelet.next_request()
    stream = stub.ListAndWatch(protos[0].Empty())
    devices = list(next(stream).devices)
    ids = [d.ID for d in devices]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert all(d.health == "Healthy" for d in devices)
    assert all(re.fullmatch(r"GPU-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", i) for i in ids)
    time.sleep(1.5)
    assert stream.is_active()  # the kubelet reads the end of the stream as "plugin gone"
    stream.cancel()

    # Another instance for the same node (a restart) advertises the very same ids.
    running.stop()
    start_plugin()
    kubelet.next_request()
    assert [d.ID for d in first_devices(protos, plugin_dir)] == ids
    assert dp.device_ids("node-b", 4) != ids


def test_allocate_sets_the_env_var_to_exactly_the_given_ids(protos, kubelet, start_plugin, stub):
    running = start_plugin()
    kubelet.next_request()
    pb2 = protos[0]
    ids = running.plugin.ids
    req = pb2.AllocateRequest(
        container_requests=[
            pb2.ContainerAllocateRequest(devices_ids=[ids[1], ids[3]]),
            pb2.ContainerAllocateRequest(devices_ids=[ids[0]]),
        ]
    )
    first, second = stub.Allocate(req, timeout=5).container_responses
    assert dict(first.envs) == {ENV: f"{ids[1]},{ids[3]}"}
    assert dict(second.envs) == {ENV: ids[0]}
    assert not first.mounts and not first.devices

    bad = pb2.AllocateRequest(container_requests=[pb2.ContainerAllocateRequest(devices_ids=["x"])])
    with pytest.raises(grpc.RpcError) as err:
        stub.Allocate(bad, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_options_preferred_allocation_and_pre_start(protos, kubelet, start_plugin, stub):
    running = start_plugin()
    kubelet.next_request()
    pb2 = protos[0]
    ids = running.plugin.ids
    opts = stub.GetDevicePluginOptions(pb2.Empty(), timeout=5)
    assert opts.get_preferred_allocation_available and not opts.pre_start_required

    req = pb2.PreferredAllocationRequest(
        container_requests=[
            pb2.ContainerPreferredAllocationRequest(
                available_deviceIDs=ids, must_include_deviceIDs=[ids[2]], allocation_size=2
            ),
            pb2.ContainerPreferredAllocationRequest(available_deviceIDs=ids, allocation_size=3),
        ]
    )
    one, two = stub.GetPreferredAllocation(req, timeout=5).container_responses
    assert len(one.deviceIDs) == 2 and ids[2] in one.deviceIDs
    assert set(one.deviceIDs) <= set(ids) and len(set(one.deviceIDs)) == 2
    assert len(two.deviceIDs) == 3 and set(two.deviceIDs) <= set(ids)

    pre = pb2.PreStartContainerRequest(devices_ids=ids[:1])
    assert stub.PreStartContainer(pre, timeout=5) == pb2.PreStartContainerResponse()


def test_preferred_keeps_must_include_and_size():
    assert dp.preferred(["a", "b", "c", "d"], ["c"], 2) == ["c", "a"]
    assert dp.preferred(["a", "b"], [], 0) == []
    assert dp.preferred(["a", "b"], ["b", "a"], 2) == ["b", "a"]


def test_re_registers_after_its_socket_is_deleted(protos, plugin_dir, kubelet, start_plugin):
    start_plugin()
    kubelet.next_request()
    (plugin_dir / SOCKET).unlink()  # what a restarting kubelet does to the whole dir
    assert kubelet.next_request(timeout=5).endpoint == SOCKET
    assert len(first_devices(protos, plugin_dir)) == 4  # served on the new socket


def test_subprocess_registers_and_exits_0_on_sigterm(plugin_dir, kubelet):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_k8sai.clusters.local.realnode.deviceplugin",
            "--plugin-dir",
            str(plugin_dir),
            "--count",
            "2",
            "--node",
            "node-s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert kubelet.next_request(timeout=30).resource_name == RESOURCE
        assert (plugin_dir / SOCKET).exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate()[0]
    assert not (plugin_dir / SOCKET).exists()
    assert re.search(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO registered nvidia.com/gpu", out, re.M
    )
    assert ",".join(dp.device_ids("node-s", 2)) in out


# --- the stubs: generation and one-paragraph errors -----------------------------------------
def test_generates_both_stub_modules_into_a_fresh_dir(protos, tmp_path):
    proto = protos_mod.proto_file("v0.36.3")
    dest = tmp_path / "v1beta1-x"
    protos_mod.generate(proto, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["api_pb2.py", "api_pb2_grpc.py"]
    assert "import api_pb2 as" in (dest / "api_pb2_grpc.py").read_text()
    # No temporary dir is left behind, only the lock file.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generate.lock", "v1beta1-x"]


def test_missing_grpc_tools_names_the_nodes_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "grpc_tools", None)  # makes `import grpc_tools` fail
    with pytest.raises(BuildError, match=r"grpcio-tools is not installed.*\[nodes\]"):
        protos_mod.generate(tmp_path / "api.proto", tmp_path / "out")


def test_missing_go_is_one_paragraph(monkeypatch):
    monkeypatch.setattr(protos_mod.shutil, "which", lambda _name: None)
    with pytest.raises(BuildError, match="no 'go' command is on PATH"):
        protos_mod.proto_file("v0.36.3")


def test_a_failed_download_names_the_module(protos, monkeypatch):
    monkeypatch.setenv("GOPROXY", "off")  # offline: only the module cache answers
    with pytest.raises(BuildError, match=r"could not download k8s\.io/kubelet@v0\.0\.1"):
        protos_mod.proto_file("v0.0.1")
