"""Drive GuideLLM (0.8.x) as a subprocess and read its report JSON into per-level results.

GuideLLM is the load generator of the inference suite: :func:`run_guidellm` runs
``guidellm run`` with the ``concurrent`` profile (one benchmark per stream count) against an
OpenAI-compatible streaming endpoint, under a timeout, offline (``HF_HUB_OFFLINE=1``), with
``GUIDELLM__MAX_WORKER_PROCESSES`` worker processes (2 by default: on a 2-core machine more
workers add client-side latency, see the project notes). :func:`parse_report` reads the JSON
report: nothing is re-measured, GuideLLM's per-request figures are the samples.

Per concurrency level, :class:`LevelResult` holds the counts GuideLLM reports (successful,
errored, incomplete: a verdict must show the last two, never drop them), the measured
concurrency, throughput, and TTFT / ITL / end-to-end latency as :class:`Distribution` s computed
here from the successful requests' samples with :mod:`pytest_k8sai.measure.stats` (linear
percentiles, Student-t 95 % interval of the mean), plus every request as a
:class:`RequestSample` for the results file. GuideLLM reports request latency in seconds; it is
converted to milliseconds here. GuideLLM's own mean is kept beside ours as a cross-check.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.yamlfiles import invalid_fields
from pytest_k8sai.gaie.tokenizer import tokenizer_dir
from pytest_k8sai.measure import stats

REPORT_SCHEMA_VERSION = 2  # metadata.version of GuideLLM 0.8.x reports
LOG_TAIL_LINES = 15
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*:")
Status = Literal["successful", "errored", "incomplete"]
STATUSES: tuple[Status, ...] = ("successful", "errored", "incomplete")


class LoadGenError(K8saiError):
    """GuideLLM is missing, failed, timed out, or left no readable report."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- what to run ---------------------------------------------------------------------------


class GuidellmRun(_Strict):
    """One ``guidellm run`` invocation: one benchmark per entry of ``streams``."""

    target: str = Field(pattern=r"^https?://", description="base URL, e.g. http://127.0.0.1:8080")
    request_format: Literal["/v1/completions", "/v1/chat/completions"] = "/v1/completions"
    model: str | None = Field(None, description="default: the first model /v1/models lists")
    dataset: Path = Field(description="GuideLLM JSONL dataset (prompt, output_tokens_count)")
    streams: list[int] = Field(min_length=1, description="concurrency levels, one benchmark each")
    max_requests: int | None = Field(
        None,
        ge=1,
        description="per level; default: until the "
        "dataset runs out (GuideLLM restarts it at row 0 per level)",
    )
    max_seconds: float | None = Field(None, gt=0, description="per level")
    tokenizer: Path | None = Field(
        None, description="offline tokenizer directory; default: the project's (tokenizer_dir())"
    )
    timeout_s: float = Field(600.0, gt=0, description="the whole invocation, wall clock")
    worker_processes: int = Field(2, ge=1, le=64)
    validate_backend: bool = True  # GET /health and /v1/models before the first benchmark
    api_key: SecretStr | None = Field(
        None, exclude=True, description="bearer token sent with every request (see run_guidellm)"
    )

    @field_validator("streams")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(s < 1 for s in v):
            raise ValueError(f"every stream count must be >= 1, got {v}")
        return v


def max_output_tokens(dataset: Path) -> int:
    """The largest ``output_tokens_count`` of a GuideLLM JSONL dataset (what a request may
    take longest to generate); 0 for a dataset without the column."""
    top = 0
    with dataset.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                top = max(top, int(json.loads(line).get("output_tokens_count") or 0))
    return top


def guidellm_executable() -> list[str]:
    """How to start GuideLLM: this interpreter's module if installed, else ``guidellm`` on PATH."""
    if importlib.util.find_spec("guidellm") is not None:
        return [sys.executable, "-m", "guidellm"]
    if path := shutil.which("guidellm"):
        return [path]
    raise LoadGenError(
        "GuideLLM is not installed: neither this Python interpreter "
        f"({sys.executable}) can import 'guidellm' nor is a 'guidellm' program on PATH. "
        "Install the project's dependencies (pip install -e ., which brings guidellm==0.8.1)."
    )


def guidellm_command(run: GuidellmRun, report: Path) -> list[str]:
    backend = f"kind=openai_http,target={run.target},request_format={run.request_format}"
    if run.model:
        backend += f",model={run.model}"
    if not run.validate_backend:
        backend += ",validate_backend=false"
    streams = ",".join(str(s) for s in run.streams)
    cmd = [
        "run",
        "--backend", backend,
        "--profile", f"kind=concurrent,streams={run.streams[0]}",
        "--override", "profile.streams", streams,
        "--data", f"kind=json_file,path={run.dataset}",
        "--output", f"kind=json,path={report}",
        "--disable-progress",
    ]  # fmt: skip
    if run.max_requests is not None:
        cmd += ["--constraint", f"kind=max_requests,count={run.max_requests}"]
    if run.max_seconds is not None:
        cmd += ["--constraint", f"kind=max_duration,seconds={run.max_seconds:g}"]
    if run.tokenizer is not None:
        cmd += ["--tokenizer", f"kind=huggingface_auto,model={run.tokenizer}"]
    return cmd


def guidellm_env(run: GuidellmRun, hf_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        # Never reach a model hub: the dataset is a local file, the tokenizer a local directory.
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        # The datasets library caches each parsed JSONL (about 11 MB at paper size): keep that
        # in a directory of this invocation, removed afterwards, not in a cache that only grows.
        HF_HOME=str(hf_home),
        GUIDELLM__MAX_WORKER_PROCESSES=str(run.worker_processes),
        PYTHONUNBUFFERED="1",
    )
    return env


def run_guidellm(run: GuidellmRun, out_dir: Path, name: str = "guidellm") -> GuidellmReport:
    """Run GuideLLM, then parse its report. Writes ``NAME.json`` and ``NAME.log`` in out_dir."""
    if not run.dataset.is_file():
        raise LoadGenError(f"GuideLLM dataset {run.dataset} does not exist.")
    out_dir.mkdir(parents=True, exist_ok=True)
    report, log = out_dir / f"{name}.json", out_dir / f"{name}.log"
    report.unlink(missing_ok=True)
    if run.tokenizer is None:
        # Always hand GuideLLM a local tokenizer: left alone it would take the served model's
        # name (e.g. Qwen/Qwen3-8B) as a hub id.
        run = run.model_copy(update={"tokenizer": tokenizer_dir()})
    started = time.monotonic()
    with log.open("w") as log_file, tempfile.TemporaryDirectory(prefix="guidellm-hf-") as hf:
        cmd = guidellm_executable() + guidellm_command(run, report)
        if run.api_key is not None:
            cmd += ["--scenario", str(write_key_scenario(run, Path(hf)))]
        # Own session: GuideLLM starts worker processes, and a timeout must stop them all.
        proc = subprocess.Popen(
            cmd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=guidellm_env(run, Path(hf)),
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=run.timeout_s)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            raise LoadGenError(
                f"GuideLLM did not finish within {run.timeout_s:g} s (GuidellmRun.timeout_s) and "
                f"was stopped. Command: {_shell(cmd)}. Last lines of {log}:\n{_tail(log)}"
            ) from None
        except BaseException:
            _stop_group(proc)  # Ctrl-C or a failing test: leave no load generator behind
            raise
    wall = time.monotonic() - started
    if code != 0:
        cause = _last_exception(log)
        raise LoadGenError(
            f"GuideLLM exited with code {code} after {wall:.1f} s against {run.target}"
            f"{': ' + cause if cause else ''}. Command: {_shell(cmd)}. Last lines of {log}:\n"
            f"{_tail(log)}"
        )
    return parse_report(report).model_copy(update={"command": cmd, "wall_s": wall})


def write_key_scenario(run: GuidellmRun, private_dir: Path) -> Path:
    """A GuideLLM scenario file holding only the backend's API key, in a directory of this
    invocation (removed afterwards), readable by its owner only.

    GuideLLM 0.8 takes the key as a backend argument, and on its command line it would show in
    ``ps`` and in the command the results keep. A scenario file is merged under the command
    line's ``--backend`` (kind, target, model), so only the key comes from here; GuideLLM's
    report masks it ("**********")."""
    assert run.api_key is not None
    path = private_dir / "backend-key.json"
    scenario = {"spec": {"backend": {"kind": "openai_http", "target": run.target,
                                     "api_key": run.api_key.get_secret_value()}}}  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(scenario, fh)
    return path


def _stop_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    # Whatever of the group is still there (the leader, or a worker that outlived it) goes now.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _shell(cmd: Sequence[str]) -> str:
    return shlex.join(cmd)


def _last_exception(log: Path) -> str | None:
    """The last 'SomeError: message' line of a Python traceback in the log, if any, with the
    first one of the chain beside it: GuideLLM wraps the cause (e.g. httpx's "401
    Unauthorized") in a generic "Backend validation request failed"."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    found = [line.strip().rstrip(".") for line in lines if _EXCEPTION_LINE.match(line)]
    if not found:
        return None
    return found[-1] if found[0] == found[-1] else f"{found[-1]} (caused by {found[0]})"


def _tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


# --- what GuideLLM wrote (the subset this module reads) ------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _GlTimings(_Loose):
    request_start: float | None = None
    request_end: float | None = None


class _GlInfo(_Loose):
    error: str | None = None
    timings: _GlTimings = Field(default_factory=_GlTimings)


class _GlRequest(_Loose):
    request_start_time: float | None = None
    request_end_time: float | None = None
    time_to_first_token_ms: float | None = None
    inter_token_latency_ms: float | None = None
    request_latency: float | None = None  # seconds
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    info: _GlInfo = Field(default_factory=_GlInfo)


class _GlRequests(_Loose):
    successful: list[_GlRequest] | None = None
    errored: list[_GlRequest] | None = None
    incomplete: list[_GlRequest] | None = None


class _GlStat(_Loose):
    mean: float | None = None
    count: int | None = None


class _GlByStatus(_Loose):
    successful: _GlStat = Field(default_factory=_GlStat)


class _GlTotals(_Loose):
    successful: int
    errored: int
    incomplete: int
    total: int


class _GlMetrics(_Loose):
    request_totals: _GlTotals
    request_concurrency: _GlByStatus = Field(default_factory=_GlByStatus)
    requests_per_second: _GlByStatus = Field(default_factory=_GlByStatus)
    output_tokens_per_second: _GlByStatus = Field(default_factory=_GlByStatus)
    time_to_first_token_ms: _GlByStatus = Field(default_factory=_GlByStatus)
    inter_token_latency_ms: _GlByStatus = Field(default_factory=_GlByStatus)
    request_latency: _GlByStatus = Field(default_factory=_GlByStatus)


class _GlStrategy(_Loose):
    type_: str
    streams: int | None = None
    max_concurrency: int | None = None
    worker_count: int | None = None


class _GlConfig(_Loose):
    strategy: _GlStrategy
    backend: dict = Field(default_factory=dict)
    constraints: dict = Field(default_factory=dict)

    def max_requests(self) -> int | None:
        """The level's planned request count (its max_requests constraint), if it had one."""
        c = self.constraints.get("max_requests")
        if not isinstance(c, dict):
            return None
        count = c.get("args", {}).get("count")
        if isinstance(count, list):  # one entry per level, this level's at current_index
            index = c.get("current_index", 0)
            count = count[index] if isinstance(index, int) and 0 <= index < len(count) else None
        return count if isinstance(count, int) else None


class _GlSchedulerState(_Loose):
    end_queuing_constraints: dict = Field(default_factory=dict)
    end_processing_constraints: dict = Field(default_factory=dict)


class _GlBenchmark(_Loose):
    config: _GlConfig
    metrics: _GlMetrics
    requests: _GlRequests
    scheduler_state: _GlSchedulerState = Field(default_factory=_GlSchedulerState)
    duration: float | None = None


class _GlMetadata(_Loose):
    version: int
    guidellm_version: str | None = None


class _GlReport(_Loose):
    metadata: _GlMetadata
    benchmarks: list[_GlBenchmark]


# --- what this module returns ------------------------------------------------------------


class Distribution(_Strict):
    """One latency metric of one level, in ms, over the successful requests that have it."""

    n: int
    mean: float
    ci_low: float  # Student-t interval of the mean; NaN with fewer than two samples
    ci_high: float
    confidence: float
    p50: float
    p90: float
    p95: float
    p99: float
    std: float
    min: float
    max: float
    guidellm_mean: float | None  # GuideLLM's own mean, as a cross-check

    @classmethod
    def of(
        cls, values: Sequence[float], guidellm_mean: float | None, confidence: float
    ) -> Distribution:
        ci = stats.mean_ci(values, confidence)
        return cls(
            n=ci.n,
            mean=ci.mean,
            ci_low=ci.low,
            ci_high=ci.high,
            confidence=confidence,
            p50=stats.percentile(values, 50),
            p90=stats.percentile(values, 90),
            p95=stats.percentile(values, 95),
            p99=stats.percentile(values, 99),
            std=stats.std(values),
            min=min(values) if values else math.nan,
            max=max(values) if values else math.nan,
            guidellm_mean=guidellm_mean,
        )

    @property
    def ci_half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    def brief(self) -> str:
        """e.g. 'mean 101.7 ms (95 % CI 100.9-102.5), P50 101.5, P95 103.0, P99 104.1, n=60'."""
        return (
            f"mean {self.mean:.1f} ms ({self.confidence:.0%} CI {self.ci_low:.1f}-"
            f"{self.ci_high:.1f}), P50 {self.p50:.1f}, P95 {self.p95:.1f}, P99 {self.p99:.1f}, "
            f"n={self.n}"
        )


class RequestSample(_Strict):
    """One request as GuideLLM recorded it (times are epoch seconds, latencies ms)."""

    status: Status
    start_s: float | None
    end_s: float | None
    ttft_ms: float | None
    itl_ms: float | None
    e2e_ms: float | None
    prompt_tokens: int | None
    output_tokens: int | None
    error: str | None


class LevelResult(_Strict):
    """One benchmark of the run: one concurrency level."""

    strategy: str  # "concurrent" for the runs this module starts
    streams: int | None
    measured_concurrency: float | None  # mean concurrency of the successful requests
    successful: int
    errored: int
    incomplete: int
    total: int
    # max_requests of the level, when set: more than total when time ran out first or the
    # dataset was exhausted (GuideLLM counts unsent requests nowhere).
    planned: int | None
    duration_s: float | None
    requests_per_second: float | None
    output_tokens_per_second: float | None
    # The constraint that ended the level (GuideLLM's end_processing_constraints):
    # "max_requests" when all planned requests ran, "max_duration" when time ran out first
    # (then requests still queued are not counted at all, and those in flight are incomplete).
    stopped_by: list[str]
    ttft_ms: Distribution
    itl_ms: Distribution
    e2e_ms: Distribution
    samples: list[RequestSample]
    # False when GuideLLM kept only a sample of the requests (its --metrics sample_size);
    # the distributions then cover the kept ones only.
    samples_complete: bool

    @property
    def not_sent(self) -> int:
        return max(0, self.planned - self.total) if self.planned is not None else 0

    @property
    def not_successful(self) -> int:
        """Errored, incomplete and never sent (of the planned ones)."""
        return self.errored + self.incomplete + self.not_sent

    def counts(self) -> str:
        """e.g. '62 ok, 2 errored, 0 incomplete of 64' (', 3 of 67 planned never sent')."""
        text = (
            f"{self.successful} ok, {self.errored} errored, {self.incomplete} incomplete of "
            f"{self.total}"
        )
        if self.not_sent:
            text += f", {self.not_sent} of {self.planned} planned never sent"
        return text

    def first_errors(self, limit: int = 3) -> list[str]:
        return [s.error for s in self.samples if s.error][:limit]


class GuidellmReport(_Strict):
    guidellm_version: str | None
    target: str | None
    request_format: str | None
    report_path: Path
    levels: list[LevelResult]
    command: list[str] | None = None  # set by run_guidellm
    wall_s: float | None = None  # the whole invocation, start-up included

    def level(self, streams: int) -> LevelResult:
        for lv in self.levels:
            if lv.streams == streams:
                return lv
        have = [lv.streams for lv in self.levels]
        raise LoadGenError(f"GuideLLM report {self.report_path} has no level {streams}: {have}.")


def parse_report(path: Path, confidence: float = 0.95) -> GuidellmReport:
    """Read a GuideLLM JSON report; errors name the file and the field at fault."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise LoadGenError(
            f"GuideLLM wrote no report at {path}: it exited without writing one (see its log "
            "beside it, if it ran)."
        ) from None
    except OSError as exc:
        raise LoadGenError(f"Cannot read GuideLLM report {path}: {exc.strerror}.") from None
    except json.JSONDecodeError as exc:
        raise LoadGenError(
            f"GuideLLM report {path} is not valid JSON (line {exc.lineno}: {exc.msg}); it may "
            "have been cut short."
        ) from None
    try:
        report = _GlReport.model_validate(raw)
    except ValidationError as exc:
        raise LoadGenError(
            f"GuideLLM report {path} lacks what this parser reads: {invalid_fields(exc)}."
        ) from None
    if report.metadata.version != REPORT_SCHEMA_VERSION:
        raise LoadGenError(
            f"GuideLLM report {path} has schema version {report.metadata.version} (GuideLLM "
            f"{report.metadata.guidellm_version}); this parser reads version "
            f"{REPORT_SCHEMA_VERSION} (GuideLLM 0.8.x)."
        )
    if not report.benchmarks:
        raise LoadGenError(f"GuideLLM report {path} holds no benchmarks.")
    backend = report.benchmarks[0].config.backend
    return GuidellmReport(
        guidellm_version=report.metadata.guidellm_version,
        target=backend.get("target"),
        request_format=backend.get("request_format"),
        report_path=path,
        levels=[_level(b, confidence) for b in report.benchmarks],
    )


def _level(b: _GlBenchmark, confidence: float) -> LevelResult:
    m = b.metrics
    samples = [
        _sample(status, r) for status in STATUSES for r in (getattr(b.requests, status) or [])
    ]
    ok = [s for s in samples if s.status == "successful"]

    def dist(field: str, reported: _GlByStatus, scale: float = 1.0) -> Distribution:
        values = [getattr(s, field) for s in ok if getattr(s, field) is not None]
        mean = reported.successful.mean
        return Distribution.of(values, None if mean is None else mean * scale, confidence)

    kept = {st: sum(1 for s in samples if s.status == st) for st in STATUSES}
    totals = m.request_totals
    return LevelResult(
        strategy=b.config.strategy.type_,
        streams=b.config.strategy.streams,
        measured_concurrency=m.request_concurrency.successful.mean,
        successful=totals.successful,
        errored=totals.errored,
        incomplete=totals.incomplete,
        total=totals.total,
        planned=b.config.max_requests(),
        duration_s=b.duration,
        requests_per_second=m.requests_per_second.successful.mean,
        output_tokens_per_second=m.output_tokens_per_second.successful.mean,
        stopped_by=sorted(
            b.scheduler_state.end_processing_constraints
            or b.scheduler_state.end_queuing_constraints
        ),
        ttft_ms=dist("ttft_ms", m.time_to_first_token_ms),
        itl_ms=dist("itl_ms", m.inter_token_latency_ms),
        e2e_ms=dist("e2e_ms", m.request_latency, scale=1000.0),
        samples=samples,
        samples_complete=(kept["successful"], kept["errored"], kept["incomplete"])
        == (totals.successful, totals.errored, totals.incomplete),
    )


def _sample(status: Status, r: _GlRequest) -> RequestSample:
    error = r.info.error
    if error:
        # First line only; GuideLLM's errors are reprs whose newlines come escaped.
        error = error.strip().splitlines()[0].split("\\n")[0][:300]
    start, end = r.request_start_time, r.request_end_time
    return RequestSample(
        status=status,
        start_s=start if start is not None else r.info.timings.request_start,
        end_s=end if end is not None else r.info.timings.request_end,
        ttft_ms=r.time_to_first_token_ms,
        itl_ms=r.inter_token_latency_ms,
        e2e_ms=None if r.request_latency is None else r.request_latency * 1000.0,
        prompt_tokens=r.prompt_tokens,
        output_tokens=r.output_tokens,
        error=error,
    )
