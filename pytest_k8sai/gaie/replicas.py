"""llm-d-inference-sim replicas: their flags, their readiness and their prefix-cache metrics."""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

from pytest_k8sai.core import mutants
from pytest_k8sai.core.profiles import SimReplica

# The sim fetches a Hugging Face tokenizer for real model names unless told not to; the local
# tier is offline, so it always uses its built-in regex tokenizer.
OFFLINE = "--force-dummy-tokenizer"
# Counters in tokens; the sim exposes them without the usual _total suffix, vLLM with it.
HIT_METRICS = ("vllm:prefix_cache_hits", "vllm:prefix_cache_hits_total")
QUERY_METRICS = ("vllm:prefix_cache_queries", "vllm:prefix_cache_queries_total")
SUCCESS_METRIC = "vllm:request_success_total"


@dataclass(frozen=True)
class Replica:
    name: str  # the Pod's name
    ip: str  # the Pod's IP (loopback)
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{self.ip}:{self.port}"


def _ms(value: float) -> str:
    return f"{value:g}ms"


def sim_args(model: str, port: int, sim: SimReplica, kv_blocks: int | None) -> list[str]:
    """Flags of one replica; ``kv_blocks`` turns on the KV-cache simulation with that size."""
    args = [
        "--model", model,
        "--port", str(port),
        OFFLINE,
        "--latency-calculator", "per-token",
        "--prefill-overhead", _ms(sim.prefill_overhead_ms),
        "--prefill-time-per-token", _ms(sim.prefill_time_per_token_ms),
        "--inter-token-latency", _ms(sim.inter_token_latency_ms),
        "--max-num-seqs", str(sim.max_num_seqs),
        "--max-model-len", str(sim.max_model_len),
    ]  # fmt: skip
    if kv_blocks is not None:
        args += ["--enable-kvcache", "--kv-cache-size", str(kv_blocks)]
        args += ["--block-size", str(sim.block_size)]
    sim_changes = mutants.changes().sim
    return with_flags(args, sim_changes.flags) if sim_changes else args


def _flag_value(value: str | int | float | bool) -> str:
    # Go's flag parsing reads booleans as true/false; YAML gives Python's True/False.
    return str(value).lower() if isinstance(value, bool) else str(value)


def with_flags(args: list[str], flags: dict[str, str | int | float | bool | None]) -> list[str]:
    """``args`` with each flag set (``--name=value``, replacing the flag and its value where
    present, appended otherwise) or removed (value None): a mutant's ``sim`` section."""
    out = list(args)
    for raw, value in flags.items():
        name = "--" + raw.lstrip("-")
        i = 0
        while i < len(out):
            if out[i] == name:
                # The flag's value is the next word unless that is another flag (a bare bool).
                has_value = i + 1 < len(out) and not out[i + 1].startswith("--")
                del out[i : i + (2 if has_value else 1)]
            elif out[i].startswith(name + "="):
                del out[i]
            else:
                i += 1
        if value is not None:
            out.append(f"{name}={_flag_value(value)}")
    return out


def sim_env(replica: Replica) -> dict[str, str]:
    # POD_IP is required by the KV-cache simulation; POD_NAME makes the sim name itself in
    # the x-inference-pod response header, which the routing checks read.
    return {"POD_IP": replica.ip, "POD_NAME": replica.name, "POD_NAMESPACE": "default"}


def kv_blocks_for(prompt_tokens: list[int], share: float, block_size: int, in_flight: int) -> int:
    """KV blocks per replica: ``share`` of the prompts' working set, but at least room for the
    largest ``in_flight`` prompts at once (the sim refuses a request whose blocks do not fit)."""
    working = sum(math.ceil(t / block_size) for t in prompt_tokens)
    largest = sorted((math.ceil(t / block_size) + 1 for t in prompt_tokens), reverse=True)
    floor = sum(largest[:in_flight])
    return max(math.ceil(working * share), floor)


def get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def ready(replica_url: str) -> bool:
    return get(f"{replica_url}/health", 0.5)[0] == 200


def count_tokens(replica_url: str, model: str, prompts: list[str]) -> list[int]:
    """Prompt lengths as the sim itself tokenizes them (its /tokenize endpoint)."""
    out = []
    for text in prompts:
        req = urllib.request.Request(
            f"{replica_url}/tokenize",
            data=json.dumps({"model": model, "prompt": text}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
            body = json.loads(resp.read())
        out.append(int(body.get("count") or len(body["tokens"])))
    return out


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN)\s*$")


def metric_sum(text: str, name: str) -> float:
    """Sum of a metric's samples over all label sets in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m.group(1) == name:
            total += float(m.group(3))
    return total


@dataclass(frozen=True)
class CacheCounters:
    hits: float
    queries: float
    # Requests each replica completed (vllm:request_success_total), in replica order: shows
    # how evenly a configuration spread the work.
    per_replica: tuple[float, ...] = ()

    def __sub__(self, other: CacheCounters) -> CacheCounters:
        per = tuple(a - b for a, b in zip(self.per_replica, other.per_replica, strict=False))
        return CacheCounters(self.hits - other.hits, self.queries - other.queries, per)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else math.nan


def cache_counters(metrics_urls: list[str]) -> CacheCounters:
    """Prefix-cache hit and query token counters summed over the replicas, and each
    replica's completed requests."""
    hits = queries = 0.0
    per: list[float] = []
    for url in metrics_urls:
        status, body = get(url, 2.0)
        if status != 200:
            raise RuntimeError(f"GET {url} answered {status}")
        text = body.decode(errors="replace")
        hits += sum(metric_sum(text, m) for m in HIT_METRICS)
        queries += sum(metric_sum(text, m) for m in QUERY_METRICS)
        per.append(metric_sum(text, SUCCESS_METRIC))
    return CacheCounters(hits, queries, tuple(per))
