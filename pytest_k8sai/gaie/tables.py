"""Paper-shaped tables of the inference suite (Fig. 5, 6 and 7 as numbers)."""

from __future__ import annotations

import math
from typing import Any

from pytest_k8sai.gaie.experiments import OVERHEAD_PATHS, ROUTING_CONFIGS, OverheadRun, RoutingRun
from pytest_k8sai.gaie.probe import Overhead
from pytest_k8sai.report.tables import Table


def _f(v: float | None, digits: int = 1) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.{digits}f}"


def _mean_ci(d: Any) -> str:
    half = (d.ci_high - d.ci_low) / 2
    return f"{_f(d.mean)} ±{_f(half)}"


def _failed(level: Any) -> str:
    return f"{level.errored}/{level.incomplete}/{level.not_sent}"


def level_of(levels: list[Any], streams: int) -> Any:
    return next(lv for lv in levels if lv.streams == streams)


def request_values(level: Any, metric: str) -> list[float]:
    """``metric`` ("ttft_ms", "itl_ms", "e2e_ms") of each successful request of a GuideLLM
    level: the samples its Distribution of the same name summarises."""
    return [
        v
        for s in level.samples
        if s.status == "successful" and (v := getattr(s, metric)) is not None
    ]


def gateway_probe_table(probe: list[Overhead]) -> Table:
    t = Table(
        "Local gateway's own added latency (time to first SSE event, concurrency 1)",
        ["path", "direct P50 ms", "path P50 ms", "added P50 ms", "added P95 ms", "n"],
    )
    for o in probe:
        t.rows.append(
            [o.path, _f(o.direct_p50_ms, 2), _f(o.path_p50_ms, 2), _f(o.added_p50_ms, 2),
             _f(o.added_p95_ms, 2), str(o.n)]
        )  # fmt: skip
    t.notes.append(
        "Interleaved sequential streamed completions (max_tokens 1), direct to the replica and "
        "via each gateway path; added = per-pair difference. Source: pytest_k8sai.gaie.probe."
    )
    return t


def overhead_table(run: OverheadRun, levels: list[int]) -> Table:
    t = Table(
        "Inference overhead (paper Fig. 5): mean TTFT ms ±95% CI per concurrency level",
        [
            "concurrency",
            *OVERHEAD_PATHS,
            "added (iii)-(i) ms",
            "n per path",
            "errored/incomplete/unsent",
        ],
    )
    for c in levels:
        lv = {p: level_of(run.paths[p].levels, c) for p in OVERHEAD_PATHS}
        added = lv["gateway+pool+epp"].ttft_ms.mean - lv["direct"].ttft_ms.mean
        t.rows.append(
            [str(c), *(_mean_ci(lv[p].ttft_ms) for p in OVERHEAD_PATHS), _f(added),
             "/".join(str(lv[p].ttft_ms.n) for p in OVERHEAD_PATHS),
             " ".join(_failed(lv[p]) for p in OVERHEAD_PATHS)]
        )  # fmt: skip
    t.notes.append(
        "(i) direct to the one replica (ClusterIP stand-in), (ii) local gateway round robin "
        "(no InferencePool), (iii) local gateway + InferencePool + EPP (prefix-aware config). "
        "TTFT from GuideLLM's report, successful requests; paper: (iii) 3..11 ms above (i)."
    )
    return t


def routing_table(run: RoutingRun, levels: list[int], metric: str, title: str) -> Table:
    t = Table(
        title,
        ["concurrency", "routing", "mean ±95% CI", "P50", "P95", "P99", "n",
         "errored/incomplete/unsent"],
    )  # fmt: skip
    for c in levels:
        for name in ROUTING_CONFIGS:
            lv = level_of(run.configs[name].levels, c)
            d = getattr(lv, metric)
            t.rows.append(
                [str(c), name, _mean_ci(d), _f(d.p50), _f(d.p95), _f(d.p99), str(d.n),
                 _failed(lv)]
            )  # fmt: skip
        r = getattr(level_of(run.configs["random"].levels, c), metric)
        p = getattr(level_of(run.configs["prefix-aware"].levels, c), metric)
        t.rows.append(
            [str(c), "random/prefix", f"{_f(r.mean / p.mean, 2)}x", f"{_f(r.p50 / p.p50, 2)}x",
             f"{_f(r.p95 / p.p95, 2)}x", f"{_f(r.p99 / p.p99, 2)}x", "", ""]
        )  # fmt: skip
    t.notes.append("milliseconds, from GuideLLM's report (successful requests)")
    return t


def cache_table(run: RoutingRun) -> Table:
    t = Table(
        "Prefix-cache hits and where the EPP sent requests (routing experiment)",
        ["routing", "concurrency", "hit rate", "hit tokens", "queried tokens",
         "requests per replica", "warm-up prompts per pod", "pods used (check)",
         "repeats on one pod (check)"],
    )  # fmt: skip
    for name in ROUTING_CONFIGS:
        cfg = run.configs[name]
        check = cfg.routing
        spread = f"{len(check.pods)} for {check.n} req" if check else "-"
        repeats = (
            f"{max(check.repeat_pods.count(p) for p in set(check.repeat_pods))}"
            f"/{len(check.repeat_pods)}"
            if check and check.repeat_pods
            else "-"
        )
        for c, cache in sorted(cfg.cache_by_level.items()):
            rate = f"{cache.hit_rate:.1%}" if cache.queries else "-"
            per = " ".join(f"{v:.0f}" for v in cache.per_replica) or "-"
            warm = cfg.warm_by_level.get(c)
            warm_s = " ".join(str(v) for _, v in warm.most_common()) if warm else "-"
            t.rows.append(
                [name, str(c), rate, _f(cache.hits, 0), _f(cache.queries, 0), per, warm_s,
                 spread, repeats]
            )  # fmt: skip
    tok = run.prompt_tokens
    t.notes.append(
        f"Hit rate = vllm:prefix_cache_hits / vllm:prefix_cache_queries (tokens) summed over the "
        f"replicas during each level's GuideLLM load (each level: fresh replicas and EPP, then "
        f"a warm-up sending each distinct prompt once through the same routing, one new request "
        f"every warmup_pace_ms; its column lists the pods it used, busiest first). "
        f"Prompts: {len(tok)} distinct, {min(tok)}-{max(tok)} tokens (sim tokenizer), working "
        f"set {sum(tok)} tokens; KV cache per replica {run.kv_blocks} blocks. Routing check: "
        f"short distinct prompts, then one long prompt repeated, before the load."
    )
    return t
