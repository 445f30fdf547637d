"""Find and delete what test runs left on a cluster: every object carrying the suites' labels.

A run labels what it creates ``k8sai.io/created-by=pytest-k8sai`` and ``k8sai.io/run-id=<run>``
and deletes it itself; this finds what a crash, a kill -9 or a failed delete left behind. Objects
the local tier makes for itself (its GPU nodes, the DAS stand-ins) carry no run id and are
never touched. Every listable, deletable resource type the API server serves is searched (so a
new kind a suite creates is found without changing this file), cluster-scoped ones and
namespaced ones outside the runs' own namespaces; a run's namespace is deleted whole.

Order: namespaced objects first, then namespaces (which takes their Jobs, Workloads and
LocalQueues along), then cluster-scoped objects (ClusterQueues before the ResourceFlavors and
Cohorts they hold in use).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client

from pytest_k8sai.clusters.apireader import Reader, ReadError
from pytest_k8sai.clusters.base import CREATED_BY_LABEL, CREATED_BY_VALUE, RUN_ID_LABEL
from pytest_k8sai.core.errors import K8saiError

# Resources never searched: events and leases age out by themselves, and reviews are verbs.
SKIPPED = {"events", "leases", "tokenreviews", "bindings", "componentstatuses"}
# Cluster-scoped kinds deleted first among the cluster-scoped (others hold them in use).
FIRST = ("clusterqueues",)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SweepError(K8saiError):
    """The sweep's input cannot be used; the message names the flag."""


def parse_age(text: str) -> timedelta:
    """``--older-than``: 90s, 30m, 12h, 2d."""
    m = _DURATION.match(text.strip())
    if not m:
        raise SweepError(
            f"--older-than {text!r}: give a number and a unit s, m, h or d (e.g. 30m, 12h, 2d)."
        )
    return timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool

    @property
    def api_path(self) -> str:
        return f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"

    @property
    def kind_name(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass
class Leftover:
    resource: Resource
    name: str
    namespace: str
    run_id: str
    created: datetime | None
    terminating: bool = False  # already being deleted (a namespace emptying itself)

    def age(self, now: datetime) -> str:
        if self.created is None:
            return "?"
        s = int((now - self.created).total_seconds())
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if s >= size:
                return f"{s // size}{unit}"
        return f"{s}s"

    @property
    def path(self) -> str:
        ns = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{self.resource.api_path}{ns}/{self.resource.plural}/{self.name}"

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource.kind_name} {where}{self.name}" + (
            " (terminating)" if self.terminating else ""
        )


def resources(reader: Reader) -> list[Resource]:
    """Every served resource type that can be listed and deleted (preferred versions)."""
    out = []
    groups: list[tuple[str, str]] = [("", "v1")]
    for g in reader.get("/apis").get("groups") or []:
        pref = (g.get("preferredVersion") or {}).get("version")
        if pref:
            groups.append((g["name"], pref))
    for group, version in groups:
        path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
        try:
            doc = reader.get(path)
        except ReadError:
            continue  # an aggregated API that is down: nothing of ours lives there
        for r in doc.get("resources") or []:
            verbs = set(r.get("verbs") or [])
            if "/" in r["name"] or r["name"] in SKIPPED or not {"list", "delete"} <= verbs:
                continue
            out.append(Resource(group, version, r["name"], bool(r.get("namespaced"))))
    return out


def selector(run_id: str | None) -> str:
    # Only run objects: they carry a run id; the local tier's own objects do not.
    return f"{CREATED_BY_LABEL}={CREATED_BY_VALUE}," + (
        f"{RUN_ID_LABEL}={run_id}" if run_id else RUN_ID_LABEL
    )


def _created(meta: dict[str, Any]) -> datetime | None:
    ts = meta.get("creationTimestamp")
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None
    except ValueError:
        return None


def find(
    reader: Reader,
    run_id: str | None = None,
    older_than: timedelta | None = None,
    now: datetime | None = None,
) -> tuple[list[Leftover], list[str]]:
    """The leftovers, in deletion order, and the resource types that could not be listed."""
    now = now or datetime.now(UTC)
    sel = selector(run_id)
    found: list[Leftover] = []
    unreadable: list[str] = []
    for res in resources(reader):
        try:
            items = reader.get(f"{res.api_path}/{res.plural}", [("labelSelector", sel)]).get(
                "items"
            )
        except ReadError as err:
            if not err.forbidden:
                unreadable.append(f"{res.kind_name}: {err.why}")
            continue
        for item in items or []:
            meta = item.get("metadata") or {}
            made = _created(meta)
            if older_than is not None and made is not None and now - made < older_than:
                continue
            found.append(
                Leftover(
                    res,
                    meta.get("name", "?"),
                    meta.get("namespace", "") if res.namespaced else "",
                    (meta.get("labels") or {}).get(RUN_ID_LABEL, ""),
                    made,
                    bool(meta.get("deletionTimestamp")),
                )
            )
    return order(found), unreadable


def order(found: list[Leftover]) -> list[Leftover]:
    """Namespaced objects outside the runs' namespaces, namespaces, then cluster-scoped ones
    (ClusterQueues first); objects inside a namespace being deleted are left to it."""
    namespaces = {
        f.name for f in found if f.resource.plural == "namespaces" and not f.resource.group
    }
    inner = [f for f in found if f.resource.namespaced and f.namespace not in namespaces]
    ns = [f for f in found if f.resource.plural == "namespaces" and not f.resource.group]
    cluster = [f for f in found if not f.resource.namespaced and f not in ns]
    cluster.sort(key=lambda f: f.resource.plural not in FIRST)
    return inner + ns + cluster


def delete(
    api: client.ApiClient, leftovers: list[Leftover], timeout_s: float, log: Callable[[str], None]
) -> list[str]:
    """Delete each (background propagation); return what failed, one line each."""
    failed = []
    reader = Reader(api, timeout_s)
    for f in leftovers:
        try:
            reader.delete(f.path)
            log(f"deleted {f}")
        except ReadError as err:
            if not err.absent:
                failed.append(f"{f}: {err.why}")
    return failed


def audit(api: client.ApiClient, run_id: str, timeout_s: float) -> list[str]:
    """What a finished run left behind (objects of ``run_id`` not already being deleted), one
    line each with the command that removes them; [] when it left nothing."""
    found, _ = find(Reader(api, timeout_s), run_id)
    left = [f for f in found if not f.terminating]
    return [
        f"left behind by this run: {f} (remove: k8sai sweep --run-id {run_id} --cluster <profile>)"
        for f in left
    ]
