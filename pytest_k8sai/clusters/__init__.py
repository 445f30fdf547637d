"""Pick the cluster provider a profile asks for."""

from __future__ import annotations

from pytest_k8sai.clusters.base import ClusterProvider
from pytest_k8sai.core.errors import ClusterError
from pytest_k8sai.core.profiles import Profile


def check_reach_flags(profile: Profile, *, kubeconfig: str | None, context: str | None) -> None:
    """--kubeconfig/--context only make sense for a cluster we attach to; say so, never ignore."""
    if profile.provider == "existing" or not (kubeconfig or context):
        return
    flags = " and ".join(f for f, v in (("--kubeconfig", kubeconfig), ("--context", context)) if v)
    raise ClusterError(
        f"{flags} only apply to profiles with 'provider: existing', but profile "
        f"'{profile.name}' has 'provider: {profile.provider}' and creates its own cluster. "
        "To test a cluster you already have, pass --cluster=rosa or a profile file with "
        "'provider: existing'."
    )


def make_provider(
    profile: Profile, *, kubeconfig: str | None, context: str | None, keep: bool
) -> ClusterProvider:
    """Return an unstarted provider; the flags override ``profile.reach``."""
    check_reach_flags(profile, kubeconfig=kubeconfig, context=context)
    if profile.provider == "local":
        # Imported lazily: the local tier pulls in build and process machinery.
        from pytest_k8sai.clusters.local.provider import LocalProvider

        return LocalProvider(profile, keep=keep)
    if profile.provider == "existing":
        from pytest_k8sai.clusters.existing import ExistingProvider

        return ExistingProvider(profile, kubeconfig=kubeconfig, context=context)
    raise ClusterError(f"Profile '{profile.name}' has unknown provider '{profile.provider}'.")
