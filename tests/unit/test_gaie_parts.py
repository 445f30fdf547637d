"""Pure parts of the inference suite: builders, flags, sizing, metrics parsing, configs."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_k8sai.gaie.extra import INSTALL

pytest.importorskip("grpc", reason=f"the EPP readiness check needs grpcio: {INSTALL}")

from pytest_k8sai.clusters.local.build import Builder, load_components
from pytest_k8sai.core.errors import NotApplicable, ProfileError
from pytest_k8sai.core.profiles import SimReplica, load_profile
from pytest_k8sai.gaie import pool
from pytest_k8sai.gaie.epp import CONFIG_NAMES, configs_path, epp_args, load_configs
from pytest_k8sai.gaie.replicas import CacheCounters, kv_blocks_for, metric_sum, sim_args

ROOT = Path(__file__).resolve().parents[2]


def test_inference_parts_are_on_demand_and_keep_old_cache_keys(tmp_path):
    comps = load_components()
    assert comps["inference-sim"].on_demand and comps["epp"].on_demand
    # The kubelet is on demand too: only the real-node tier (local.gpu_nodes: real) needs it.
    on_demand = ("inference-sim", "epp", "kubelet")
    assert not any(c.on_demand for n, c in comps.items() if n not in on_demand)
    # on_demand says when to build, not what: it must not change a component's cache key.
    sim = comps["inference-sim"]
    assert sim.key("go1.26.8") == sim.model_copy(update={"on_demand": False}).key("go1.26.8")

    seen: list[str] = []

    class Recording(Builder):
        def ensure(self, comp):  # type: ignore[override]
            seen.append(comp.name)

    Recording(root=tmp_path).ensure_all()
    assert "epp" not in seen and "inference-sim" not in seen and "kueue" in seen


def test_pool_selects_its_pods_and_each_pod_has_one_active_port():
    body = pool.inference_pool("p", [8001, 8002], "p-epp", 9002)
    assert body["apiVersion"] == "inference.networking.k8s.io/v1"
    assert body["spec"]["targetPorts"] == [{"number": 8001}, {"number": 8002}]
    pod = pool.replica_pod("p", 1, 8002, "m", "run1")
    assert pod["metadata"]["labels"][pool.POD_LABEL] == "p"
    assert body["spec"]["selector"]["matchLabels"] == {pool.POD_LABEL: "p"}
    assert pod["metadata"]["annotations"][pool.ACTIVE_PORTS] == "8002"
    assert pod["spec"]["nodeName"] == pool.INFERENCE_NODE
    node = pool.inference_node("run1")
    assert node["spec"]["podCIDR"].startswith("127.")  # replicas must be reachable on loopback
    with pytest.raises(ValueError, match="1..8"):
        pool.inference_pool("p", list(range(9)), "e", 1)


def test_sim_flags_are_offline_and_size_the_cache_only_when_asked():
    args = sim_args("Qwen/Qwen3-8B", 8000, SimReplica(), None)
    assert "--force-dummy-tokenizer" in args and "--enable-kvcache" not in args
    args = sim_args("m", 8000, SimReplica(prefill_time_per_token_ms=0.25), 1590)
    assert args[args.index("--kv-cache-size") + 1] == "1590"
    assert args[args.index("--prefill-time-per-token") + 1] == "0.25ms"


def test_kv_cache_is_a_share_of_the_working_set_but_holds_the_requests_in_flight():
    # 4 prompts of 160 tokens = 40 blocks; half of it is 20 blocks.
    assert kv_blocks_for([160] * 4, 0.5, 16, in_flight=1) == 20
    # 3 in flight need (10 + 1) blocks each, more than the share.
    assert kv_blocks_for([160] * 4, 0.5, 16, in_flight=3) == 33


def test_metric_sum_adds_label_sets_and_skips_other_metrics():
    text = (
        "# TYPE vllm:prefix_cache_hits counter\n"
        'vllm:prefix_cache_hits{model_name="a"} 10\n'
        'vllm:prefix_cache_hits{model_name="b"} 5.5\n'
        'vllm:prefix_cache_hits_extra{model_name="a"} 99\n'
        "vllm:prefix_cache_queries 40\n"
    )
    assert metric_sum(text, "vllm:prefix_cache_hits") == 15.5
    assert metric_sum(text, "vllm:prefix_cache_queries") == 40
    assert (CacheCounters(15.5, 40) - CacheCounters(5.5, 20)).hit_rate == 0.5


def test_epp_configs_of_the_repository_hold_both_configurations():
    configs = load_configs(configs_path(None))
    assert set(CONFIG_NAMES) <= set(configs)
    weights = {
        p["pluginRef"]: p.get("weight")
        for p in configs["prefix-aware"]["schedulingProfiles"][0]["plugins"]
    }
    assert weights == {
        "queue-scorer": 2,
        "kv-cache-utilization-scorer": 2,
        "prefix-cache-scorer": 3,
    }
    args = epp_args("pool", "ns", Path("/c.yaml"), 1, 2, 3)
    assert "--secure-serving=false" in args and "--metrics-endpoint-auth=false" in args


def test_epp_config_file_lacking_a_configuration_names_file_and_field(tmp_path):
    f = tmp_path / "epp.yaml"
    f.write_text("random: {kind: EndpointPickerConfig}\n")
    with pytest.raises(ProfileError, match=r"lacks \['prefix-aware'\].*gaie_suite.epp_configs"):
        load_configs(f)
    f.write_text("random: {kind: Other}\nprefix-aware: {kind: EndpointPickerConfig}\n")
    with pytest.raises(ProfileError, match="'random'.*not an EndpointPickerConfig"):
        load_configs(f)


def test_profiles_carry_gaie_thresholds_and_settings():
    local = load_profile("local")
    assert local.capabilities.inference_gateway
    assert local.gaie_suite.max_prompt_tokens and local.gaie_suite.replicas == 8
    assert local.slo.gaie_gateway_overhead_p50_ms == 2.0
    rosa = load_profile("rosa")
    assert rosa.gaie_suite.existing is not None and rosa.gaie_suite.transcripts == 32


def test_existing_path_unset_or_unreachable_skips_naming_field_or_address():
    from pytest_k8sai.clusters.local.processes import free_port
    from pytest_k8sai.core.profiles import GaieExisting
    from pytest_k8sai.gaie.existing import ExistingPaths

    dead = f"http://127.0.0.1:{free_port()}"
    paths = ExistingPaths(GaieExisting(model="m", direct_url=dead), timeout_s=1)
    with pytest.raises(NotApplicable, match=f"GET {dead}/v1/models failed"):
        paths.url("direct")
    with pytest.raises(NotApplicable, match="gaie_suite.existing.random_url"):
        paths.url("random")


def test_plots_draw_each_figure_from_the_request_samples(tmp_path):
    from pytest_k8sai.gaie import plots as gaie_plots
    from pytest_k8sai.gaie.experiments import PathRun, RoutingRun
    from pytest_k8sai.gaie.guidellm import parse_report
    from pytest_k8sai.gaie.tables import request_values
    from pytest_k8sai.report.plots import PlotLog

    levels = parse_report(Path(__file__).parent / "data" / "guidellm_report_small.json").levels
    for lv in levels:
        for metric in ("ttft_ms", "e2e_ms"):
            values = request_values(lv, metric)
            assert len(values) == getattr(lv, metric).n
            assert sum(values) / len(values) == pytest.approx(getattr(lv, metric).mean)
    log = PlotLog(tmp_path)
    paths = {name: PathRun(name, "", levels) for name in ("direct", "gateway")}
    overhead = gaie_plots.render_overhead(log, paths)
    routing = gaie_plots.render_routing(
        log, RoutingRun(kv_blocks=0, prompt_tokens=[], configs=paths)
    )
    names = [p.path.name for p in overhead + routing]
    assert names == ["gaie-overhead-ttft.png", "gaie-routing-ttft.png", "gaie-routing-e2e.png"]
    assert all(p.suite == "gaie" and p.path.stat().st_size > 0 for p in log.plots)
    points = gaie_plots.latency_points(paths, "ttft_ms", p99=False)
    assert len(points) == 2 * len(levels) and all(p.p99 is None for p in points)
    assert gaie_plots.render_overhead(log, {"direct": PathRun("direct", "", [])}) == []


@contextlib.contextmanager
def _status_server(status: Callable[[str | None], int]) -> Iterator[str]:
    """A loopback HTTP server answering every GET with ``status(Authorization header)``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(status(self.headers.get("Authorization")))
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_existing_path_refusing_requests_is_an_error_not_reachable():
    from pytest_k8sai.core.profiles import GaieExisting
    from pytest_k8sai.gaie.existing import ExistingPaths
    from pytest_k8sai.gaie.guidellm import LoadGenError

    with _status_server(lambda _auth: 401) as url:
        paths = ExistingPaths(GaieExisting(model="m", gateway_url=url), timeout_s=2)
        with pytest.raises(LoadGenError, match="answered HTTP 401"):
            paths.url("gateway")


def test_existing_routing_alternates_which_configuration_runs_first():
    from pytest_k8sai.gaie.existing import level_order

    configs = ["random", "prefix-aware"]
    assert [level_order(configs, i)[0] for i in range(3)] == ["random", "prefix-aware", "random"]


def test_guidellm_limit_grows_with_requests_and_tokens(tmp_path):
    from pytest_k8sai.core.profiles import GaieSuite
    from pytest_k8sai.gaie.guidellm import max_output_tokens

    s = GaieSuite()
    # The paper's scale at concurrency 1: 256 requests x (512 x 0.05 s + 2 s) = 7,065.6 s.
    assert s.load_timeout_s(256, [1], 512) == pytest.approx(256 * (512 * 0.05 + 2))
    assert s.load_timeout_s(8, [8], 16) == s.guidellm_timeout_s  # never below the floor
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"prompt": "a", "output_tokens_count": 16}\n{"prompt": "b", "output_tokens_count": 64}\n'
    )
    assert max_output_tokens(data) == 64


def test_existing_token_comes_from_env_or_file_and_bad_sources_name_the_field(
    tmp_path, monkeypatch
):
    from pydantic import ValidationError

    from pytest_k8sai.core.errors import ProfileError
    from pytest_k8sai.core.profiles import GaieExisting

    monkeypatch.setenv("K8SAI_TEST_ROUTE_TOKEN", " tok-env \n")
    assert GaieExisting(model="m", token_env="K8SAI_TEST_ROUTE_TOKEN").token() == "tok-env"
    (tmp_path / "t").write_text("tok-file\n")
    assert GaieExisting(model="m", token_file=tmp_path / "t").token() == "tok-file"
    assert GaieExisting(model="m").token() is None
    monkeypatch.delenv("K8SAI_TEST_ROUTE_TOKEN")
    with pytest.raises(ProfileError, match="token_env.*K8SAI_TEST_ROUTE_TOKEN.*unset or empty"):
        GaieExisting(model="m", token_env="K8SAI_TEST_ROUTE_TOKEN").token()
    with pytest.raises(ProfileError, match="token_file.*cannot read"):
        GaieExisting(model="m", token_file=tmp_path / "missing").token()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ProfileError, match="token_file.*is empty"):
        GaieExisting(model="m", token_file=tmp_path / "empty").token()
    with pytest.raises(ValidationError, match="not both"):
        GaieExisting(model="m", token_env="X", token_file=tmp_path / "t")


def test_existing_probe_sends_the_token_and_a_refused_token_is_named(tmp_path):
    from pytest_k8sai.core.profiles import GaieExisting
    from pytest_k8sai.gaie.existing import ExistingPaths
    from pytest_k8sai.gaie.guidellm import LoadGenError

    with _status_server(lambda auth: 200 if auth == "Bearer right" else 403) as url:
        right, wrong = tmp_path / "right", tmp_path / "wrong"
        right.write_text("right")
        wrong.write_text("wrong")
        good = ExistingPaths(GaieExisting(model="m", direct_url=url, token_file=right), 2)
        assert good.url("direct") == url
        bad = ExistingPaths(GaieExisting(model="m", direct_url=url, token_file=wrong), 2)
        with pytest.raises(LoadGenError, match=f"HTTP 403.*refused the token from {wrong}"):
            bad.url("direct")
        none = ExistingPaths(GaieExisting(model="m", direct_url=url), 2)
        with pytest.raises(LoadGenError, match="needs credentials.*token_env or token_file"):
            none.url("direct")


def test_suite_reads_the_route_token_once_per_session(tmp_path, monkeypatch):
    """The token file is read when the platform's paths are first made; later experiments and
    every GuideLLM run reuse it (a rotated file mid-session does not change the run's key)."""
    from types import SimpleNamespace

    from pytest_k8sai.core.profiles import load_profile
    from pytest_k8sai.gaie import suite as gaie_suite

    rosa = load_profile("rosa")
    token = tmp_path / "token"
    token.write_text("first")
    existing = rosa.gaie_suite.existing.model_copy(update={"token_file": token})
    profile = rosa.model_copy(
        update={"gaie_suite": rosa.gaie_suite.model_copy(update={"existing": existing})}
    )
    suite = gaie_suite.InferenceSuite(SimpleNamespace(profile=profile), "r", tmp_path, "ns")
    assert suite.existing() is suite.existing() and suite.existing().token == "first"
    token.write_text("second")
    sent: list[str | None] = []

    def fake_guidellm(run, out_dir, name):
        sent.append(run.api_key.get_secret_value() if run.api_key else None)
        return SimpleNamespace(wall_s=0.0, levels=[])

    monkeypatch.setattr(gaie_suite, "run_guidellm", fake_guidellm)
    monkeypatch.setattr(gaie_suite, "tokenizer_dir", lambda: tmp_path)
    monkeypatch.setattr(gaie_suite, "max_output_tokens", lambda data: 16)
    suite.load("http://127.0.0.1:1/v1", tmp_path / "d.jsonl", [1], 4, "gateway")
    assert sent == ["first"]
