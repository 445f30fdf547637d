"""The suites' permissions, read from the RBAC manifest that ships with the package
(manifests/rbac/k8sai-suites.yaml), and checked with one SelfSubjectAccessReview per verb: the
file a cluster admin applies is the list preflight checks, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from pytest_k8sai.clusters.apireader import Reader, ReadError
from pytest_k8sai.core.data import data_file

MANIFEST = ("manifests", "rbac", "k8sai-suites.yaml")
ROLE_PREFIX = "k8sai-"
COMMON = "common"  # the role every suite needs
OWN_NAMESPACES = "own-namespaces"  # every suite too, unless it works in pre-created namespaces
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
# What the suites create and read in the namespace a test works in. With pre-created
# namespaces (profile reach.namespaces) these verbs are reviewed in each of them, where a
# RoleBinding may grant them, and creating or deleting namespaces is not needed at all.
IN_TEST_NAMESPACE = {
    "jobs", "jobs/status", "pods", "serviceaccounts", "services", "localqueues", "workloads",
    "gateways", "httproutes",
}  # fmt: skip


@dataclass(frozen=True, order=True)
class Permission:
    group: str  # "" for the core group
    resource: str
    verb: str

    def __str__(self) -> str:
        where = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {where}"


@dataclass
class Access:
    """What a suite needs and what of it this identity lacks (or could not be checked)."""

    suite: str
    needed: list[Permission]
    missing: list[Permission] = field(default_factory=list)
    unknown: str = ""  # why the review itself failed, if it did

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unknown


def manifest_docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(data_file(*MANIFEST).read_text()) if d]


def suite_permissions() -> dict[str, list[Permission]]:
    """suite (role name without ``k8sai-``) -> every (group, resource, verb) its role grants;
    the aggregate role (rules filled in by the API server) is left out."""
    out: dict[str, list[Permission]] = {}
    for doc in manifest_docs():
        if doc.get("kind") != "ClusterRole" or "aggregationRule" in doc:
            continue
        suite = doc["metadata"]["name"].removeprefix(ROLE_PREFIX)
        perms = {
            Permission(g, r, v)
            for rule in doc.get("rules") or []
            for g in rule.get("apiGroups") or []
            for r in rule.get("resources") or []
            for v in rule.get("verbs") or []
        }
        out[suite] = sorted(perms)
    return out


def needed_by(suites: list[str], precreated: bool = False) -> dict[str, list[Permission]]:
    """Each suite's own permissions plus the common ones (and, unless the suites work in
    pre-created namespaces, creating and deleting their own)."""
    perms = suite_permissions()
    common = set(perms.get(COMMON, []))
    if not precreated:
        common |= set(perms.get(OWN_NAMESPACES, []))
    return {s: sorted(common | set(perms.get(s, []))) for s in suites}


def review(reader: Reader, perm: Permission, namespace: str | None = None) -> bool:
    """One SelfSubjectAccessReview: cluster-wide (the suites' own namespaces do not exist
    yet), or in ``namespace`` (a pre-created one)."""
    attributes = {
        "group": perm.group,
        # "jobs/status" in a role is resource "jobs", subresource "status" in a review
        "resource": perm.resource.partition("/")[0],
        "subresource": perm.resource.partition("/")[2],
        "verb": perm.verb,
    }
    if namespace is not None:
        attributes["namespace"] = namespace
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    answer = reader.post(SSAR_PATH, body)
    return bool((answer.get("status") or {}).get("allowed"))


def allowed_where_used(reader: Reader, perm: Permission, namespaces: Sequence[str]) -> bool:
    """A verb on what a test makes in its namespace is reviewed in every pre-created one;
    anything else cluster-wide."""
    if namespaces and perm.resource in IN_TEST_NAMESPACE:
        return all(review(reader, perm, ns) for ns in namespaces)
    return review(reader, perm)


def check(reader: Reader, suites: list[str], namespaces: Sequence[str] = ()) -> list[Access]:
    """The access of each suite; every distinct permission is reviewed once (once in each
    pre-created namespace, for what a test makes in its namespace)."""
    needs = needed_by(suites, precreated=bool(namespaces))
    allowed: dict[Permission, bool] = {}
    failure = ""
    for perm in sorted({p for ps in needs.values() for p in ps}):
        try:
            allowed[perm] = allowed_where_used(reader, perm, namespaces)
        except ReadError as err:
            failure = f"SelfSubjectAccessReview failed: {err.why}"
            break
    out = []
    for suite, needed in needs.items():
        if failure:
            out.append(Access(suite, needed, unknown=failure))
        else:
            out.append(Access(suite, needed, [p for p in needed if not allowed[p]]))
    return out
