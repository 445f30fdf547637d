"""The record of one scale run, written as JSON: every figure with its unit in its name, how
far the run got and why it stopped, and what cleanup could not delete."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from pytest_k8sai.scale.record import ClassFigures, RateFigures


class SubmitFigures(BaseModel):
    qps: float
    burst: int
    planned: int
    sent: int
    complete: bool  # False: the budget ended submission early
    wall_s: float
    submissions_per_s: float | None
    lag_p50_ms: float | None  # harness lag: actual send - when an ideal harness would send
    lag_p99_ms: float | None
    lag_max_ms: float | None
    cpu_busy_share: float | None  # harness CPU over submission wall time (1.0 = one core)
    workers: int = 1  # concurrent senders
    # One create call's duration (request -> response): the API server's part of any lag.
    create_p50_ms: float | None = None
    create_p99_ms: float | None = None


class AttemptFigures(BaseModel):
    """Kueue's admission attempts during the run: exact from the manager's log (cycles that
    took a Workload of the run's namespace), and from its histogram (this run's increase of
    kueue_admission_attempt_duration_seconds, interpolated within Prometheus' buckets)."""

    exact_n: int = 0
    exact_p50_ms: float | None = None
    exact_p95_ms: float | None = None
    exact_p99_ms: float | None = None
    exact_max_ms: float | None = None
    hist_n: int = 0
    hist_p50_ms: float | None = None
    hist_p95_ms: float | None = None
    hist_p99_ms: float | None = None
    # (upper bound in ms, cumulative count), +Inf last as None: this run's buckets
    hist_buckets: list[tuple[float | None, float]] = Field(default_factory=list)
    invalid: list[str] = Field(default_factory=list)  # why a source is missing or unusable


class NodeResult(BaseModel):
    requested: int
    created: int
    ready: int
    create_s: float | None
    ready_s: float | None  # first create -> all Ready
    ready_series: list[tuple[float, int]] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


class ProcResult(BaseModel):
    name: str
    pid: int
    cpu_s: float | None
    peak_rss_mib: float | None
    note: str = ""


class HarnessFigures(BaseModel):
    cpu_s: float  # this process over the whole run
    cpu_share: float | None  # over the run's wall time
    watch_events: int
    watch_lag_p99_ms: float | None  # handling time per Workload event
    watch_gaps: list[str] = Field(default_factory=list)
    finishes: int = 0  # status patches that succeeded (Finished and quota give-backs)
    patch_failures: int = 0
    patch_errors: list[str] = Field(default_factory=list)


class ScaleResult(BaseModel):
    scenario: str
    run_id: str
    provider: str
    started_utc: str
    budget_s: float
    complete: bool = False  # every planned workload admitted and finished within the budget
    stopped: str = ""  # why it ended early ("" when complete)
    phases_s: dict[str, float] = Field(default_factory=dict)  # phase -> seconds since start
    plan: dict[str, object] = Field(default_factory=dict)  # plan.Totals
    nodes: NodeResult | None = None
    submit: SubmitFigures | None = None
    classes: list[ClassFigures] = Field(default_factory=list)
    rates: RateFigures | None = None
    attempts: AttemptFigures | None = None
    # Kueue's runner's wall time: start of queue creation -> last Finished (None: not all did)
    wall_s: float | None = None
    max_pending: int | None = None
    # (seconds since submission start, pending, admitted, finished), one per second
    pending_depth: list[tuple[float, int, int, int]] = Field(default_factory=list)
    processes: list[ProcResult] = Field(default_factory=list)
    harness: HarnessFigures | None = None
    leftovers: list[str] = Field(default_factory=list)  # what cleanup could not delete
    notes: list[str] = Field(default_factory=list)

    def how_far(self) -> str:
        """One line: how far the run got."""
        c = self.plan.get("workloads", "?")
        sent = self.submit.sent if self.submit else 0
        adm = sum(k.admitted for k in self.classes)
        fin = sum(k.finished for k in self.classes)
        nodes = (
            f"{self.nodes.ready}/{self.nodes.requested} nodes Ready" if self.nodes else "no nodes"
        )
        state = "complete" if self.complete else f"stopped: {self.stopped or 'unknown'}"
        return f"{nodes}; {sent}/{c} submitted, {adm} admitted, {fin} finished ({state})"


def write(result: ScaleResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(result.model_dump_json(indent=2))
    tmp.replace(path)
    return path
