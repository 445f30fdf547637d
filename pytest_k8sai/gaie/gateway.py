"""The local tier's stand-in for Envoy: a small asyncio reverse proxy.

Two modes:
- ``--epp HOST:PORT``: per request, the ext_proc exchange with the endpoint picker decides the
  endpoint (pytest_k8sai.gaie.extproc), as Envoy + InferencePool do;
- ``--backend HOST:PORT`` (repeatable): round robin over fixed endpoints, as Envoy routing to
  a Service does (the "gateway without InferencePool" path of the overhead experiment).

The response is relayed as it arrives (SSE events leave at once). Response headers and body
chunks are also sent to the EPP so its completion hooks run, but the client's bytes do not wait
for the EPP's echo of them (Envoy waits; see the README for what this leaves out).

Run: ``python -m pytest_k8sai.gaie.gateway --port 8080 --epp 127.0.0.1:9002``.
``GET /healthz`` answers 200 once the gateway listens (and, with an EPP, once its gRPC channel
is ready).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import sys
import uuid
from collections.abc import Iterator

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from pytest_k8sai.gaie import httpwire as hw
from pytest_k8sai.gaie.extproc import Exchange, PickError, Refusal

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
HEALTH_PATH = "/healthz"
ENDPOINT_HEADER = "x-k8sai-endpoint"  # which endpoint served a request (for routing checks)


class UpstreamPool:
    """Idle keep-alive connections per endpoint."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[Conn]] = {}

    async def get(self, ep: tuple[str, int]) -> Conn:
        idle = self._idle.get(ep, [])
        while idle:
            reader, writer = idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(*ep, limit=hw.MAX_HEAD)

    def put(self, ep: tuple[str, int], conn: Conn) -> None:
        self._idle.setdefault(ep, []).append(conn)


class Gateway:
    def __init__(self, epp: str | None, backends: list[tuple[str, int]]) -> None:
        self.backends: Iterator[tuple[str, int]] | None = (
            itertools.cycle(backends) if backends else None
        )
        self.channel = grpc.aio.insecure_channel(epp) if epp else None
        self.stub = pb_grpc.ExternalProcessorStub(self.channel) if self.channel else None
        self.pool = UpstreamPool()

    async def ready(self) -> bool:
        if self.channel is None:
            return True
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(self.channel.channel_ready(), 0.2)
            return True
        return False

    async def serve_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    req = await hw.read_request(reader)
                except hw.BadMessage as exc:
                    writer.write(
                        hw.simple_response(400, "Bad Request", str(exc).encode(), "text/plain")
                    )
                    break
                if req is None:
                    break
                if not await self.handle(req, writer):
                    break
                if not req.keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()

    async def handle(self, req: hw.Request, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; return False if the client connection must close."""
        if req.target == HEALTH_PATH:
            ok = await self.ready()
            writer.write(
                hw.simple_response(
                    200 if ok else 503, "OK" if ok else "Not Ready", b"ok", "text/plain"
                )
            )
            return True
        exchange: Exchange | None = None
        body = req.body
        try:
            if self.stub is not None:
                exchange = Exchange(self.stub)
                headers = [(":method", req.method), (":path", req.target), *req.headers]
                if req.header("x-request-id") is None:
                    headers.append(("x-request-id", str(uuid.uuid4())))
                picked = await exchange.pick(headers, req.body)
                if isinstance(picked, Refusal):
                    writer.write(
                        hw.simple_response(picked.status, "EPP", picked.body, "application/json")
                    )
                    return True
                endpoint, body = picked
            else:
                assert self.backends is not None
                endpoint = next(self.backends)
            return await self.forward(req, body, endpoint, writer, exchange)
        except (PickError, grpc.aio.AioRpcError) as exc:
            detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            msg = json.dumps({"error": f"endpoint picker: {detail}"}).encode()
            writer.write(hw.simple_response(502, "Bad Gateway", msg, "application/json"))
            return True
        finally:
            if exchange is not None:
                # Ending the EPP stream must not hold up the client's next request.
                asyncio.ensure_future(exchange.close())

    async def forward(
        self,
        req: hw.Request,
        body: bytes,
        endpoint: tuple[str, int],
        writer: asyncio.StreamWriter,
        exchange: Exchange | None,
    ) -> bool:
        host = f"{endpoint[0]}:{endpoint[1]}"
        try:
            up_reader, up_writer = await self.pool.get(endpoint)
            up_writer.write(hw.encode_request(req, host, body))
            head = await hw.read_response_head(up_reader)
        except (OSError, hw.BadMessage, asyncio.IncompleteReadError) as exc:
            msg = json.dumps({"error": f"endpoint {host}: {exc}"}).encode()
            writer.write(hw.simple_response(502, "Bad Gateway", msg, "application/json"))
            return True
        head.headers.append((ENDPOINT_HEADER, host))
        writer.write(hw.encode_head(head, keep_alive=req.keep_alive))
        if exchange is not None:
            await exchange.mirror_headers(head.status, head.headers)
        framed = head.chunked or head.length is not None
        async for raw, data in hw.relay_body(head, up_reader):
            writer.write(raw)
            await writer.drain()
            if exchange is not None:
                exchange.mirror_body(data, end=False)
        if exchange is not None:
            exchange.mirror_body(b"", end=True)
        if framed and (head.header("connection") or "").lower() != "close":
            self.pool.put(endpoint, (up_reader, up_writer))
        else:
            up_writer.close()
        return framed


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


async def serve(port: int, epp: str | None, backends: list[tuple[str, int]]) -> None:
    gw = Gateway(epp, backends)
    server = await asyncio.start_server(gw.serve_conn, "127.0.0.1", port, limit=hw.MAX_HEAD)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    mode = f"ext_proc to EPP {epp}" if epp else f"round robin over {backends}"
    print(f"gateway listening on 127.0.0.1:{port}, {mode}", flush=True)
    async with server:
        await stop.wait()
    if gw.channel is not None:
        await gw.channel.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pytest_k8sai.gaie.gateway", description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--epp", help="HOST:PORT of the endpoint picker's ext_proc gRPC server")
    group.add_argument("--backend", type=_endpoint, action="append", default=[])
    args = ap.parse_args(argv)
    asyncio.run(serve(args.port, args.epp, args.backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
