"""Preflight as one object: gathered, rendered as the terminal table, and kept for results.json."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from kubernetes import client, config

from pytest_k8sai.clusters.apireader import Reader
from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.clusters.preflight import facts as factsmod
from pytest_k8sai.clusters.preflight import rbac
from pytest_k8sai.clusters.preflight.outlook import (
    SUITE_NEEDS,
    SuiteOutlook,
    contradictions,
    outlook,
)
from pytest_k8sai.core.errors import ClusterError


@dataclass
class Preflight:
    cluster: str  # profile name
    server: str
    facts: factsmod.ClusterFacts
    access: list[rbac.Access]
    suites: list[SuiteOutlook]
    contradicted: list[str]
    took_s: float
    calls: int

    @property
    def ok(self) -> bool:
        """Every suite the profile enables will run in full, and no claim is contradicted."""
        return not self.contradicted and all(s.status == "will run" for s in self.suites)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "server": self.server,
            "cluster_facts": self.facts.as_dict(),
            "access": [
                {
                    "suite": a.suite,
                    "ok": a.ok,
                    "missing": [str(p) for p in a.missing],
                    "unknown": a.unknown,
                    "checked": len(a.needed),
                }
                for a in self.access
            ],
            "suites": [asdict(s) for s in self.suites],
            "contradicted": self.contradicted,
            "took_s": round(self.took_s, 3),
            "api_calls": self.calls,
        }


def api_client(handle: ClusterHandle) -> client.ApiClient:
    """A client of its own (no retries); each read's timeout is the Reader's."""
    cfg = client.Configuration()
    try:
        config.load_kube_config(
            config_file=str(handle.kubeconfig),
            context=handle.context,
            client_configuration=cfg,
            persist_config=False,
        )
    except Exception as exc:  # noqa: BLE001 - one readable paragraph, never a traceback
        raise ClusterError(
            f"Preflight cannot use kubeconfig {handle.kubeconfig} (context "
            f"{handle.context or 'current'}): {exc}."
        ) from None
    cfg.retries = False  # preflight is quick or says why not; retries would hide a dead server
    return client.ApiClient(cfg)


def run(handle: ClusterHandle, timeout_s: float = 10.0) -> Preflight:
    """Read everything preflight reports; create nothing."""
    started = time.monotonic()
    api = api_client(handle)
    try:
        reader = Reader(api, timeout_s)
        cf = factsmod.gather(reader, handle.versions, handle.endpoints)
        access = rbac.check(reader, list(SUITE_NEEDS), handle.profile.reach.namespaces)
    finally:
        api.close()
    profile = handle.profile
    return Preflight(
        cluster=profile.name,
        server=str(api.configuration.host),
        facts=cf,
        access=access,
        suites=outlook(profile, cf, access),
        contradicted=contradictions(profile, cf),
        took_s=time.monotonic() - started,
        calls=reader.calls,
    )


_MARK = {"ok": "ok", "absent": "--", "unknown": "??", "info": ""}


def render(p: Preflight) -> str:
    """The table a user reads before a long run."""
    rows = [(f.area, f.item, f.value, _MARK[f.status]) for f in p.facts.facts]
    w = [max(len(r[i]) for r in rows) for i in range(3)] if rows else [0, 0, 0]
    lines = [f"preflight: cluster '{p.cluster}' at {p.server} (read only; {p.calls} API calls, "
             f"{p.took_s:.1f} s)", ""]  # fmt: skip
    for area, item, value, mark in rows:
        lines.append(f"  {area:{w[0]}}  {item:{w[1]}}  {value:{w[2]}}  {mark}".rstrip())
    details = [f for f in p.facts.facts if f.status == "unknown" and f.detail]
    for f in details:
        lines.append(f"    ?? {f.area} {f.item}: {f.detail}")
    lines += ["", "permissions (SelfSubjectAccessReview, cluster-wide):"]
    for a in p.access:
        if a.unknown:
            lines.append(f"  {a.suite:6}  ??  {a.unknown}")
        elif a.missing:
            lines.append(
                f"  {a.suite:6}  MISSING {len(a.missing)} of {len(a.needed)}: "
                + ", ".join(map(str, a.missing))
            )
        else:
            lines.append(f"  {a.suite:6}  ok ({len(a.needed)} verbs)")
    lines += ["", "suites:"]
    for s in p.suites:
        why = f": {'; '.join(s.reasons)}" if s.reasons else ""
        lines.append(f"  {s.suite:6}  {s.status}{why}")
    if p.contradicted:
        lines += ["", "profile claims the cluster contradicts:"]
        lines += [f"  - {c}" for c in p.contradicted]
    if any(a.missing for a in p.access):
        lines += [
            "",
            "grant the suites' role: kubectl apply -f "
            f"{rbac.data_file(*rbac.MANIFEST)} and bind k8sai-suites (docs/rbac.md)",
        ]
    return "\n".join(lines)
