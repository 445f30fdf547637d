"""User-facing errors: one paragraph that names the file, field, flag or component at fault."""

from __future__ import annotations


class K8saiError(Exception):
    """An error a user can act on; printed as one paragraph, never as a traceback."""


class ProfileError(K8saiError):
    """A cluster profile is missing, unknown or malformed."""


class ClusterError(K8saiError):
    """A cluster cannot be created, reached or used."""


class BuildError(K8saiError):
    """An upstream component could not be built from its Go module."""
