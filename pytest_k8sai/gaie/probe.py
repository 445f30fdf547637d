"""The local gateway's own added latency: time to the first SSE event of a streamed
completion, direct to a replica and through the gateway, one request at a time.

The paths are interleaved request by request (direct, gateway, direct, gateway ...) so that
drift in the machine's load hits both alike; the added latency is the per-pair difference, and
its P50 is what the suite checks. This is a probe of the measuring instrument (the gateway),
not an experiment: the experiments' figures come from GuideLLM.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pytest_k8sai.measure.stats import percentile


class ProbeError(Exception):
    pass


class StreamClient:
    """One keep-alive connection; ``first_event_s`` times one streamed completion."""

    def __init__(self, base_url: str) -> None:
        u = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=30)
        self.url = base_url

    def first_event_s(
        self, model: str, prompt: str, max_tokens: int
    ) -> tuple[float, dict[str, str]]:
        body = json.dumps(
            {"model": model, "prompt": prompt, "max_tokens": max_tokens, "stream": True}
        )
        started = time.perf_counter()
        self.conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        if resp.status != 200:
            raise ProbeError(
                f"POST {self.url}/v1/completions -> {resp.status}: {resp.read()[:300]!r}"
            )
        first = None
        while line := resp.readline():
            if first is None and line.startswith(b"data:"):
                first = time.perf_counter() - started
        if first is None:
            raise ProbeError(f"POST {self.url}/v1/completions streamed no event")
        return first, {k.lower(): v for k, v in resp.getheaders()}

    def close(self) -> None:
        self.conn.close()


@dataclass
class Overhead:
    path: str
    n: int
    direct_p50_ms: float
    path_p50_ms: float
    added_p50_ms: float  # P50 of per-pair differences
    added_p95_ms: float
    added_ms: list[float] = field(default_factory=list, repr=False)  # per-pair differences


def added_latency(
    direct_url: str,
    paths: dict[str, str],
    model: str,
    requests: int,
    warmup: int = 10,
    prompt: str = "Say hello.",
) -> list[Overhead]:
    """For each named path, the time-to-first-event it adds over ``direct_url``."""
    clients = {"direct": StreamClient(direct_url)} | {n: StreamClient(u) for n, u in paths.items()}
    samples: dict[str, list[float]] = {n: [] for n in clients}
    try:
        for i in range(warmup + requests):
            for name, c in clients.items():
                t, _ = c.first_event_s(model, prompt, 1)
                if i >= warmup:
                    samples[name].append(t * 1000)
    finally:
        for c in clients.values():
            c.close()
    direct = samples["direct"]
    out = []
    for name in paths:
        diffs = [p - d for p, d in zip(samples[name], direct, strict=True)]
        out.append(
            Overhead(
                path=name,
                n=len(diffs),
                direct_p50_ms=percentile(direct, 50),
                path_p50_ms=percentile(samples[name], 50),
                added_p50_ms=percentile(diffs, 50),
                added_p95_ms=percentile(diffs, 95),
                added_ms=diffs,
            )
        )
    return out
