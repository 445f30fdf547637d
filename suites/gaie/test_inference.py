"""Gateway API Inference Extension with the endpoint picker (paper sections 3.3.3 and 4.3).

The EPP routes requests to the InferencePool's replicas; the local gateway adds little; the
gateway + pool + EPP path costs little TTFT over the direct one (Fig. 5); prefix-aware routing
beats random routing on TTFT (Fig. 6) and end-to-end latency (Fig. 7), per concurrency level.
Thresholds come from the profile's ``slo.gaie_*`` fields; figures from GuideLLM's reports.
"""

from __future__ import annotations

import pytest

from pytest_k8sai.gaie.extra import missing_reason

if reason := missing_reason():
    pytest.skip(reason, allow_module_level=True)

from pytest_k8sai.gaie.experiments import OVERHEAD_PATHS, ROUTING_CONFIGS
from pytest_k8sai.gaie.tables import level_of, request_values

# All of it is in the PR tier (CI), ~4-5 min on the local tier.
pytestmark = [pytest.mark.pr, pytest.mark.nightly, pytest.mark.requires("inference_gateway")]


def _levels(gaie, kind: str) -> list[int]:
    s = gaie.settings
    return s.routing_concurrency if kind == "routing" else s.overhead_concurrency


# AI conformance (advanced_inference_ingress): an InferencePool whose endpoint picker routes
# by prefix. On the local tier the gateway is this project's ext_proc gateway and the model
# servers are simulators, so the evidence is API-level only (docs/conformance.md).
@pytest.mark.aic("advanced_inference_ingress")
def test_epp_routes_requests_to_pool_replicas(gaie, slo):
    """Each configuration's EPP sends requests to the pool's replicas: the random picker
    spreads them, the prefix-aware scorers keep repeats of one prompt on one replica."""
    if not gaie.local:
        pytest.skip("routing is observed from the replicas' x-inference-pod header (local tier)")
    run = gaie.routing()
    pool_pods = {f"gaie-routing-{i}" for i in range(gaie.settings.replicas)}
    for name in ROUTING_CONFIGS:
        check = run.configs[name].routing
        assert check is not None
        strays = set(check.pods) - pool_pods
        assert not strays, f"EPP '{name}': requests served outside the pool: {strays}"
        for pod, endpoints in check.endpoints.items():
            assert len(endpoints) == 1, f"{pod} reached through several endpoints {endpoints}"
        on_one = max(check.repeat_pods.count(p) for p in set(check.repeat_pods))
        slo.info(
            f"EPP {name}: replicas used for {check.n} distinct prompts",
            len(check.pods),
            unit="pods",
            n=check.n,
            source="x-inference-pod response header of each replica",
        )
        slo.info(
            f"EPP {name}: repeats of one prompt on one replica",
            on_one,
            unit=f"of {len(check.repeat_pods)}",
            n=len(check.repeat_pods),
            source="x-inference-pod response header",
        )
    assert len(run.configs["random"].routing.pods) > 1, "random picker used a single replica"
    prefix = run.configs["prefix-aware"].routing.repeat_pods
    assert len(set(prefix)) == 1, f"prefix-aware EPP split repeats of one prompt: {prefix}"


def test_local_gateway_adds_little_latency(gaie, slo):
    if not gaie.local:
        pytest.skip("the local gateway runs on the local tier only")
    run = gaie.overhead()
    threshold = gaie.profile.slo.gaie_gateway_overhead_p50_ms
    for o in run.probe:
        slo.check(
            f"local gateway ({o.path}): added time to first event P50",
            o.added_p50_ms,
            unit="ms",
            # The round-robin path is the gateway alone; the EPP path adds the EPP's own
            # scheduling, which is what experiment 1 measures, not the instrument.
            threshold=threshold if o.path == "gateway" else None,
            op="<=",
            n=o.n,
            source=f"paired sequential requests vs direct (direct P50 {o.direct_p50_ms:.2f} ms, "
            f"added P95 {o.added_p95_ms:.2f} ms)",
            samples=o.added_ms,
            statistic="median",
        )


def _mean_checks(slo, figure: str, level, metric: str) -> None:
    """An INFO figure per configuration and level: the mean with every request's value as
    samples, so ``--baseline`` can test tonight's mean against earlier nights'."""
    d = getattr(level, metric)
    slo.info(
        figure,
        d.mean,
        unit="ms",
        n=d.n,
        source=f"GuideLLM, successful requests; {d.brief()}",
        samples=request_values(level, metric),
        statistic="mean",
    )


def _failed_share_checks(slo, gaie, kind: str, runs: dict) -> None:
    limit = gaie.profile.slo.gaie_failed_request_share_max
    for name, path_run in runs.items():
        for lv in path_run.levels:
            planned = max(lv.planned or 0, lv.total)
            slo.check(
                f"{kind} {name} c={lv.streams}: errored+incomplete+unsent share",
                lv.not_successful / planned if planned else 1.0,
                unit="",
                threshold=limit,
                op="<=",
                n=planned,
                source=f"GuideLLM report: {lv.counts()}",
            )


def test_overhead_of_gateway_and_pool_on_ttft(gaie, slo):
    """Paper Fig. 5: mean TTFT of gateway + InferencePool + EPP over the direct path, and the
    EPP's own part of it: its scheduling latency per request, from its own metrics.

    On the local tier the end-to-end difference is mostly the project's Python gateway (an
    Envoy stand-in) and the 2 shared cores, so there it is reported, not judged; the EPP's
    scheduling P99 is what the real EPP decides, judged beside it on every tier."""
    run = gaie.overhead()
    p = gaie.profile.slo
    # Locally the gateway is the project's Python stand-in for Envoy on 2 cores it shares with
    # the control plane, the sims and GuideLLM: the same code measured 2.4-10 ms on a quiet
    # machine and 15.7-21.6 ms in CI (2026-12). It flips with the machine, not with the EPP;
    # the EPP's own part is judged below from its metrics.
    instrument = (
        "local Python gateway on shared cores dominates it; the EPP's part is judged by its "
        "scheduling P99"
        if gaie.local
        else ""
    )
    for c in _levels(gaie, "overhead"):
        lv = {name: level_of(run.paths[name].levels, c) for name in OVERHEAD_PATHS}
        direct, gw, epp = (lv[name].ttft_ms for name in OVERHEAD_PATHS)
        slo.check(
            f"overhead c={c}: mean TTFT added by gateway+pool+EPP",
            epp.mean - direct.mean,
            unit="ms",
            threshold=p.gaie_epp_overhead_ttft_ms_max,
            op="<=",
            n=min(direct.n, epp.n),
            source=f"GuideLLM; direct {direct.brief()}; gateway+pool+EPP {epp.brief()}",
            key="gaie_epp_overhead_ttft_ms_max",
            model_check=instrument,
        )
        slo.info(
            f"overhead c={c}: mean TTFT added by gateway alone",
            gw.mean - direct.mean,
            unit="ms",
            n=min(direct.n, gw.n),
            source=f"GuideLLM; gateway round robin {gw.brief()}",
        )
        for name in OVERHEAD_PATHS:
            _mean_checks(slo, f"overhead c={c} {name}: mean TTFT", lv[name], "ttft_ms")
    sched = run.epp_scheduling
    if sched is not None:
        assert sched.count > 0, "the EPP recorded no scheduling during the gateway+pool+EPP load"
        slo.check(
            "overhead: EPP scheduling latency P99 (its own metric)",
            sched.quantile(0.99) * 1000,
            unit="ms",
            threshold=p.gaie_epp_scheduling_p99_ms,
            op="<=",
            n=int(sched.count),
            source="inference_extension_scheduler_e2e_duration_seconds increase over the "
            "gateway+pool+EPP load (all levels), buckets 0.1-100 ms, interpolated; mean "
            f"{sched.sum / sched.count * 1000:.3f} ms",
            key="gaie_epp_scheduling_p99_ms",
        )
    _failed_share_checks(slo, gaie, "overhead", run.paths)


@pytest.mark.aic("advanced_inference_ingress")
def test_prefix_aware_routing_beats_random(gaie, slo):
    """Paper Fig. 6/7: random over prefix-aware mean TTFT, P99 TTFT reduction, e2e."""
    run = gaie.routing()
    p = gaie.profile.slo
    # On the local tier a replica's TTFT is the sim's latency model (profile gaie_suite.sim:
    # a fixed part plus a cost per uncached prompt token, no load factor): given the hit rate
    # the EPP reached, these magnitudes follow from the project's own constants.
    fixed = (
        "model check: sim TTFT = prefill_overhead_ms + prefill_time_per_token_ms x uncached "
        "tokens (profile constants), so given the hit rate this ratio is fixed by them"
        if gaie.local
        else ""
    )
    for c in _levels(gaie, "routing"):
        rnd = level_of(run.configs["random"].levels, c)
        pfx = level_of(run.configs["prefix-aware"].levels, c)
        n = min(rnd.ttft_ms.n, pfx.ttft_ms.n)
        slo.check(
            f"routing c={c}: mean TTFT random / prefix-aware",
            rnd.ttft_ms.mean / pfx.ttft_ms.mean,
            unit="x",
            threshold=p.gaie_ttft_mean_ratio_min,
            op=">=",
            n=n,
            source=f"GuideLLM; random {rnd.ttft_ms.brief()}; prefix-aware {pfx.ttft_ms.brief()}",
            key="gaie_ttft_mean_ratio_min",
            model_check=fixed,
        )
        slo.check(
            f"routing c={c}: P99 TTFT reduction by prefix-aware",
            1 - pfx.ttft_ms.p99 / rnd.ttft_ms.p99,
            unit="",
            threshold=p.gaie_ttft_p99_reduction_min,
            op=">=",
            n=n,
            source=f"GuideLLM; P99 random {rnd.ttft_ms.p99:.1f} ms, prefix-aware "
            f"{pfx.ttft_ms.p99:.1f} ms",
            key="gaie_ttft_p99_reduction_min",
            model_check=fixed,
        )
        _routing_decision_checks(slo, gaie, run, c)
        slo.info(
            f"routing c={c}: P99 e2e latency reduction by prefix-aware",
            1 - pfx.e2e_ms.p99 / rnd.e2e_ms.p99,
            unit="",
            n=min(rnd.e2e_ms.n, pfx.e2e_ms.n),
            source=f"GuideLLM; mean e2e random {rnd.e2e_ms.mean:.0f} ms, prefix-aware "
            f"{pfx.e2e_ms.mean:.0f} ms",
        )
        for name, lv in (("random", rnd), ("prefix-aware", pfx)):
            _mean_checks(slo, f"routing c={c} {name}: mean TTFT", lv, "ttft_ms")
            _mean_checks(slo, f"routing c={c} {name}: mean e2e latency", lv, "e2e_ms")
    _failed_share_checks(slo, gaie, "routing", run.configs)


def _routing_decision_checks(slo, gaie, run, c: int) -> None:
    """What the EPP decides at one level: where prompts land, hence the replicas' prefix-cache
    hit rate (the replicas only count hits), and how evenly the pool is loaded."""
    p = gaie.profile.slo
    caches = {name: run.configs[name].cache_by_level.get(c) for name in ROUTING_CONFIGS}
    if any(cache is None for cache in caches.values()):
        slo.info(
            f"routing c={c}: prefix-cache hit rate not measured",
            float("nan"),
            unit="",
            n=0,
            source="no replica metrics (profile gaie_suite.existing.metrics_urls unset)",
        )
        return
    # Replicas that expose metrics but count no prefix-cache queries have no prefix cache
    # (e.g. KV caching switched off): nothing can hit, so the hit rate is 0, not unknown.
    rnd, pfx = caches["random"], caches["prefix-aware"]
    rnd_rate, pfx_rate = (x.hit_rate if x.queries else 0.0 for x in (rnd, pfx))
    src = "vllm:prefix_cache_hits / vllm:prefix_cache_queries (tokens), all replicas, this load"
    slo.check(
        f"routing prefix-aware c={c}: prefix-cache hit rate",
        pfx_rate,
        unit="",
        threshold=p.gaie_prefix_hit_rate_min,
        op=">=",
        n=int(pfx.queries),
        source=f"{src}; {pfx.hits:.0f} of {pfx.queries:.0f} tokens",
        key="gaie_prefix_hit_rate_min",
    )
    slo.info(
        f"routing random c={c}: prefix-cache hit rate",
        rnd_rate,
        unit="",
        n=int(rnd.queries),
        source=f"{src}; {rnd.hits:.0f} of {rnd.queries:.0f} tokens",
    )
    slo.check(
        f"routing c={c}: hit rate gain, prefix-aware - random",
        pfx_rate - rnd_rate,
        unit="",
        threshold=p.gaie_prefix_hit_rate_gain_min,
        op=">=",
        n=int(min(pfx.queries, rnd.queries)),
        source=f"{src}; random {rnd_rate:.3f}, prefix-aware {pfx_rate:.3f}",
        key="gaie_prefix_hit_rate_gain_min",
    )
    limits = {"random": p.gaie_random_spread_max, "prefix-aware": p.gaie_prefix_spread_max}
    keys = {"random": "gaie_random_spread_max", "prefix-aware": "gaie_prefix_spread_max"}
    for name, cache in caches.items():
        per = cache.per_replica
        if not per or not sum(per):
            continue
        mean = sum(per) / len(per)
        slo.check(
            f"routing {name} c={c}: requests on the busiest replica / mean",
            max(per) / mean,
            unit="x",
            threshold=limits[name],
            op="<=",
            n=int(sum(per)),
            source="vllm:request_success_total per replica during this load: "
            + " ".join(f"{v:.0f}" for v in per),
            key=keys[name],
        )
