"""The suites' permissions, read from the RBAC manifest that ships with the package
(manifests/rbac/k8sai-suites.yaml), and checked with one SelfSubjectAccessReview per verb: the
file a cluster admin applies is the list preflight checks, so the two cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from pytest_k8sai.clusters.apireader import Reader, ReadError
from pytest_k8sai.core.data import data_file

MANIFEST = ("manifests", "rbac", "k8sai-suites.yaml")
ROLE_PREFIX = "k8sai-"
COMMON = "common"  # the role every suite needs
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


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


def needed_by(suites: list[str]) -> dict[str, list[Permission]]:
    """Each suite's own permissions plus the common ones."""
    perms = suite_permissions()
    common = perms.get(COMMON, [])
    return {s: sorted(set(common) | set(perms.get(s, []))) for s in suites}


def review(reader: Reader, perm: Permission) -> bool:
    """One SelfSubjectAccessReview, cluster-wide (the suites' namespaces do not exist yet)."""
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "group": perm.group,
                # "jobs/status" in a role is resource "jobs", subresource "status" in a review
                "resource": perm.resource.partition("/")[0],
                "subresource": perm.resource.partition("/")[2],
                "verb": perm.verb,
            }
        },
    }
    answer = reader.post(SSAR_PATH, body)
    return bool((answer.get("status") or {}).get("allowed"))


def check(reader: Reader, suites: list[str]) -> list[Access]:
    """The access of each suite; every distinct permission is reviewed once."""
    needs = needed_by(suites)
    allowed: dict[Permission, bool] = {}
    failure = ""
    for perm in sorted({p for ps in needs.values() for p in ps}):
        try:
            allowed[perm] = review(reader, perm)
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
