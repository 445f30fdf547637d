"""From the facts, the profile and the permissions: which profile claims the cluster
contradicts, and per suite whether it will run, run in part, or skip, and why."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_k8sai.clusters.preflight.facts import ClusterFacts
from pytest_k8sai.clusters.preflight.rbac import Access
from pytest_k8sai.core.apis import DAS_CLAIMS, DAS_GROUP, KUEUE_GROUP
from pytest_k8sai.core.profiles import Profile

# What each suite's tests require (their @pytest.mark.requires marks): the suite runs when
# every name in ``core`` is there, and its tests that also need one of ``optional`` skip alone.
SUITE_NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "smoke": (("gpu",), ("kueue",)),
    "kueue": (("kueue", "gpu"), ()),
    "das": (("gpu", "mig"), ("kueue", "das")),
    "gaie": (("inference_gateway",), ()),
    # Each AI Conformance check decides for itself (absent / untestable): none is needed.
    "conformance": ((), ("kueue", "gpu")),
}
# What the local tier brings itself for a suite: KWOK slice nodes per experiment (mig) and
# the inference stack (sims, EPP, gateway) built on first use.
LOCAL_PROVIDES = ("mig", "inference_gateway")


@dataclass
class SuiteOutlook:
    suite: str
    status: str  # "will run", "runs in part", "will skip", "will fail"
    reasons: list[str] = field(default_factory=list)


def cluster_has(profile: Profile, facts: ClusterFacts, requirement: str) -> tuple[bool | None, str]:
    """Whether the cluster has what ``requirement`` names (None: could not tell), and what
    was seen."""
    if profile.provider == "local" and requirement in LOCAL_PROVIDES:
        return True, "the local tier provides it"
    if requirement == "gpu":
        slices = sum(sum(n.mig.values()) for n in facts.gpu_nodes)
        if facts.nodes is None:
            return None, "nodes could not be read"
        return bool(facts.total_gpus or slices), (
            f"{facts.total_gpus} allocatable nvidia.com/gpu, {slices} slices"
        )
    if requirement == "mig":
        if facts.nodes is None:
            return None, "nodes could not be read"
        slices = sorted({k for n in facts.gpu_nodes for k in n.mig})
        capable = any(n.mig_capable == "true" for n in facts.gpu_nodes)
        if slices:
            return True, f"slices {', '.join(slices)}"
        return (
            capable,
            "MIG-capable nodes, no slices yet" if capable else "no MIG slices or MIG-capable nodes",
        )
    if requirement == "kueue":
        served = facts.serves(KUEUE_GROUP, "clusterqueues")
        return served, "Kueue API served" if served else "no Kueue API"
    if requirement == "das":
        served = facts.serves(DAS_GROUP, DAS_CLAIMS)
        return served, "DAS AllocationClaim API served" if served else "no DAS API"
    if requirement == "inference_gateway":
        ex = profile.gaie_suite.existing
        urls = [u for u in (ex.direct_url, ex.gateway_url, ex.random_url, ex.prefix_aware_url) if u]
        if urls:
            return True, f"{len(urls)} URLs in gaie_suite.existing"
        return False, "no URL set in gaie_suite.existing"
    raise ValueError(requirement)


# OpenShift's SecurityContextConstraints: where served, restricted-v2 assigns pods a UID.
SCC_GROUP = "security.openshift.io"


def contradictions(profile: Profile, facts: ClusterFacts) -> list[str]:
    """Each claim of the profile the cluster contradicts, in one sentence."""
    out = []
    caps = profile.capabilities
    for req, field_name in (
        ("gpu", "capabilities.gpu_nodes.count"),
        ("mig", "capabilities.mig.enabled"),
        ("kueue", "capabilities.kueue"),
        ("das", "capabilities.das"),
        ("inference_gateway", "capabilities.inference_gateway"),
    ):
        if not caps.has(req):
            continue
        has, seen = cluster_has(profile, facts, req)
        if has is False:
            out.append(f"{field_name} claims {req}, but the cluster has none ({seen})")
    pods = profile.workload
    if pods.restricted and pods.run_as_user is None and facts.serves(SCC_GROUP) is False:
        out.append(
            "workload.restricted leaves the UID to the platform, but this cluster has no "
            f"OpenShift SCCs ({SCC_GROUP} not served) to assign one: pods of an image that "
            "runs as root are refused (runAsNonRoot); set workload.run_as_user (e.g. 65534)"
        )
    want = caps.gpu_nodes
    if want.count and facts.nodes is not None and facts.gpu_nodes:
        matching = [n for n in facts.gpu_nodes if n.product == want.product]
        if len(matching) < want.count:
            found = ", ".join(sorted({n.product or "(unlabelled)" for n in facts.gpu_nodes}))
            out.append(
                f"capabilities.gpu_nodes claims {want.count} x {want.product}; the cluster has "
                f"{len(matching)} (GPU products found: {found})"
            )
        per_node = sorted({n.gpus for n in matching if n.gpus})
        if per_node and want.gpus_per_node not in per_node:
            out.append(
                f"capabilities.gpu_nodes.gpus_per_node is {want.gpus_per_node}; the "
                f"{want.product} nodes have {', '.join(map(str, per_node))} allocatable "
                "nvidia.com/gpu"
            )
    return out


def outlook(profile: Profile, facts: ClusterFacts, access: list[Access]) -> list[SuiteOutlook]:
    by_suite = {a.suite: a for a in access}
    out = []
    for suite, (core, optional) in SUITE_NEEDS.items():
        o = SuiteOutlook(suite, "will run")
        for req in core:
            if not profile.capabilities.has(req):
                o.status = "will skip"
                o.reasons.append(f"the profile has no {req}")
                continue
            has, seen = cluster_has(profile, facts, req)
            if has is False:
                o.status = "will skip"
                o.reasons.append(f"no {req} on the cluster ({seen})")
            elif has is None:
                o.reasons.append(f"{req}: could not check ({seen})")
        if o.status == "will run":
            for req in optional:
                has = profile.capabilities.has(req) and cluster_has(profile, facts, req)[0]
                if not has:
                    o.status = "runs in part"
                    o.reasons.append(f"tests needing {req} skip")
        acc = by_suite.get(suite)
        if acc is not None and o.status != "will skip":
            if acc.unknown:
                o.reasons.append(f"permissions unchecked: {acc.unknown}")
            elif acc.missing:
                o.status = "will fail"
                o.reasons.append("missing permissions: " + ", ".join(map(str, acc.missing)))
        out.append(o)
    return out


def gpu_resource(profile: Profile, facts: ClusterFacts) -> str:
    """What a whole-GPU pod asks for on this cluster: ``nvidia.com/gpu`` where any node
    advertises it (or nothing could be read); on a DAS cluster, where the device plugin is off
    and DAS's webhook rewrites ``nvidia.com/*`` requests to ``mig.das.com/*``, the profile's
    full-GPU slice (``das_suite.whole_gpu_resource``, e.g. nvidia.com/mig-7g.40gb)."""
    if facts.nodes is None or facts.total_gpus:
        return "nvidia.com/gpu"
    das = any(k.startswith("mig.das.com/") for n in facts.gpu_nodes for k in n.mig)
    if das or facts.serves(DAS_GROUP, DAS_CLAIMS):
        return profile.das_suite.whole_gpu_resource
    return "nvidia.com/gpu"
