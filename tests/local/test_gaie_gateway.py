"""The local gateway in round-robin mode against a stub SSE server, and the pure parts of its
ext_proc exchange. (The EPP path runs against the real EPP in suites/gaie.)"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from google.protobuf import struct_pb2
from openai_sse_server import SseServer

from pytest_k8sai.clusters.local.processes import free_port
from pytest_k8sai.gaie.extproc import PickError, _destination, first_endpoint
from pytest_k8sai.gaie.gateway import ENDPOINT_HEADER
from pytest_k8sai.gaie.probe import StreamClient
from pytest_k8sai.gaie.routingcheck import warm_up

ROOT = Path(__file__).resolve().parents[2]


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


class _RecordingPicker(pb_grpc.ExternalProcessorServicer):
    """A stand-in for the EPP's ext_proc side: always picks ``endpoint``, echoes the request
    body, and records every response message the gateway copies to it."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.streams: list[list[pb.ProcessingRequest]] = []

    def Process(self, request_iterator, context):  # noqa: N802 - the gRPC method's name
        seen: list[pb.ProcessingRequest] = []
        self.streams.append(seen)
        for msg in request_iterator:
            seen.append(msg)
            kind = msg.WhichOneof("request")
            if kind == "request_headers":
                yield _headers_response(self.endpoint)
            elif kind == "request_body":
                streamed = pb.StreamedBodyResponse(body=msg.request_body.body, end_of_stream=True)
                mutation = pb.BodyMutation(streamed_response=streamed)
                yield pb.ProcessingResponse(
                    request_body=pb.BodyResponse(response=pb.CommonResponse(body_mutation=mutation))
                )


def test_epp_path_copies_the_whole_response_to_the_picker(two_backends):
    # Response chunks go to the EPP coalesced; it must still get every byte, in order, and
    # end_of_stream exactly once, at the end (its completion hooks run on that).
    backend = two_backends[0]
    picker = _RecordingPicker(f"127.0.0.1:{backend.port}")
    server = grpc.server(futures.ThreadPoolExecutor(4))
    pb_grpc.add_ExternalProcessorServicer_to_server(picker, server)
    epp_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    proc, url = _start_gateway(f"--epp=127.0.0.1:{epp_port}")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=5)
        body = json.dumps({"model": "stub-model", "prompt": "x", "max_tokens": 12, "stream": True})
        conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        received = resp.read()
        assert resp.status == 200 and received.rstrip().endswith(b"data: [DONE]")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            m.response_body.end_of_stream for s in picker.streams for m in s
        ):
            time.sleep(0.02)
        (stream,) = picker.streams
        kinds = [m.WhichOneof("request") for m in stream]
        assert kinds[:3] == ["request_headers", "request_body", "response_headers"]
        bodies = [m.response_body for m in stream if m.HasField("response_body")]
        assert kinds[3:] == ["response_body"] * len(bodies)
        assert [b.end_of_stream for b in bodies] == [False] * (len(bodies) - 1) + [True]
        # The copy is the upstream body, de-chunked: the same SSE events the client read.
        assert b"".join(b.body for b in bodies) == received
        assert backend.completions == 1
    finally:
        proc.terminate()
        proc.wait(10)
        server.stop(0)


def test_warm_up_sends_each_prompt_once_and_counts_serving_pods(two_backends):
    backend = two_backends[0]
    prompts = [f"prompt {i}" for i in range(7)]
    pods = warm_up(backend.url, "stub-model", prompts, concurrency=3, pace_s=0.0)
    # The stub names no Pod: every request is counted under "?".
    assert pods == Counter({"?": 7})
    assert backend.completions == 7
