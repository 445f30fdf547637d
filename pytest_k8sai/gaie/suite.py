"""The inference experiments of the paper (sections 3.3.3 and 4.3) for one session: each run
once on first use and shared by the tests that check it; their tables for the end of the run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_k8sai.core.errors import NotApplicable
from pytest_k8sai.core.profiles import GaieSuite, Profile
from pytest_k8sai.core.progress import progress
from pytest_k8sai.core.session_runs import SessionRuns
from pytest_k8sai.gaie import plots as gaie_plots
from pytest_k8sai.gaie.epp import configs_path
from pytest_k8sai.gaie.existing import ExistingPaths, run_overhead_existing, run_routing_existing
from pytest_k8sai.gaie.experiments import OverheadRun, RoutingRun, run_overhead, run_routing
from pytest_k8sai.gaie.guidellm import GuidellmRun, LevelResult, max_output_tokens, run_guidellm
from pytest_k8sai.gaie.prompts import PromptSpec, build_requests, write_guidellm_dataset
from pytest_k8sai.gaie.tables import cache_table, gateway_probe_table, overhead_table, routing_table
from pytest_k8sai.gaie.tokenizer import tokenizer_dir
from pytest_k8sai.report.plots import PlotLog


def prompt_spec(s: GaieSuite) -> PromptSpec:
    return PromptSpec(
        transcripts=s.transcripts,
        repetitions=s.repetitions,
        max_prompt_tokens=s.max_prompt_tokens,
        output_tokens=s.output_tokens,
    )


class InferenceSuite(SessionRuns[str, Any]):
    """The session's experiment runs (one each), made on first request and kept; one that
    failed is reported once, later tests that need it fail with one line."""

    def __init__(
        self,
        cluster: Any,
        run_id: str,
        results: Path,
        namespace: str,
        plots: PlotLog | None = None,
    ) -> None:
        super().__init__()
        self.cluster = cluster
        self.profile: Profile = cluster.profile
        self.settings = self.profile.gaie_suite
        self.run_id = run_id
        self.work_dir = results / "gaie"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.namespace = namespace
        self.epp_configs = configs_path(self.settings.epp_configs)
        self.plots = plots  # drawn as each experiment ends, so its tests carry them in Allure
        self._existing: ExistingPaths | None = None  # made once: it reads the token

    @property
    def local(self) -> bool:
        return self.profile.provider == "local"

    def load(
        self, target: str, data: Path, streams: list[int], requests: int, label: str
    ) -> list[LevelResult]:
        s = self.settings
        # On an existing cluster the platform serves its own model under its own name.
        existing = s.existing if not self.local else None
        model = existing.model if existing is not None else s.model
        run = GuidellmRun(
            target=target,
            model=model,
            dataset=data,
            streams=streams,
            max_requests=requests,
            tokenizer=tokenizer_dir(),
            timeout_s=s.load_timeout_s(requests, streams, max_output_tokens(data)),
            api_key=self.existing().token if existing is not None else None,
        )
        report = run_guidellm(run, self.work_dir, name=f"guidellm-{label.replace('+', '-')}")
        progress(f"[k8sai] gaie: GuideLLM via {label} took {report.wall_s:.1f}s")
        return report.levels

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        return self.runs_of(key, 1, f"the {key} experiment", lambda number: make())[0]

    def _done(self, key: str) -> Any:
        runs = self.results.get(key)
        return runs[0] if runs else None

    def draw(self) -> None:
        if self.plots is None:
            return
        if ov := self._done("overhead"):
            gaie_plots.render_overhead(self.plots, ov.paths)
        if rt := self._done("routing"):
            gaie_plots.render_routing(self.plots, rt)

    def existing(self) -> ExistingPaths:
        """The platform's paths, made on first use; its token is read from its source once
        for the session, not per GuideLLM run."""
        if self._existing is not None:
            return self._existing
        if self.settings.existing is None:
            raise NotApplicable(
                f"profile '{self.profile.name}' has no gaie_suite.existing section naming the "
                "gateway, the InferencePool routes and the model server"
            )
        self._existing = ExistingPaths(self.settings.existing, self.profile.reach.connect_timeout_s)
        return self._existing

    def overhead(self) -> OverheadRun:
        s = self.settings

        def make() -> OverheadRun:
            if self.local:
                return run_overhead(
                    self.cluster, self.namespace, self.run_id, s, self.epp_configs, self.load,
                    self.work_dir, progress,
                )  # fmt: skip
            return run_overhead_existing(self.existing(), s, self.work_dir, self.load)

        return self._once("overhead", make)

    def routing(self) -> RoutingRun:
        s = self.settings

        def make() -> RoutingRun:
            spec = prompt_spec(s)
            data = self.work_dir / "routing-prompts.jsonl"
            write_guidellm_dataset(spec, data)
            prompts = list(dict.fromkeys(r.prompt for r in build_requests(spec)))
            if self.local:
                return run_routing(
                    self.cluster, self.namespace, self.run_id, s, self.epp_configs,
                    prompts, data, spec.requests, self.load, self.work_dir, progress,
                )  # fmt: skip
            return run_routing_existing(self.existing(), s, prompts, data, spec.requests, self.load)

        return self._once("routing", make)

    def tables(self) -> list:
        s = self.settings
        out = []
        if ov := self._done("overhead"):
            if ov.probe:
                out.append(gateway_probe_table(ov.probe))
            out.append(overhead_table(ov, s.overhead_concurrency))
        if rt := self._done("routing"):
            out.append(
                routing_table(
                    rt,
                    s.routing_concurrency,
                    "ttft_ms",
                    "Routing (paper Fig. 6): TTFT ms, random vs prefix-aware",
                )
            )
            out.append(
                routing_table(
                    rt,
                    s.routing_concurrency,
                    "e2e_ms",
                    "Routing (paper Fig. 7): end-to-end latency ms",
                )
            )
            out.append(
                routing_table(
                    rt, s.routing_concurrency, "itl_ms", "Routing: inter-token latency ms"
                )
            )
            out.append(cache_table(rt))
        return out
