"""The inference experiments on an existing cluster: the platform runs the gateway, the
InferencePools and their EPPs; the profile names where each path answers
(``gaie_suite.existing``) and the suite only sends load to them."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from pytest_k8sai.core.errors import NotApplicable
from pytest_k8sai.core.profiles import GaieExisting, GaieSuite
from pytest_k8sai.gaie.experiments import (
    OVERHEAD_PATHS,
    ROUTING_CONFIGS,
    LoadRunner,
    OverheadRun,
    PathRun,
    RoutingRun,
    short_dataset,
)
from pytest_k8sai.gaie.guidellm import LoadGenError
from pytest_k8sai.gaie.replicas import cache_counters
from pytest_k8sai.report import redact

FIELDS = {
    "direct": "direct_url",
    "gateway": "gateway_url",
    "gateway+pool+epp": "prefix_aware_url",
    "random": "random_url",
    "prefix-aware": "prefix_aware_url",
}


class ExistingPaths:
    def __init__(self, spec: GaieExisting, timeout_s: float) -> None:
        self.spec = spec
        self.timeout_s = timeout_s
        self.token = spec.token()  # read once: a bad source fails before any load is sent
        redact.remember(self.token)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _credentials_hint(self, field: str) -> str:
        if self.token:
            source = self.spec.token_env or str(self.spec.token_file)
            return (
                f"It refused the token from {source} (gaie_suite.existing."
                f"{'token_env' if self.spec.token_env else 'token_file'}): check that it is "
                "current and allowed on this route."
            )
        return (
            "The route needs credentials: put its token in an environment variable or a file "
            "and name it in gaie_suite.existing.token_env or token_file, or point "
            f"gaie_suite.existing.{field} at a route that serves without them."
        )

    def url(self, path: str) -> str:
        """The base URL of a path; skips the test, naming the field or the address tried, when
        it is unset or does not answer."""
        field = FIELDS[path]
        url = getattr(self.spec, field)
        if not url:
            raise NotApplicable(
                f"profile field 'gaie_suite.existing.{field}' is unset (path '{path}')"
            )
        probe = f"{url.rstrip('/')}/v1/models"
        try:
            request = urllib.request.Request(probe, headers=self.headers())  # noqa: S310
            with urllib.request.urlopen(request, timeout=self.timeout_s):  # noqa: S310
                pass
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                # It answered, but every request of the run would be refused the same way.
                raise LoadGenError(
                    f"'{path}' path refuses requests: GET {probe} answered HTTP {exc.code} "
                    f"{exc.reason}. {self._credentials_hint(field)}"
                ) from None
            # Any other answer (e.g. 404 on a server without /v1/models): reachable.
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NotApplicable(
                f"'{path}' path unreachable: GET {probe} failed ({reason})"
            ) from None
        return url.rstrip("/")


def run_overhead_existing(
    paths: ExistingPaths, s: GaieSuite, work: Path, load: LoadRunner
) -> OverheadRun:
    urls = {p: paths.url(p) for p in OVERHEAD_PATHS}
    data = short_dataset(work / "overhead-prompts.jsonl", s.overhead_requests,
                         s.overhead_output_tokens)  # fmt: skip
    run = OverheadRun(probe=[])  # the local gateway's probe has no meaning here
    for name, url in urls.items():
        levels = load(url, data, s.overhead_concurrency, s.overhead_requests, name)
        run.paths[name] = PathRun(name, url, levels)
    return run


def run_routing_existing(
    paths: ExistingPaths,
    s: GaieSuite,
    prompts: list[str],
    dataset: Path,
    requests: int,
    load: LoadRunner,
) -> RoutingRun:
    urls = {c: paths.url(c) for c in ROUTING_CONFIGS}
    metrics = paths.spec.metrics_urls
    run = RoutingRun(kv_blocks=0, prompt_tokens=[len(p.split()) for p in prompts])
    for name, url in urls.items():
        run.configs[name] = PathRun(name, url, [])
    # The platform's model servers cannot be restarted from here, so whichever configuration
    # runs first leaves the caches warm for the other: the order alternates per level
    # (random first at the first level, prefix-aware first at the second, ...).
    for i, c in enumerate(s.routing_concurrency):
        for name in level_order(list(urls), i):
            path = run.configs[name]
            before = cache_counters(metrics) if metrics else None
            path.levels += load(path.target, dataset, [c], requests, f"{name}-c{c}")
            if before is not None:
                path.cache_by_level[c] = cache_counters(metrics) - before
    return run


def level_order(configs: list[str], level: int) -> list[str]:
    """The routing configurations in the order level ``level`` (0-based) runs them."""
    return configs if level % 2 == 0 else configs[::-1]
