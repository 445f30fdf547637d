"""The local gateway in round-robin mode against a stub SSE server, and the pure parts of its
ext_proc exchange. (The EPP path runs against the real EPP in suites/gaie.)"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from google.protobuf import struct_pb2
from openai_sse_server import SseServer

from pytest_k8sai.clusters.local.processes import free_port
from pytest_k8sai.gaie.extproc import PickError, _destination, first_endpoint
from pytest_k8sai.gaie.gateway import ENDPOINT_HEADER
from pytest_k8sai.gaie.probe import StreamClient

ROOT = Path(__file__).resolve().parents[1]


def _start_gateway(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_k8sai.gaie.gateway", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"gateway did not start: {proc.communicate()[0][-2000:]!r}")


@pytest.fixture
def two_backends() -> Iterator[list[SseServer]]:
    with SseServer(ttft_s=0.0, itl_s=0.0) as a, SseServer(ttft_s=0.0, itl_s=0.0) as b:
        yield [a, b]


def test_round_robin_relays_sse_stream_and_keeps_connection(two_backends):
    proc, url = _start_gateway(*(f"--backend=127.0.0.1:{s.port}" for s in two_backends))
    try:
        client = StreamClient(url)
        served = []
        for _ in range(4):  # one keep-alive connection for all four
            _, headers = client.first_event_s("stub-model", "hello there", 3)
            served.append(headers[ENDPOINT_HEADER])
        client.close()
        ports = [f"127.0.0.1:{s.port}" for s in two_backends]
        assert served == [ports[0], ports[1], ports[0], ports[1]]
        assert [s.completions for s in two_backends] == [2, 2]

        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=5)
        body = json.dumps({"model": "stub-model", "prompt": "x", "max_tokens": 2, "stream": True})
        conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        events = [ln for ln in resp.read().split(b"\n") if ln.startswith(b"data:")]
        assert resp.status == 200 and events[-1].strip() == b"data: [DONE]"
    finally:
        proc.terminate()
        proc.wait(10)


def test_unreachable_backend_is_a_502_naming_it():
    dead = free_port()
    proc, url = _start_gateway(f"--backend=127.0.0.1:{dead}")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=5)
        conn.request("POST", "/v1/completions", b"{}", {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 502
        assert f"127.0.0.1:{dead}" in resp.read().decode()
    finally:
        proc.terminate()
        proc.wait(10)


def _headers_response(value: str | None, lb: str | None = None) -> pb.ProcessingResponse:
    mutation = pb.HeaderMutation()
    if value is not None:
        mutation.set_headers.append(
            base_pb2.HeaderValueOption(
                header=base_pb2.HeaderValue(
                    key="x-gateway-destination-endpoint", raw_value=value.encode()
                )
            )
        )
    resp = pb.ProcessingResponse(
        request_headers=pb.HeadersResponse(response=pb.CommonResponse(header_mutation=mutation))
    )
    if lb is not None:
        inner = struct_pb2.Struct()
        inner.fields["x-gateway-destination-endpoint"].string_value = lb
        resp.dynamic_metadata.fields["envoy.lb"].struct_value.CopyFrom(inner)
    return resp


def test_destination_from_header_mutation_then_lb_metadata():
    assert _destination(_headers_response("127.0.1.3:8003")) == "127.0.1.3:8003"
    assert _destination(_headers_response(None, lb="127.0.1.4:8004")) == "127.0.1.4:8004"
    assert _destination(_headers_response(None)) is None


def test_first_valid_endpoint_of_a_list_wins():
    assert first_endpoint("bogus, 127.0.1.2:8001,127.0.1.3:8002") == ("127.0.1.2", 8001)
    with pytest.raises(PickError, match="no valid endpoint"):
        first_endpoint("nonsense")
