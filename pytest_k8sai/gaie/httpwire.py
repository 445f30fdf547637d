"""The HTTP/1.1 framing the local gateway needs, on asyncio streams: read a request with a
Content-Length body, read a response head, and relay a response body chunk by chunk.

Hand-rolled because the gateway must add as little latency as it can: no framework sits
between the client's bytes and the model server's (bytes are relayed as they arrive, so SSE
events reach the client as soon as the model server writes them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

# Headers that describe one hop's connection, never forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)
MAX_HEAD = 64 * 1024
RELAY_READ = 64 * 1024


class BadMessage(Exception):
    """The peer sent something this gateway does not speak."""


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass
class ResponseHead:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.header("transfer-encoding") or "").lower()

    @property
    def length(self) -> int | None:
        v = self.header("content-length")
        return int(v) if v is not None else None


async def _read_head(reader: asyncio.StreamReader) -> list[str] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None  # the peer closed between messages: a normal end of keep-alive
        raise BadMessage("connection closed inside a message head") from None
    except asyncio.LimitOverrunError:
        raise BadMessage(f"message head longer than {MAX_HEAD} bytes") from None
    return raw.decode("latin-1").split("\r\n")[:-2]


def _headers(lines: list[str]) -> list[tuple[str, str]]:
    out = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadMessage(f"malformed header line {line!r}")
        out.append((name.strip(), value.strip()))
    return out


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on a client connection, or None when the client closed it."""
    lines = await _read_head(reader)
    if lines is None:
        return None
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError:
        raise BadMessage(f"malformed request line {lines[0]!r}") from None
    headers = _headers(lines[1:])
    req = Request(method, target, headers, b"", keep_alive=version == "HTTP/1.1")
    conn = (req.header("connection") or "").lower()
    if "close" in conn:
        req.keep_alive = False
    elif "keep-alive" in conn:
        req.keep_alive = True
    if "chunked" in (req.header("transfer-encoding") or "").lower():
        raise BadMessage("chunked request bodies are not supported (send Content-Length)")
    n = int(req.header("content-length") or 0)
    if n:
        req.body = await reader.readexactly(n)
    return req


async def read_response_head(reader: asyncio.StreamReader) -> ResponseHead:
    lines = await _read_head(reader)
    if lines is None:
        raise BadMessage("upstream closed the connection before answering")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise BadMessage(f"malformed status line {lines[0]!r}")
    return ResponseHead(int(parts[1]), parts[2] if len(parts) > 2 else "", _headers(lines[1:]))


def encode_request(req: Request, host: str, body: bytes) -> bytes:
    skip = HOP_BY_HOP | {"host", "content-length"}
    lines = [f"{req.method} {req.target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in req.headers if k.lower() not in skip]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def encode_head(head: ResponseHead, *, keep_alive: bool) -> bytes:
    """The response head for the client: upstream's framing kept, our connection's own."""
    skip = HOP_BY_HOP - {"transfer-encoding"}
    lines = [f"HTTP/1.1 {head.status} {head.reason}"]
    lines += [f"{k}: {v}" for k, v in head.headers if k.lower() not in skip]
    lines += [f"Connection: {'keep-alive' if keep_alive else 'close'}", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def simple_response(status: int, reason: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def relay_body(
    head: ResponseHead, reader: asyncio.StreamReader
) -> AsyncIterator[tuple[bytes, bytes]]:
    """Yield (raw bytes to forward, decoded payload) pieces of a response body as they arrive.

    Chunked bodies are forwarded with their framing intact (one yield per chunk, so each SSE
    event leaves at once); the last yield of a chunked body is the terminating chunk."""
    if head.chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                trailer = await reader.readuntil(b"\r\n")
                while trailer != b"\r\n":  # trailers: rare, forwarded unchanged
                    size_line += trailer
                    trailer = await reader.readuntil(b"\r\n")
                yield size_line + trailer, b""
                return
            data = await reader.readexactly(size + 2)
            yield size_line + data, data[:-2]
    elif head.length is not None:
        left = head.length
        while left:
            data = await reader.read(min(left, RELAY_READ))
            if not data:
                raise BadMessage("upstream closed the connection inside a response body")
            left -= len(data)
            yield data, data
    else:
        while data := await reader.read(RELAY_READ):
            yield data, data
