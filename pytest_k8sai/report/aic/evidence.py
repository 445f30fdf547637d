"""What a conformance check saw, beside its pass/fail: which tier the evidence rests on, and
whether the cluster showed all of a requirement, part of it, or none.

A check is a normal test marked ``@pytest.mark.aic("<id>")``; it gets the ``aic`` fixture
(an :class:`AicEvidence` bound to the test) and says:

- ``aic.tier("runtime" | "api", what)``: "runtime" when containers really ran (a real
  kubelet and container runtime, real or device-plugin devices); "api" when only API objects
  and controllers were exercised (KWOK pods have nothing behind them, emulated GPUs).
  Runtime-dependent ids backed by "api" evidence are never reported Implemented.
- ``aic.partial(why)``: the cluster shows part of the requirement (e.g. the DRA API is served
  but no driver publishes devices). The id is at best Partially Implemented.
- ``aic.note(text)``: one line of what was checked and seen, for the checklist's notes.
- ``aic.absent(why)``: the cluster lacks the capability (no Gateway API, no metrics
  endpoint). Raises; the test is skipped with ``why`` and the id is Not Implemented.
- ``aic.untestable(why)``: this tier cannot show it (no container runs on KWOK). Raises;
  the test is skipped and the id is left for attestation, never marked Not Implemented.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from pytest_k8sai.core.errors import NotApplicable

Tier = Literal["runtime", "api"]
TIERS: tuple[str, ...] = ("runtime", "api")


class Absent(NotApplicable):
    """The cluster lacks what the requirement asks for: the id is Not Implemented."""


class Untestable(NotApplicable):
    """This tier cannot show the requirement: the id is left for attestation."""


@dataclass
class CheckEvidence:
    """Everything one check (test node id) said."""

    nodeid: str
    tiers: list[tuple[Tier, str]] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    absent: str = ""
    untestable: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "nodeid": self.nodeid,
            "tiers": [{"tier": t, "what": w} for t, w in self.tiers],
            "partial": list(self.partial),
            "notes": list(self.notes),
            "absent": self.absent,
            "untestable": self.untestable,
        }


class EvidenceLog:
    """The session's evidence, by test node id (tests may run in threads of their own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.checks: dict[str, CheckEvidence] = {}

    def of(self, nodeid: str) -> CheckEvidence:
        with self._lock:
            return self.checks.setdefault(nodeid, CheckEvidence(nodeid))

    def bind(self, nodeid: str) -> AicEvidence:
        return AicEvidence(self.of(nodeid))


class AicEvidence:
    """The ``aic`` fixture: one test's evidence (see the module docstring)."""

    def __init__(self, record: CheckEvidence) -> None:
        self.record = record

    def tier(self, tier: Tier, what: str) -> None:
        if tier not in TIERS:
            raise ValueError(f"aic.tier: {tier!r} is not one of {', '.join(TIERS)}")
        self.record.tiers.append((tier, what))

    def partial(self, why: str) -> None:
        self.record.partial.append(why)

    def note(self, text: str) -> None:
        self.record.notes.append(text)

    def absent(self, why: str) -> NoReturn:
        self.record.absent = why
        raise Absent(f"Not Implemented on this cluster: {why}")

    def untestable(self, why: str) -> NoReturn:
        self.record.untestable = why
        raise Untestable(f"not checkable on this tier: {why}")
