"""A tiny OpenAI-compatible streaming server on 127.0.0.1, for driving GuideLLM in tests.

Answers ``GET /health``, ``GET /v1/models`` and streaming ``POST /v1/completions`` and
``/v1/chat/completions`` (server-sent events over chunked HTTP/1.1, keep-alive): waits ``ttft_s``,
sends the first token, then one token every ``itl_s``, then a usage chunk and ``[DONE]``.
``fail_every=N`` answers every N-th completion request with HTTP 500, so that a run has errored
requests. It runs its own event loop in a daemon thread; use it as a context manager.

Also runnable alone (``python tests/openai_sse_server.py --port 18080``) for poking at GuideLLM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from types import TracebackType

from pytest_k8sai.gaie.prompts import count_tokens

MODEL = "stub-model"


class SseServer:
    def __init__(
        self,
        ttft_s: float = 0.02,
        itl_s: float = 0.002,
        fail_every: int = 0,
        token: str | None = None,
    ) -> None:
        self.ttft_s, self.itl_s, self.fail_every = ttft_s, itl_s, fail_every
        self.token = token  # when set, every request without "Bearer <token>" gets a 401
        self.refused = 0  # requests answered 401
        self.completions = 0  # completion requests seen, failed ones included
        self.models: set[str] = set()  # the "model" fields of the completion requests
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sse-server")
        self._server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SseServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test SSE server did not start within 10 s")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType
    ) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", self.port)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            self._loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if self.token and headers.get("authorization") != f"Bearer {self.token}":
                    self.refused += 1
                    await _send_json(writer, 401, {"error": {"message": "missing token"}})
                    continue
                await self._handle(method, path.split("?")[0], body, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _handle(self, method: str, path: str, body: bytes, w: asyncio.StreamWriter) -> None:
        if method == "GET" and path == "/health":
            return await _send_json(w, 200, {"status": "ok"})
        if method == "GET" and path == "/v1/models":
            return await _send_json(
                w, 200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]}
            )
        if method != "POST" or path not in ("/v1/completions", "/v1/chat/completions"):
            return await _send_json(w, 404, {"error": {"message": f"no route {method} {path}"}})
        self.completions += 1
        if self.fail_every and self.completions % self.fail_every == 0:
            return await _send_json(w, 500, {"error": {"message": "injected failure"}})
        req = json.loads(body)
        self.models.add(req.get("model"))
        chat = path.endswith("chat/completions")
        n = int(req.get("max_completion_tokens") or req.get("max_tokens") or 16)
        usage = {"prompt_tokens": count_tokens(_prompt_text(req, chat)), "completion_tokens": n}
        usage["total_tokens"] = usage["prompt_tokens"] + n
        w.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n"
        )
        await asyncio.sleep(self.ttft_s)
        started = time.monotonic()
        for i in range(n):
            if i:
                # Pace against the first token's time so that sleep overshoot does not add up.
                await asyncio.sleep(max(0.0, started + i * self.itl_s - time.monotonic()))
            delta = {"content": "tok "} if chat else None
            choice = {"index": 0, "delta": delta} if chat else {"index": 0, "text": "tok "}
            await _send_event(w, {"id": "x", "model": MODEL, "choices": [choice]})
        await _send_event(w, {"id": "x", "model": MODEL, "choices": [], "usage": usage})
        await _send_chunk(w, b"data: [DONE]\n\n")
        await _send_chunk(w, b"")


def _prompt_text(req: dict, chat: bool) -> str:
    if not chat:
        prompt = req.get("prompt", "")
        return prompt if isinstance(prompt, str) else " ".join(prompt)
    parts: list[str] = []
    for message in req.get("messages", []):
        content = message.get("content", "")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "\n".join(parts)


async def _send_json(w: asyncio.StreamWriter, status: int, obj: dict) -> None:
    data = json.dumps(obj).encode()
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}[
        status
    ]
    w.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(data)}\r\n\r\n".encode()
        + data
    )
    await w.drain()


async def _send_chunk(w: asyncio.StreamWriter, data: bytes) -> None:
    w.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await w.drain()


async def _send_event(w: asyncio.StreamWriter, obj: dict) -> None:
    await _send_chunk(w, b"data: " + json.dumps(obj).encode() + b"\n\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--ttft-ms", type=float, default=20)
    parser.add_argument("--itl-ms", type=float, default=2)
    parser.add_argument("--fail-every", type=int, default=0)
    args = parser.parse_args()
    server = SseServer(args.ttft_ms / 1000, args.itl_ms / 1000, args.fail_every)
    server.port = args.port
    with server:
        print(f"serving on {server.url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
