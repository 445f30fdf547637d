"""What the Workload watch saw during a scale run, and the figures made of it.

Times are monotonic seconds taken when an event ARRIVES (or, for creation, when the create
returned), as everywhere in the project; never the API's one-second lastTransitionTime.

Definitions (per workload)
    created          the create call returned, or the first watch event if that came first.
    quota reserved   the first event with ``QuotaReserved=True``.
    admitted         an event with ``QuotaReserved=True`` and ``Admitted=True`` (and not
                     ``Evicted=True``) after a time without. Time to admission is creation ->
                     the first one, as Kueue's checker averages it per workload class.
    evictions        how often an admission ended before ``Finished``.
    finished         the first event with ``Finished=True``.
Per run
    admissions/s     every admission (re-admissions after an eviction too): peak = the most in
                     any 1 s window; sustained = their count over first -> last admission.
    pending depth    submitted, not admitted now and not finished; sampled by the runner.

:meth:`Recorder.on_event` is the only place state changes and returns what the runner must
do (finish later, give quota back now), so tests feed it plain dicts.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from pytest_k8sai.measure import stats
from pytest_k8sai.scale.workloads import needs_unreserve

Obj = dict[str, Any]


@dataclass
class WorkloadRecord:
    name: str
    class_name: str
    runtime_s: float
    created: float | None = None
    quota_reserved: float | None = None
    first_admitted: float | None = None
    admitted_since: float | None = None  # start of the admission in force, None otherwise
    admissions: int = 0  # also the epoch a finish task belongs to
    evictions: int = 0
    finished: float | None = None

    @property
    def to_admission_s(self) -> float | None:
        if self.created is None or self.first_admitted is None:
            return None
        return max(0.0, self.first_admitted - self.created)

    @property
    def to_quota_s(self) -> float | None:
        if self.created is None or self.quota_reserved is None:
            return None
        return max(0.0, self.quota_reserved - self.created)


@dataclass(frozen=True)
class Action:
    """``finish``: set Finished at ``due`` if admission ``epoch`` still holds; ``unreserve``:
    give an evicted Workload's quota back now (``obj`` is the Workload as last seen)."""

    kind: Literal["finish", "unreserve"]
    name: str
    due: float
    epoch: int = 0
    generation: int = 1
    obj: Obj | None = None


def _conds(obj: Obj) -> dict[str, str]:
    return {
        c.get("type", ""): c.get("status", "")
        for c in (obj.get("status") or {}).get("conditions") or []
    }


@dataclass(frozen=True)
class DepthSample:
    t: float
    pending: int
    admitted: int
    finished: int


class Recorder:
    def __init__(self, runtimes: Mapping[str, tuple[str, float]]) -> None:
        """``runtimes``: workload name -> (class name, run time in s), from the plan."""
        self._lock = threading.Lock()
        self._recs = {n: WorkloadRecord(n, c, r) for n, (c, r) in runtimes.items()}
        self._admit_times: list[float] = []
        self._submitted = 0
        self._admitted_now = 0
        self._finished = 0
        self.foreign = 0  # events for Workloads not in the plan (not ours): ignored
        self.depth: list[DepthSample] = []

    def on_submitted(self, name: str, t: float) -> None:
        with self._lock:
            rec = self._recs[name]
            self._submitted += 1
            if rec.created is None or t < rec.created:
                rec.created = t

    def on_event(self, event_type: str, obj: Obj, t: float) -> list[Action]:
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        with self._lock:
            rec = self._recs.get(name)
            if rec is None:
                self.foreign += 1
                return []
            if event_type == "DELETED":
                return []  # cleanup; says nothing about admission
            if rec.created is None:
                rec.created = t
            c = _conds(obj)
            out: list[Action] = []
            if c.get("QuotaReserved") == "True" and rec.quota_reserved is None:
                rec.quota_reserved = t
            finished = c.get("Finished") == "True"
            admitted = (
                c.get("QuotaReserved") == "True"
                and c.get("Admitted") == "True"
                and c.get("Evicted") != "True"
                and not finished
            )
            if admitted and rec.admitted_since is None and rec.finished is None:
                rec.admitted_since = t
                rec.admissions += 1
                self._admitted_now += 1
                self._admit_times.append(t)
                if rec.first_admitted is None:
                    rec.first_admitted = t
                gen = int(meta.get("generation") or 1)
                out.append(Action("finish", name, t + rec.runtime_s, rec.admissions, gen))
            elif not admitted and rec.admitted_since is not None:
                rec.admitted_since = None
                self._admitted_now -= 1
                if not finished:
                    rec.evictions += 1
            if finished and rec.finished is None:
                rec.finished = t
                self._finished += 1
            if needs_unreserve(obj):
                out.append(Action("unreserve", name, t, rec.admissions, obj=obj))
            return out

    def still_admitted(self, name: str, epoch: int) -> bool:
        """Whether the admission a finish task was made for is the one in force."""
        with self._lock:
            rec = self._recs.get(name)
            return rec is not None and rec.admitted_since is not None and rec.admissions == epoch

    def sample_depth(self, t: float) -> DepthSample:
        with self._lock:
            s = DepthSample(
                t,
                self._submitted - self._admitted_now - self._finished,
                self._admitted_now,
                self._finished,
            )
            self.depth.append(s)
            return s

    @property
    def submitted(self) -> int:
        with self._lock:
            return self._submitted

    @property
    def finished(self) -> int:
        with self._lock:
            return self._finished

    def records(self) -> list[WorkloadRecord]:
        with self._lock:
            return [WorkloadRecord(**r.__dict__) for r in self._recs.values()]

    def admission_times(self) -> list[float]:
        with self._lock:
            return list(self._admit_times)


# -- figures ---------------------------------------------------------------------------------


class ClassFigures(BaseModel):
    class_name: str
    planned: int
    submitted: int
    admitted: int
    finished: int
    evictions: int
    # creation -> first admission, ms, over the admitted workloads of the class
    avg_to_admission_ms: float | None
    p50_to_admission_ms: float | None
    p99_to_admission_ms: float | None
    max_to_admission_ms: float | None
    avg_to_quota_reserved_ms: float | None


class RateFigures(BaseModel):
    admissions: int
    peak_per_s: int  # most admissions in any 1 s window
    sustained_per_s: float | None  # admissions over first -> last admission


def _ms(values: list[float], q: float | None) -> float | None:
    if not values:
        return None
    v = stats.mean(values) if q is None else stats.percentile(values, q)
    return round(v * 1000, 1)


def class_figures(recs: Iterable[WorkloadRecord]) -> list[ClassFigures]:
    by: dict[str, list[WorkloadRecord]] = {}
    for r in recs:
        by.setdefault(r.class_name, []).append(r)
    out = []
    for cls in sorted(by):
        rs = by[cls]
        adm = [r.to_admission_s for r in rs if r.to_admission_s is not None]
        quota = [r.to_quota_s for r in rs if r.to_quota_s is not None]
        out.append(
            ClassFigures(
                class_name=cls,
                planned=len(rs),
                submitted=sum(r.created is not None for r in rs),
                admitted=len(adm),
                finished=sum(r.finished is not None for r in rs),
                evictions=sum(r.evictions for r in rs),
                avg_to_admission_ms=_ms(adm, None),
                p50_to_admission_ms=_ms(adm, 50),
                p99_to_admission_ms=_ms(adm, 99),
                max_to_admission_ms=_ms(adm, 100),
                avg_to_quota_reserved_ms=_ms(quota, None),
            )
        )
    return out


def peak_in_window(times: list[float], window_s: float = 1.0) -> int:
    """The most ``times`` within any half-open window of ``window_s`` (``times`` any order)."""
    ts = sorted(times)
    peak, lo = 0, 0
    for hi, t in enumerate(ts):
        while ts[lo] <= t - window_s:
            lo += 1
        peak = max(peak, hi - lo + 1)
    return peak


def rate_figures(admit_times: list[float]) -> RateFigures:
    n = len(admit_times)
    span = max(admit_times) - min(admit_times) if n >= 2 else 0.0
    return RateFigures(
        admissions=n,
        peak_per_s=peak_in_window(admit_times),
        sustained_per_s=round(n / span, 2) if span > 0 else None,
    )


def wall_time_s(recs: Iterable[WorkloadRecord], origin: float) -> float | None:
    """``origin`` (the start of submission) -> the last finish, as Kueue's runner measures
    its wall time; None unless every workload finished."""
    ends = [r.finished for r in recs]
    if not ends or any(e is None for e in ends):
        return None
    return max(0.0, max(e for e in ends if e is not None) - origin)


def finite_or_none(x: float) -> float | None:
    return x if isinstance(x, int | float) and math.isfinite(x) else None
