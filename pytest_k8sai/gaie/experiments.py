"""The paper's two inference experiments (section 4.3) on the local tier.

Experiment 1, overhead (Fig. 5): one replica; TTFT per concurrency level through (i) the
direct path (the ClusterIP stand-in: nothing between client and replica, as kube-proxy's
iptables rules add next to nothing), (ii) the gateway without an InferencePool (round robin),
(iii) the gateway + InferencePool + EPP (prefix-aware configuration). Before the load, the
gateway's own added latency is probed request by request (pytest_k8sai.gaie.probe).

Experiment 2, routing (Fig. 6/7): N replicas with KV-cache simulation sized below the prompt
working set; the same prompts through the EPP with the random picker, then with the
prefix-aware scorers. Each configuration starts its replicas afresh (empty caches).
GuideLLM drives the load in both (``load`` below is its runner).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.core.profiles import GaieSuite
from pytest_k8sai.gaie.epp import load_configs
from pytest_k8sai.gaie.probe import Overhead, added_latency
from pytest_k8sai.gaie.replicas import CacheCounters, cache_counters, count_tokens, kv_blocks_for
from pytest_k8sai.gaie.routingcheck import RoutingSample, sample_routing, warm_up
from pytest_k8sai.gaie.stack import LocalStack
from pytest_k8sai.measure.prometheus import Histogram, histogram, scrape

Log = Callable[[str], None]
# (target base URL, dataset file, concurrency levels, requests per level, label) -> results
LoadRunner = Callable[[str, Path, list[int], int, str], list[Any]]

OVERHEAD_PATHS = ("direct", "gateway", "gateway+pool+epp")
# The EPP's own end-to-end scheduling latency per request (GAIE v1.5.0 pkg/epp/metrics:
# buckets 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100 ms): its part of Fig. 5's added TTFT.
EPP_SCHEDULING_METRIC = "inference_extension_scheduler_e2e_duration_seconds"
ROUTING_CONFIGS = ("random", "prefix-aware")
# Sent a few times before the load: long enough for the prefix scorer to match on (it hashes
# blocks of about 64 characters), and in no dataset, so it warms no cache the load uses.
AFFINITY_PROMPT = " ".join(f"affinity check sentence number {i}." for i in range(200))


@dataclass
class PathRun:
    name: str
    target: str
    levels: list[Any]  # GuideLLM results, one per concurrency level
    cache_by_level: dict[int, CacheCounters] = field(default_factory=dict)
    # Distinct prompts the warm-up put on each Pod, per level (where the caches start from).
    warm_by_level: dict[int, Counter[str]] = field(default_factory=dict)
    routing: RoutingSample | None = None

    @property
    def cache(self) -> CacheCounters | None:
        if not self.cache_by_level:
            return None
        vals = list(self.cache_by_level.values())
        return CacheCounters(sum(v.hits for v in vals), sum(v.queries for v in vals))


@dataclass
class OverheadRun:
    probe: list[Overhead]
    paths: dict[str, PathRun] = field(default_factory=dict)
    # The EPP's scheduling-latency histogram over the gateway+pool+EPP load (all levels).
    epp_scheduling: Histogram | None = None


def epp_scheduling_histogram(metrics_port: int) -> Histogram:
    text = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    try:
        return histogram(text, EPP_SCHEDULING_METRIC)
    except KeyError:  # a labelless HistogramVec appears only with its first observation
        return Histogram(EPP_SCHEDULING_METRIC, (), 0.0, 0.0)


@dataclass
class RoutingRun:
    kv_blocks: int
    prompt_tokens: list[int]
    configs: dict[str, PathRun] = field(default_factory=dict)


def short_dataset(dest: Path, rows: int, output_tokens: int) -> Path:
    """The overhead experiment's prompts: short, all different (no cache effects to speak of).
    Rows as GuideLLM's JSON dataset reads them (see pytest_k8sai.gaie.prompts)."""
    with dest.open("w") as fh:
        for i in range(rows):
            prompt = f"Request {i}: summarize in one sentence why latency matters for chat."
            fh.write(json.dumps({"prompt": prompt, "output_tokens_count": output_tokens}) + "\n")
    return dest


def run_overhead(
    cluster: ClusterHandle,
    namespace: str,
    run_id: str,
    settings: GaieSuite,
    epp_config_file: Path,
    load: LoadRunner,
    work: Path,
    log: Log,
) -> OverheadRun:
    configs = load_configs(epp_config_file)
    stack = LocalStack(cluster, namespace, run_id, settings, "gaie-overhead", 1, work, log)
    try:
        stack.create_objects()
        stack.start_replicas(kv_blocks=None, tag="overhead")
        direct = stack.replicas[0].url
        gw = stack.start_gateway("rr")
        epp_port = stack.start_epp("prefix-aware", configs["prefix-aware"])
        gw_epp = stack.start_gateway("epp", epp_port=epp_port)
        targets = {"direct": direct, "gateway": gw, "gateway+pool+epp": gw_epp}
        log(
            f"[k8sai] gaie overhead: probing the local gateway ({settings.gateway_probe_requests} "
            "sequential requests per path)"
        )
        probe = added_latency(
            direct,
            {"gateway": gw, "gateway+pool+epp": gw_epp},
            settings.model,
            settings.gateway_probe_requests,
        )
        run = OverheadRun(probe=probe)
        data = short_dataset(
            stack.dir / "overhead-prompts.jsonl",
            settings.overhead_requests,
            settings.overhead_output_tokens,
        )
        epp_metrics = stack.epp_metrics["prefix-aware"]
        for name in OVERHEAD_PATHS:
            log(f"[k8sai] gaie overhead: GuideLLM via {name} at {settings.overhead_concurrency}")
            before = epp_scheduling_histogram(epp_metrics) if name == "gateway+pool+epp" else None
            levels = load(
                targets[name], data, settings.overhead_concurrency, settings.overhead_requests, name
            )
            run.paths[name] = PathRun(name, targets[name], levels)
            if before is not None:
                run.epp_scheduling = epp_scheduling_histogram(epp_metrics).minus(before)
        return run
    finally:
        stack.close()


def run_routing(
    cluster: ClusterHandle,
    namespace: str,
    run_id: str,
    settings: GaieSuite,
    epp_config_file: Path,
    prompts: list[str],
    dataset: Path,
    requests: int,
    load: LoadRunner,
    work: Path,
    log: Log,
) -> RoutingRun:
    configs = load_configs(epp_config_file)
    stack = LocalStack(
        cluster, namespace, run_id, settings, "gaie-routing", settings.replicas, work, log
    )
    try:
        stack.create_objects()
        # Prompt sizes as the replicas count them, from a replica itself.
        stack.start_replicas(kv_blocks=None, tag="sizing")
        tokens = count_tokens(stack.replicas[0].url, settings.model, prompts)
        kv = kv_blocks_for(
            tokens,
            settings.sim.kv_cache_share_of_working_set,
            settings.sim.block_size,
            settings.sim.max_num_seqs,
        )
        run = RoutingRun(kv_blocks=kv, prompt_tokens=tokens)
        metrics = [f"{r.url}/metrics" for r in stack.replicas]
        for name in ROUTING_CONFIGS:
            path = run.configs[name] = PathRun(name, "", [])
            for c in settings.routing_concurrency:
                # Every level starts alike: fresh replicas (empty KV caches) and a fresh EPP
                # (empty prefix index), then a warm-up. GuideLLM replays the dataset from its
                # first row at each level, so one invocation for all levels would hand later
                # levels caches warmed by the earlier ones, and the first level none.
                stack.stop_processes("gateway-")
                stack.stop_processes("epp-")
                stack.start_replicas(kv_blocks=kv, tag=f"{name}-c{c}")
                epp_port = stack.start_epp(f"{name}-c{c}", configs[name])
                path.target = gw = stack.start_gateway(f"{name}-c{c}", epp_port=epp_port)
                if path.routing is None:
                    # A few requests show where the EPP sends work; they run before the load
                    # on this level's fresh stack and count in neither its results nor its hits.
                    path.routing = sample_routing(
                        gw, settings.model, 4 * settings.replicas, AFFINITY_PROMPT, 4
                    )
                    stack.start_replicas(kv_blocks=kv, tag=f"{name}-c{c}-load")
                # Steady state, as the paper's back-to-back levels had: each distinct prompt
                # once, routed by this configuration, before the measured load.
                path.warm_by_level[c] = warm_up(
                    gw, settings.model, prompts, min(c, len(prompts)), settings.warmup_pace_ms / 1e3
                )
                before = cache_counters(metrics)
                log(f"[k8sai] gaie routing: GuideLLM via EPP '{name}' at concurrency {c}")
                path.levels += load(gw, dataset, [c], requests, f"{name}-c{c}")
                path.cache_by_level[c] = cache_counters(metrics) - before
        return run
    finally:
        stack.close()
