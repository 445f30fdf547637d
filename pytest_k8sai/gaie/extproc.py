"""The gateway's side of Envoy's ext_proc exchange with the endpoint picker (EPP), as Envoy
runs it for the Gateway API Inference Extension (request and response bodies in
FULL_DUPLEX_STREAMED mode, headers SEND).

Per request, one bidirectional ``Process`` stream: the gateway sends the request headers, then
the body with end_of_stream; the EPP answers, once it has scheduled the request, with a
headers response whose mutation sets ``x-gateway-destination-endpoint`` ("ip:port", a comma
list of which the first valid entry wins) and then the (possibly rewritten) body as
``streamed_response`` chunks. Errors come back as an ImmediateResponse (503: no endpoint,
429: shed). The response headers and body chunks go to the EPP too, so its completion hooks
(queue accounting, prefix-cache bookkeeping) run as they do behind Envoy.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

DESTINATION_HEADER = "x-gateway-destination-endpoint"
LB_NAMESPACE = "envoy.lb"


class PickError(Exception):
    """The EPP answered with an error, or not as the protocol says."""


@dataclass
class Refusal:
    """An ImmediateResponse: the EPP answers the client itself (no endpoint, shed, bad body)."""

    status: int
    body: bytes


def _header_map(headers: list[tuple[str, str]]) -> base_pb2.HeaderMap:
    return base_pb2.HeaderMap(
        headers=[base_pb2.HeaderValue(key=k.lower(), raw_value=v.encode()) for k, v in headers]
    )


def _destination(resp: pb.ProcessingResponse) -> str | None:
    for opt in resp.request_headers.response.header_mutation.set_headers:
        if opt.header.key.lower() == DESTINATION_HEADER:
            return (opt.header.raw_value or opt.header.value.encode()).decode()
    lb = resp.dynamic_metadata.fields.get(LB_NAMESPACE)
    if lb is not None and DESTINATION_HEADER in lb.struct_value.fields:
        return lb.struct_value.fields[DESTINATION_HEADER].string_value
    return None


def first_endpoint(value: str) -> tuple[str, int]:
    """The first valid "ip:port" of a destination list."""
    for entry in value.split(","):
        host, sep, port = entry.strip().rpartition(":")
        if sep and host and port.isdigit():
            return host, int(port)
    raise PickError(f"EPP named no valid endpoint: {DESTINATION_HEADER}={value!r}")


class Exchange:
    """One request's ext_proc stream: ``pick`` before forwarding, ``mirror_*`` while
    relaying the response, ``close`` at the end."""

    def __init__(self, stub: pb_grpc.ExternalProcessorStub) -> None:
        self._call = stub.Process()
        self._drain: asyncio.Task[None] | None = None
        # Response bytes not yet copied to the EPP, and the task copying them.
        self._out = bytearray()
        self._end = False
        self._copier: asyncio.Task[None] | None = None

    async def pick(
        self, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[tuple[str, int], bytes] | Refusal:
        """Send the request; return (endpoint, body to forward) or the EPP's refusal."""
        call = self._call
        # A request without a body (GET /v1/models, /health) ends with its headers; the EPP
        # then picks a random endpoint at once and sends no body responses.
        bodiless = not body
        await call.write(
            pb.ProcessingRequest(
                request_headers=pb.HttpHeaders(headers=_header_map(headers), end_of_stream=bodiless)
            )
        )
        if not bodiless:
            await call.write(
                pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=True))
            )
        first = await call.read()
        if first is grpc.aio.EOF:
            raise PickError("EPP closed the stream without answering")
        if first.HasField("immediate_response"):
            ir = first.immediate_response
            return Refusal(
                int(ir.status.code) or 500,
                ir.body.encode() if isinstance(ir.body, str) else ir.body,
            )
        if not first.HasField("request_headers"):
            raise PickError(f"EPP answered {first.WhichOneof('response')} before request_headers")
        dest = _destination(first)
        if dest is None:
            raise PickError(f"EPP's headers response sets no {DESTINATION_HEADER}")
        forwarded = bytearray()
        while not bodiless:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                raise PickError("EPP closed the stream inside the request body")
            if not msg.HasField("request_body"):
                raise PickError(f"EPP answered {msg.WhichOneof('response')} inside the body")
            mut = msg.request_body.response.body_mutation
            if mut.HasField("streamed_response"):
                forwarded += mut.streamed_response.body
                if mut.streamed_response.end_of_stream:
                    break
            else:  # a whole-body mutation (not used in streamed mode, accepted anyway)
                forwarded += mut.body
                break
        # From here on the EPP only echoes; its answers are read and dropped in the background.
        self._drain = asyncio.ensure_future(self._drain_replies())
        return first_endpoint(dest), bytes(forwarded)

    async def _drain_replies(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            while await self._call.read() is not grpc.aio.EOF:
                pass

    async def mirror_headers(self, status: int, headers: list[tuple[str, str]]) -> None:
        hs = [(":status", str(status)), *headers]
        await self._call.write(
            pb.ProcessingRequest(response_headers=pb.HttpHeaders(headers=_header_map(hs)))
        )

    def mirror_body(self, data: bytes, end: bool) -> None:
        """Copy a response chunk to the EPP without holding up the client. Chunks that arrive
        while the previous copy is being written go together in one message: the EPP reads
        the same bytes and end_of_stream, for a fraction of the gRPC writes (Envoy, in C++,
        sends one per chunk; in Python each write costs the event loop every request shares)."""
        self._out += data
        self._end = self._end or end
        if self._copier is None or self._copier.done():
            self._copier = asyncio.ensure_future(self._copy_out())

    async def _copy_out(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            while self._out or self._end:
                data, end = bytes(self._out), self._end
                self._out.clear()
                await self._call.write(
                    pb.ProcessingRequest(response_body=pb.HttpBody(body=data, end_of_stream=end))
                )
                if end:
                    self._end = False
                    return

    async def close(self) -> None:
        if self._copier is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._copier
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await self._call.done_writing()
        if self._drain is not None:
            try:
                await asyncio.wait_for(self._drain, 5.0)
            except (TimeoutError, asyncio.CancelledError):
                self._call.cancel()
        else:
            self._call.cancel()
